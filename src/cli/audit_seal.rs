//! `keywarden audit init-seal-key` (and `keywarden init --audit-token`): creates the
//! audit seal key pair on the token with `cryptoki` and exports its public half to
//! `<audit.dir>/seal-key.pub`. The key's attributes and why they are what they are:
//! `audit::TokenSealer` and docs/audit.md.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::abi::EcCurve;
use crate::audit::{
    seal_digest, unwrap_ec_point, EcdsaVerifier, SealPubFile,
    RETIRED_SEAL_PUB_PREFIX as RETIRED_PREFIX, SEAL_KEY_ID, SEAL_KEY_LABEL, SEAL_PUB_FILE,
};
use crate::error::{Error, Result};

/// What `init_seal_key` was asked to do.
#[derive(Debug, Clone)]
pub(super) struct SealKeyRequest<'a> {
    /// The real module (the configuration's `backend.module`).
    pub module: &'a Path,
    /// Label of the token that gets the key.
    pub token: &'a str,
    /// The user PIN's file; `None`: standard input.
    pub pin_file: Option<&'a Path>,
    /// Where `seal-key.pub` goes.
    pub audit_dir: &'a Path,
    /// Who shares the audit directory (`audit.group`).
    pub sharing: crate::fsguard::Sharing,
    /// The key exists already: only write its public half again.
    pub export_existing: bool,
    /// The key was lost: make a new one, keeping the old `seal-key.pub` as
    /// `seal-key-<key_id>.pub` (what `audit verify` checks the old seals with).
    pub rotate: bool,
}

fn fail(what: &str) -> impl Fn(cryptoki::error::Error) -> Error + '_ {
    move |e| Error::Load(format!("{what}: {e}"))
}

fn key_template(class: ObjectClass) -> Vec<Attribute> {
    vec![
        Attribute::Class(class),
        Attribute::Label(SEAL_KEY_LABEL.as_bytes().to_vec()),
        Attribute::Id(SEAL_KEY_ID.to_vec()),
    ]
}

fn find(session: &Session, class: ObjectClass) -> Result<Vec<ObjectHandle>> {
    session
        .find_objects(&key_template(class))
        .map_err(fail("C_FindObjects"))
}

/// Creates the key pair (or finds it, with `export_existing`) and writes
/// `seal-key.pub`. Returns the file's contents and its path.
pub(super) fn init_seal_key(req: &SealKeyRequest<'_>) -> Result<(SealPubFile, PathBuf)> {
    let pub_path = req.audit_dir.join(SEAL_PUB_FILE);
    if pub_path.exists() && !req.export_existing && !req.rotate {
        return Err(Error::Config(format!(
            "{} exists: this trail already has a seal key (a new key would make the \
             seals made so far unverifiable with the new file; move it away first)",
            pub_path.display()
        )));
    }
    let p11 = Pkcs11::new(req.module).map_err(fail("load module"))?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(fail("C_Initialize"))?;
    let slot = token_slot(&p11, req.token)?;
    let pin = super::keys::read_pin(req.pin_file)?;
    let session = p11.open_rw_session(slot).map_err(fail("C_OpenSession"))?;
    session
        .login(UserType::User, Some(&AuthPin::new(pin.as_str().into())))
        .map_err(fail("C_Login"))?;
    drop(pin);
    if req.rotate {
        replace_lost_key(&session, req, &pub_path)?;
    }
    let public = seal_public_key(&session, req)?;
    let point = ec_point(&session, public)?;
    let verifier = EcdsaVerifier::from_point(&point).map_err(Error::from)?;
    self_test(&session, &verifier)?;
    let file = SealPubFile::new(&verifier.point(), Some(req.token));
    write_pub_file(req, &pub_path, &file)?;
    let _ = session.logout();
    Ok((file, pub_path))
}

/// The one slot whose token is labelled `token`.
fn token_slot(p11: &Pkcs11, token: &str) -> Result<Slot> {
    let mut slots = Vec::new();
    for slot in p11.get_slots_with_token().map_err(fail("slots"))? {
        if p11
            .get_token_info(slot)
            .map_err(fail("token info"))?
            .label()
            == token
        {
            slots.push(slot);
        }
    }
    match slots.as_slice() {
        [s] => Ok(*s),
        [] => Err(Error::Request(format!(
            "no token labelled {:?} (keywarden doctor lists the tokens)",
            token
        ))),
        _ => Err(Error::Config(format!(
            "several tokens are labelled {:?}",
            token
        ))),
    }
}

