//! The benchmark cases of `overhead.rs`: what one operation of each case is, and
//! the loop that runs it on one path (direct or through Keywarden).

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Case {
    EcdsaSign,
    RsaSign,
    AesGcm1k,
    Sha256Digest4k,
    FindByLabel,
    OpenCloseSession,
    GetAttributes3,
    EcdsaSign2Threads,
    EcdsaSign8Threads,
    // Cheap single calls, for the per-call cost (`--extra`, callgrind).
    GetSessionInfo,
    GenerateRandom1,
    GetAttribute1,
}

pub(super) const MAIN_CASES: [Case; 9] = [
    Case::EcdsaSign,
    Case::RsaSign,
    Case::AesGcm1k,
    Case::Sha256Digest4k,
    Case::FindByLabel,
    Case::OpenCloseSession,
    Case::GetAttributes3,
    Case::EcdsaSign2Threads,
    Case::EcdsaSign8Threads,
];
pub(super) const EXTRA_CASES: [Case; 3] = [
    Case::GetSessionInfo,
    Case::GenerateRandom1,
    Case::GetAttribute1,
];

impl Case {
    pub(super) fn all() -> impl Iterator<Item = Case> {
        MAIN_CASES.into_iter().chain(EXTRA_CASES)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Case::EcdsaSign => "ecdsa-p256-sign",
            Case::RsaSign => "rsa2048-sha256-sign",
            Case::AesGcm1k => "aes256-gcm-1k-encrypt",
            Case::Sha256Digest4k => "sha256-4k-digest",
            Case::FindByLabel => "find-by-label",
            Case::OpenCloseSession => "open-close-session",
            Case::GetAttributes3 => "get-3-attributes",
            Case::EcdsaSign2Threads => "ecdsa-p256-sign-2-threads",
            Case::EcdsaSign8Threads => "ecdsa-p256-sign-8-threads",
            Case::GetSessionInfo => "get-session-info",
            Case::GenerateRandom1 => "generate-random-1",
            Case::GetAttribute1 => "get-1-attribute",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Case> {
        Case::all().find(|c| c.name() == name)
    }

    /// What one operation is, in PKCS#11 calls.
    pub(super) fn calls(self) -> &'static str {
        match self {
            Case::EcdsaSign | Case::EcdsaSign2Threads | Case::EcdsaSign8Threads | Case::RsaSign => {
                "SignInit+Sign"
            }
            Case::AesGcm1k => "EncryptInit+Encrypt",
            Case::Sha256Digest4k => "DigestInit+Digest",
            Case::FindByLabel => "FindObjectsInit+FindObjects+FindObjectsFinal",
            Case::OpenCloseSession => "OpenSession+CloseSession",
            Case::GetAttributes3 | Case::GetAttribute1 => "GetAttributeValue",
            Case::GetSessionInfo => "GetSessionInfo",
            Case::GenerateRandom1 => "GenerateRandom",
        }
    }

    pub(super) fn calls_per_op(self) -> usize {
        self.calls().split('+').count()
    }

    pub(super) fn threads(self) -> usize {
        match self {
            Case::EcdsaSign2Threads => 2,
            Case::EcdsaSign8Threads => 8,
            _ => 1,
        }
    }

    /// The throughput target for the median ratio (none for the informational cases).
    /// `transparent` (and no profile): plain forwarding at p11-kit's proxy's level,
    /// ≥ 0.97 and open+close ≥ 0.80. `baseline` with the `buffered` trail (every
    /// operation recorded): ECDSA, 2-thread ECDSA ≥ 0.97, AES-GCM, find,
    /// get-3-attributes ≥ 0.95, SHA-256 ≥ 0.90, open+close ≥ 0.50. `required` mode:
    /// only the 8-thread case (group commit), ≥ 0.50; one thread waits for one
    /// `fdatasync` per call, which is reported, not bounded; `written` is reported.
    pub(super) fn target(self) -> Option<f64> {
        let profile = std::env::var("KEYWARDEN_BENCH_PROFILE").unwrap_or_default();
        let recorded = !matches!(profile.as_str(), "" | "transparent");
        if super::setup::audit_mode() != "buffered" {
            let required = super::setup::audit_mode() == "required";
            return (recorded && required && self == Case::EcdsaSign8Threads).then_some(0.50);
        }
        match (recorded, self) {
            (_, Case::RsaSign | Case::EcdsaSign8Threads) => None,
            (false, Case::OpenCloseSession) => Some(0.80),
            (false, c) if MAIN_CASES.contains(&c) => Some(0.97),
            (true, Case::EcdsaSign | Case::EcdsaSign2Threads) => Some(0.97),
            (true, Case::AesGcm1k | Case::FindByLabel | Case::GetAttributes3) => Some(0.95),
            (true, Case::Sha256Digest4k) => Some(0.90),
            (true, Case::OpenCloseSession) => Some(0.50),
            _ => None,
        }
    }
}

