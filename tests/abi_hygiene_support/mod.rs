//! Shared by the `abi_hygiene` and `abi_output_buffers` tests: Keywarden and SoftHSM
//! loaded side by side through their raw function lists, with a logged-in session
//! and keys to call with.
#![allow(dead_code)]

use std::path::Path;
use std::ptr;

use pkcs11_sys::*;

use crate::common;
use crate::support::{attr, mechanism, p11, Module};

pub const UL: fn(usize) -> CK_ULONG = |n| n as CK_ULONG;

pub struct Fixture {
    pub _env: common::TestEnv,
    pub kw: Module,
    pub hsm: Module,
    pub slot: CK_SLOT_ID,
    /// A logged-in Keywarden session that stays open (login is per application).
    pub s: CK_SESSION_HANDLE,
    pub ec_public: CK_OBJECT_HANDLE,
    pub ec_private: CK_OBJECT_HANDLE,
    pub aes: CK_OBJECT_HANDLE,
}

pub fn fixture() -> Fixture {
    let env = common::TestEnv::new();
    let hsm = Module::load(Path::new(common::SOFTHSM_MODULE));
    hsm.init();
    let kw = Module::load(&common::keywarden_module());
    kw.init();
    let slot = kw.slot(common::TOKEN_LABEL);
    let s = kw.open(slot);
    kw.login(s, common::USER_PIN);
    let (ec_public, ec_private) = kw.ec_key_pair(s);
    let aes = aes_key(&kw, s);
    Fixture {
        _env: env,
        kw,
        hsm,
        slot,
        s,
        ec_public,
        ec_private,
        aes,
    }
}

pub fn aes_key(m: &Module, s: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let mut len = 32 as CK_ULONG;
    let (mut yes1, mut yes2, mut yes3) = (CK_TRUE, CK_TRUE, CK_TRUE);
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_VALUE_LEN,
            pValue: ptr::from_mut(&mut len).cast(),
            ulValueLen: UL(std::mem::size_of::<CK_ULONG>()),
        },
        attr(CKA_ENCRYPT, std::slice::from_mut(&mut yes1)),
        attr(CKA_DECRYPT, std::slice::from_mut(&mut yes2)),
        attr(CKA_SIGN, std::slice::from_mut(&mut yes3)),
    ];
    let mut mech = mechanism(CKM_AES_KEY_GEN);
    let mut h = 0;
    assert_eq!(
        p11!(m, C_GenerateKey(s, &mut mech, t.as_mut_ptr(), 4, &mut h)),
        CKR_OK
    );
    h
}

impl Fixture {
    /// Runs `case` on a fresh session of Keywarden and of SoftHSM and returns both codes.
    pub fn both<R>(&self, case: impl Fn(&Module, CK_SESSION_HANDLE) -> R) -> (R, R) {
        let run = |m: &Module| {
            let s = m.open(self.slot);
            let rv = case(m, s);
            assert_eq!(p11!(m, C_CloseSession(s)), CKR_OK);
            rv
        };
        (run(&self.kw), run(&self.hsm))
    }
}
