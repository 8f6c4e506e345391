//! A `required` trail on a full disk: a call whose record cannot be written is
//! refused (`CKR_DEVICE_MEMORY`), and its output never reaches the caller; the
//! refusals do not flood stderr. The disk is full for certain: each check repeats
//! its call until one is refused (the trail file's last page may take a few more
//! records after the filler filled the file system) and inspects that very call.
mod audit_support;
mod common;
#[macro_use]
mod gateway_support;

use std::ptr::null_mut;

use gateway_support::{aes_key, attr, mech, name, user_session, Raw};
use pkcs11_sys::*;

/// A fresh token whose Keywarden trail is `required` and on a small tmpfs.
fn on_small_disk() -> (tempfile::TempDir, audit_support::Tmpfs, common::TestEnv) {
    let Some((guard, fs)) = audit_support::Tmpfs::mount("256k") else {
        panic!("this test needs to mount a tmpfs (run as root, as CI does)");
    };
    let env = common::TestEnv::new();
    audit_support::required_trail_in(
        &env.keywarden_conf,
        &env.path().join("audit"),
        &fs.0.join("audit"),
    );
    (guard, fs, env)
}

fn ec_private_key(r: &Raw, h: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let (mut params, mut t, mut f) = (common::P256, [CK_TRUE], [CK_FALSE]);
    let mut public = [attr(CKA_EC_PARAMS, &mut params), attr(CKA_TOKEN, &mut f)];
    let mut private = [attr(CKA_TOKEN, &mut f), attr(CKA_SIGN, &mut t)];
    let (mut m, mut pb, mut pv) = (mech(CKM_EC_KEY_PAIR_GEN), 0, 0);
    let rv = raw!(
        r,
        C_GenerateKeyPair(
            h,
            &mut m,
            public.as_mut_ptr(),
            2,
            private.as_mut_ptr(),
            2,
            &mut pb,
            &mut pv
        )
    );
    assert_eq!(rv, CKR_OK, "C_GenerateKeyPair: {}", name(rv));
    pv
}

const MARK: u8 = 0xa5;
const CAP: CK_ULONG = 512;

/// Repeats `init` + `call` (which writes into the buffer and length it is given)
/// until the trail refuses one; that call must leave the caller's buffer and
/// length as they were.
fn until_refused(
    what: &str,
    mut init: impl FnMut() -> CK_RV,
    mut call: impl FnMut(*mut u8, *mut CK_ULONG) -> CK_RV,
) {
    for _ in 0..2000 {
        assert_eq!(name(init()), "CKR_OK", "{what}: init");
        let mut buf = [MARK; CAP as usize];
        let mut len = CAP;
        let rv = call(buf.as_mut_ptr(), &mut len);
        if rv == CKR_DEVICE_MEMORY {
            assert!(
                buf.iter().all(|&b| b == MARK),
                "{what}: a refused call left its output in the caller's buffer"
            );
            assert_eq!(len, CAP, "{what}: a refused call set the output length");
            return;
        }
        assert_eq!(name(rv), "CKR_OK", "{what}");
        assert!(
            len > 0 && buf[..len as usize].iter().any(|&b| b != MARK),
            "{what}"
        );
    }
    panic!("{what}: the trail never refused a record");
}