/// Performs `n` operations of `case` on `session`. Both paths run exactly this code.
#[inline(always)]
pub(super) fn run_ops(
    case: Case,
    fl: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    k: &Keys,
    n: usize,
) {
    let s = session;
    let mut plain = CK_MECHANISM {
        mechanism: 0,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    match case {
        Case::EcdsaSign | Case::EcdsaSign2Threads | Case::EcdsaSign8Threads | Case::RsaSign => {
            let (key, data, max): (_, &[u8], _) = if case == Case::RsaSign {
                plain.mechanism = CKM_SHA256_RSA_PKCS;
                (
                    k.rsa_private,
                    b"a short message to sign with RSA-2048 and SHA-256",
                    256,
                )
            } else {
                plain.mechanism = CKM_ECDSA;
                (k.ec_private, &[0x5a; 32], 64)
            };
            let mut sig = [0u8; 256];
            for _ in 0..n {
                ok(p11!(fl, C_SignInit(s, &mut plain, key)), "C_SignInit");
                let mut len: CK_ULONG = max;
                ok(
                    p11!(
                        fl,
                        C_Sign(
                            s,
                            data.as_ptr().cast_mut(),
                            ulong(data.len()),
                            sig.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Sign",
                );
            }
        }
        Case::AesGcm1k => {
            let mut iv = [0x11u8; 12];
            let mut gcm = CK_GCM_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: ptr::null_mut(),
                ulAADLen: 0,
                ulTagBits: 128,
            };
            let mut mech = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut gcm as *mut CK_GCM_PARAMS).cast::<c_void>(),
                ulParameterLen: ulong(size_of::<CK_GCM_PARAMS>()),
            };
            let mut data = [0x33u8; 1024];
            let mut out = [0u8; 1024 + 16];
            for _ in 0..n {
                ok(
                    p11!(fl, C_EncryptInit(s, &mut mech, k.aes)),
                    "C_EncryptInit",
                );
                let mut len = ulong(out.len());
                ok(
                    p11!(
                        fl,
                        C_Encrypt(
                            s,
                            data.as_mut_ptr(),
                            ulong(data.len()),
                            out.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Encrypt",
                );
            }
        }
        Case::Sha256Digest4k => {
            plain.mechanism = CKM_SHA256;
            let mut data = [0x44u8; 4096];
            let mut out = [0u8; 32];
            for _ in 0..n {
                ok(p11!(fl, C_DigestInit(s, &mut plain)), "C_DigestInit");
                let mut len = ulong(out.len());
                ok(
                    p11!(
                        fl,
                        C_Digest(
                            s,
                            data.as_mut_ptr(),
                            ulong(data.len()),
                            out.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Digest",
                );
            }
        }
        Case::FindByLabel => {
            let label = *b"bench-ec";
            let mut template = [attr(CKA_LABEL, &label[..])];
            let mut found = [CK_INVALID_HANDLE; 4];
            for _ in 0..n {
                ok(
                    p11!(fl, C_FindObjectsInit(s, template.as_mut_ptr(), 1)),
                    "C_FindObjectsInit",
                );
                let mut count: CK_ULONG = 0;
                ok(
                    p11!(fl, C_FindObjects(s, found.as_mut_ptr(), 4, &mut count)),
                    "C_FindObjects",
                );
                if count != 1 {
                    failed(count, "C_FindObjects count");
                }
                ok(p11!(fl, C_FindObjectsFinal(s)), "C_FindObjectsFinal");
            }
        }
        Case::OpenCloseSession => {
            for _ in 0..n {
                let mut h = CK_INVALID_HANDLE;
                ok(
                    p11!(
                        fl,
                        C_OpenSession(k.slot, CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut h)
                    ),
                    "C_OpenSession",
                );
                ok(p11!(fl, C_CloseSession(h)), "C_CloseSession");
            }
        }
        Case::GetAttributes3 | Case::GetAttribute1 => {
            let mut class: CK_OBJECT_CLASS = 0;
            let mut key_type: CK_KEY_TYPE = 0;
            let mut label = [0u8; 32];
            let mut template = [
                attr(CKA_KEY_TYPE, &key_type),
                attr(CKA_CLASS, &class),
                attr(CKA_LABEL, &label[..]),
            ];
            let count = if case == Case::GetAttribute1 { 1 } else { 3 };
            for _ in 0..n {
                template[2].ulValueLen = ulong(label.len());
                ok(
                    p11!(
                        fl,
                        C_GetAttributeValue(s, k.ec_private, template.as_mut_ptr(), count)
                    ),
                    "C_GetAttributeValue",
                );
            }
            // Keep the outputs observable.
            std::hint::black_box((&mut class, &mut key_type, &mut label));
        }
        Case::GetSessionInfo => {
            // SAFETY: CK_SESSION_INFO is plain old data.
            let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
            for _ in 0..n {
                ok(p11!(fl, C_GetSessionInfo(s, &mut info)), "C_GetSessionInfo");
            }
        }
        Case::GenerateRandom1 => {
            let mut byte = [0u8; 1];
            for _ in 0..n {
                ok(
                    p11!(fl, C_GenerateRandom(s, byte.as_mut_ptr(), 1)),
                    "C_GenerateRandom",
                );
            }
        }
    }
}

/// One timed run: returns the operations done and the wall time they took.
///
/// One thread: exactly `n` operations. Several threads: every thread works until
/// `span` has passed (checked between operations), timed from the moment all threads
/// are past a barrier until the last one stops. A fixed duration rather than a fixed
/// count keeps all threads busy for the whole measurement (with a fixed count, the
/// thread that finishes first leaves the other running alone and uncontended).
pub(super) fn timed(
    case: Case,
    path: &PathCtx,
    keys: &Keys,
    n: usize,
    span: Duration,
) -> (usize, Duration) {
    if case.threads() == 1 {
        let start = Instant::now();
        run_ops(case, path.fl, path.main, keys, n);
        return (n, start.elapsed());
    }
    let barrier = Barrier::new(case.threads());
    let runs: Vec<(usize, Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = path.threads[..case.threads()]
            .iter()
            .map(|&session| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut done = 0;
                    while start.elapsed() < span {
                        run_ops(case, path.fl, session, keys, 1);
                        done += 1;
                    }
                    (done, start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let done = runs.iter().map(|r| r.0).sum();
    let start = runs.iter().map(|r| r.1).min().expect("runs");
    let end = runs.iter().map(|r| r.2).max().expect("runs");
    (done, end - start)
}