/// The public half of the token's seal key: generated when the token has none,
/// else (with `export_existing`) the one there is.
fn seal_public_key(session: &Session, req: &SealKeyRequest<'_>) -> Result<ObjectHandle> {
    let existing = find(session, ObjectClass::PRIVATE_KEY)?.len()
        + find(session, ObjectClass::PUBLIC_KEY)?.len();
    match (existing, req.export_existing) {
        (0, _) => generate(session),
        (_, false) => Err(Error::Config(format!(
            "token {:?} already has an audit seal key ({SEAL_KEY_LABEL}); \
                 --export-existing writes its public half again",
            req.token
        ))),
        (_, true) => match find(session, ObjectClass::PUBLIC_KEY)?.as_slice() {
            [h] => Ok(*h),
            _ => Err(Error::Config(format!(
                "token {:?} has no single public seal key to export",
                req.token
            ))),
        },
    }
}

/// Writes `seal-key.pub` in the audit directory, relative to the checked
/// directory, never through a link planted in it.
fn write_pub_file(req: &SealKeyRequest<'_>, pub_path: &Path, file: &SealPubFile) -> Result<()> {
    let name = pub_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rendered = file.render().map_err(Error::from)?;
    crate::fsguard::GuardedDir::create(req.audit_dir, req.sharing)
        .and_then(|d| d.replace(&name, rendered.as_bytes()))
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", pub_path.display())))
}

/// `--rotate`: only for a key whose private half is gone (a private half on the
/// token is never replaced: it cannot be destroyed, and seals must keep one key).
/// A public half left behind (a key of older builds was destroyable) is removed,
/// and the old `seal-key.pub` is kept under its `key_id`.
fn replace_lost_key(session: &Session, req: &SealKeyRequest<'_>, pub_path: &Path) -> Result<()> {
    if !find(session, ObjectClass::PRIVATE_KEY)?.is_empty() {
        return Err(Error::Config(format!(
            "token {:?} still has the audit seal key: --rotate replaces a lost key only",
            req.token
        )));
    }
    for h in find(session, ObjectClass::PUBLIC_KEY)? {
        session
            .destroy_object(h)
            .map_err(fail("C_DestroyObject (the lost key's public half)"))?;
    }
    if pub_path.exists() {
        let old = EcdsaVerifier::from_file(pub_path).map_err(Error::from)?;
        let kept = req
            .audit_dir
            .join(format!("{RETIRED_PREFIX}{}.pub", old.key_id()));
        std::fs::rename(pub_path, &kept).map_err(|e| {
            Error::Config(format!(
                "cannot keep {} as {}: {e}",
                pub_path.display(),
                kept.display()
            ))
        })?;
        eprintln!(
            "keywarden: the lost key's public half is kept as {} (audit verify reads it)",
            kept.display()
        );
    }
    Ok(())
}

/// `C_GenerateKeyPair` with the attributes the design needs (see the module docs).
fn generate(session: &Session) -> Result<ObjectHandle> {
    // Neither half can be changed, copied or destroyed through PKCS#11 (v2.40
    // §4.4): the key outlives any caller that reaches the token, and the gateway
    // refuses the same to every caller of the module in any case.
    let fixed = [
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Destroyable(false),
    ];
    let mut public = key_template(ObjectClass::PUBLIC_KEY);
    public.extend([
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(EcCurve::P256.der_oid().to_vec()),
        Attribute::Token(true),
        // Readable without a login: the module checks its seals with it.
        Attribute::Private(false),
        Attribute::Verify(true),
    ]);
    public.extend(fixed.iter().cloned());
    let mut private = key_template(ObjectClass::PRIVATE_KEY);
    private.extend(fixed.iter().cloned());
    private.extend([
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(true),
        // Invisible and unusable without the user PIN: the module logs in with
        // `[backend] pin_file` to seal (audit::TokenSealer).
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
        Attribute::Unwrap(false),
    ]);
    let (public, _private) = session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .map_err(fail("C_GenerateKeyPair"))?;
    Ok(public)
}

fn ec_point(session: &Session, public: ObjectHandle) -> Result<Vec<u8>> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(fail("C_GetAttributeValue"))?;
    attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(unwrap_ec_point(&p).to_vec()),
            _ => None,
        })
        .ok_or_else(|| Error::Config("the seal key has no CKA_EC_POINT".into()))
}

/// Signs a test head on the token and checks it with the exported key, so a file
/// that could not verify the module's seals is never written.
fn self_test(session: &Session, verifier: &EcdsaVerifier) -> Result<()> {
    let private = match find(session, ObjectClass::PRIVATE_KEY)?.as_slice() {
        [h] => *h,
        found => {
            return Err(Error::Config(format!(
                "{} private seal keys on the token; expected one",
                found.len()
            )))
        }
    };
    let head = [0x5a; 32];
    let sig = session
        .sign(&Mechanism::Ecdsa, private, &seal_digest(&head))
        .map_err(fail("C_Sign (self-test)"))?;
    verifier.check(&head, &sig).map_err(Error::from)
}