#[test]
fn a_call_refused_for_a_full_required_trail_leaves_no_output_with_the_caller() {
    let (_guard, fs, _env) = on_small_disk();
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let h = user_session(&kw, gateway_support::slot(&kw));
    let ec = ec_private_key(&kw, h);
    let aes = aes_key(&kw, h);
    let mut data = [7u8; 32];
    let filler = audit_support::fill(&fs.0);

    until_refused(
        "C_Sign",
        || raw!(kw, C_SignInit(h, &mut mech(CKM_ECDSA), ec)),
        |out, len| raw!(kw, C_Sign(h, data.as_mut_ptr(), 32, out, len)),
    );
    until_refused(
        "C_Encrypt",
        || raw!(kw, C_EncryptInit(h, &mut mech(CKM_AES_ECB), aes)),
        |out, len| raw!(kw, C_Encrypt(h, data.as_mut_ptr(), 32, out, len)),
    );
    until_refused(
        "C_EncryptFinal",
        || {
            let (mut out, mut n, mut iv) = ([0u8; 64], 64, [0u8; 16]);
            let mut cbc = CK_MECHANISM {
                mechanism: CKM_AES_CBC_PAD,
                pParameter: iv.as_mut_ptr().cast(),
                ulParameterLen: 16,
            };
            let rv = raw!(kw, C_EncryptInit(h, &mut cbc, aes));
            assert_eq!(rv, CKR_OK);
            raw!(
                kw,
                C_EncryptUpdate(h, data.as_mut_ptr(), 32, out.as_mut_ptr(), &mut n)
            )
        },
        |out, len| raw!(kw, C_EncryptFinal(h, out, len)),
    );
    until_refused(
        "C_Digest",
        || raw!(kw, C_DigestInit(h, &mut mech(CKM_SHA256))),
        |out, len| raw!(kw, C_Digest(h, data.as_mut_ptr(), 32, out, len)),
    );

    // A creating call: its new handle must not reach the caller (the object
    // stays, as every change whose record failed does: docs/audit.md).
    let refused = (0..2000).any(|_| {
        let (mut len, mut f) = (16 as CK_ULONG, [CK_FALSE]);
        let mut tmpl = [
            gateway_support::attr_ulong(CKA_VALUE_LEN, &mut len),
            attr(CKA_TOKEN, &mut f),
        ];
        let mut made: CK_OBJECT_HANDLE = 0x5a5a;
        let mut m = mech(CKM_AES_KEY_GEN);
        let rv = raw!(
            kw,
            C_GenerateKey(h, &mut m, tmpl.as_mut_ptr(), 2, &mut made)
        );
        if rv != CKR_DEVICE_MEMORY {
            assert_eq!(name(rv), "CKR_OK", "C_GenerateKey");
            return false;
        }
        assert_eq!(
            made, CK_INVALID_HANDLE,
            "a refused creation handed out its handle"
        );
        true
    });
    assert!(refused, "C_GenerateKey: the trail never refused a record");

    // Room again: the same calls succeed and reach the caller.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(raw!(kw, C_SignInit(h, &mut mech(CKM_ECDSA), ec)), CKR_OK);
    let (mut sig, mut len) = ([0u8; 128], 128);
    let rv = raw!(
        kw,
        C_Sign(h, data.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)
    );
    assert_eq!((name(rv), len), ("CKR_OK".into(), 64));
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
}

const FLOOD_CHILD: &str = "KEYWARDEN_FLOOD_CHILD";
const REFUSALS: usize = 300;

/// The child of `refusals_for_a_full_trail_are_logged_once_with_a_count`.
#[test]
#[ignore = "run by refusals_for_a_full_trail_are_logged_once_with_a_count"]
fn flood_child() {
    let filler_dir = std::env::var(FLOOD_CHILD).expect("run by the parent test");
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let h = user_session(&kw, gateway_support::slot(&kw));
    let mut data = [7u8; 32];
    audit_support::fill(std::path::Path::new(&filler_dir));
    let mut refused = 0;
    for _ in 0..REFUSALS * 4 {
        assert_eq!(raw!(kw, C_DigestInit(h, &mut mech(CKM_SHA256))), CKR_OK);
        let (mut out, mut n) = ([0u8; 32], 32);
        match raw!(
            kw,
            C_Digest(h, data.as_mut_ptr(), 32, out.as_mut_ptr(), &mut n)
        ) {
            CKR_DEVICE_MEMORY => refused += 1,
            rv => assert_eq!(rv, CKR_OK),
        }
        if refused == REFUSALS {
            return;
        }
    }
    panic!("only {refused} refusals");
}

#[test]
fn refusals_for_a_full_trail_are_logged_once_with_a_count() {
    let (_guard, fs, env) = on_small_disk();
    let out = env
        .command(std::env::current_exe().unwrap())
        .args(["--exact", "flood_child", "--ignored"])
        .env(FLOOD_CHILD, &fs.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = stderr
        .lines()
        .filter(|l| l.contains("audit record not written"))
        .count();
    assert!(
        (1..=2).contains(&lines),
        "{REFUSALS} refusals gave {lines} lines:\n{stderr}"
    );
}
