//! Many threads through Keywarden at once (`cryptoki` with `CKF_OS_LOCKING_OK`).
//!
//! PKCS#11 v2.40 §5.4 / "Applications and threads": with OS locking, any thread may
//! call any function, each session being used by one thread at a time. Keywarden
//! promises more (docs/abi-conventions.md): no Keywarden lock is held while the token
//! works, so one slow call never stalls the other sessions.
//!
//! Ordering between threads is established with a barrier, channels and atomic
//! counters published by the backend; nothing waits for a fixed time.

mod common;
#[path = "c/support.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const THREADS: usize = 8;
const SIGNATURES_PER_THREAD: usize = 50;
/// DER of the OID of NIST P-256.
use common::P256;

fn logged_in(p11: &Pkcs11, slot: Slot) -> Session {
    let session = p11.open_rw_session(slot).expect("open session");
    session
        .login(UserType::User, Some(&AuthPin::from(common::USER_PIN)))
        .expect("C_Login");
    session
}

fn ec_key_pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    let public = [Attribute::EcParams(P256.to_vec()), Attribute::Verify(true)];
    let private = [Attribute::Sign(true), Attribute::Token(false)];
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("EC key pair")
}

#[test]
fn eight_threads_sign_concurrently_in_their_own_sessions() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    // Login is per application (§5.6): this session keeps every other one logged in
    // and owns the session key pair, visible to all sessions of the application.
    let main = logged_in(&p11, slot);
    let (public, private) = ec_key_pair(&main);
    let start = Barrier::new(THREADS);

    let per_thread: Vec<Vec<([u8; 32], Vec<u8>)>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (p11, start) = (p11.clone(), &start);
                scope.spawn(move || {
                    let session = p11.open_ro_session(slot).expect("open session");
                    start.wait(); // all threads call into Keywarden together
                    (0..SIGNATURES_PER_THREAD)
                        .map(|i| {
                            let mut digest = [0u8; 32];
                            digest[0] = t as u8;
                            digest[1] = i as u8;
                            let sig = session.sign(&Mechanism::Ecdsa, private, &digest);
                            let sig = sig.unwrap_or_else(|e| panic!("thread {t}: {e}"));
                            session
                                .verify(&Mechanism::Ecdsa, public, &digest, &sig)
                                .unwrap_or_else(|e| panic!("thread {t} verify: {e}"));
                            (digest, sig)
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });

    let all: Vec<_> = per_thread.into_iter().flatten().collect();
    assert_eq!(all.len(), THREADS * SIGNATURES_PER_THREAD);
    // ECDSA is randomised: identical signatures would mean crossed-over outputs.
    let distinct: HashSet<&Vec<u8>> = all.iter().map(|(_, sig)| sig).collect();
    assert_eq!(distinct.len(), all.len());
    // Every signature verifies again from the main thread, and a corrupted one fails,
    // so the verification above could have failed.
    for (digest, sig) in &all {
        assert_eq!(sig.len(), 64);
        main.verify(&Mechanism::Ecdsa, public, digest, sig)
            .expect("signature made in a worker thread verifies");
    }
    let (digest, sig) = &all[0];
    let mut bad = sig.clone();
    bad[10] ^= 0x01;
    assert!(matches!(
        main.verify(&Mechanism::Ecdsa, public, digest, &bad),
        Err(Error::Pkcs11(RvError::SignatureInvalid, _))
    ));
}

/// Quick calls on other sessions complete while one session sits in a long backend
/// call (RSA-4096 key generation).
///
/// The backend is tests/c/v3_facade.c in front of SoftHSM: it publishes how many
/// `C_GenerateKeyPair` calls have started in the real module and how many are inside
/// it now. Once a key generation is inside the backend (so any lock Keywarden took
/// for it is held), the quick threads make `QUICK_CALLS` each; then the same key
/// generation must still be inside (count unchanged, still in). Were a lock held
/// across the backend call, the first quick call would wait for the key generation
/// to return, and no attempt could succeed.
fn quick_calls_finish_inside_a_slow_call(module: &Path, facade: &Path) -> usize {
    const QUICK_THREADS: usize = 4;
    const QUICK_CALLS: usize = 200;
    const MAX_SLOW_CALLS: usize = 6;
    let p11 = common::load(module);
    // The facade's counters, in the same dlopen handle the backend lives in.
    // SAFETY: loading the already-loaded facade runs no initialiser again.
    let lib = unsafe { libloading::Library::new(facade) }.expect("dlopen facade");
    // SAFETY: both are `unsigned long` (usize-sized on Linux) that the facade only
    // touches with atomic builtins; the library stays loaded for the process.
    let (started, inside) = unsafe {
        let get = |name: &[u8]| &*(*lib.get::<*const AtomicUsize>(name).expect("symbol"));
        (
            get(b"facade_keygen_started\0"),
            get(b"facade_keygen_inside\0"),
        )
    };
    let slot = common::test_slot(&p11);
    let main = logged_in(&p11, slot);
    let (stop, slow_finished) = (AtomicBool::new(false), AtomicBool::new(false));

    thread::scope(|scope| {
        let (stop, slow_finished) = (&stop, &slow_finished);
        let slow_p11 = p11.clone();
        scope.spawn(move || {
            let session = slow_p11.open_rw_session(slot).expect("open session");
            let public = [
                Attribute::ModulusBits(4096.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Token(false),
            ];
            let private = [Attribute::Sign(true), Attribute::Token(false)];
            for _ in 0..MAX_SLOW_CALLS {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                session
                    .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                    .expect("RSA-4096 key pair");
            }
            slow_finished.store(true, Ordering::SeqCst);
        });

        let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
        let go: Vec<mpsc::Sender<()>> = (0..QUICK_THREADS)
            .map(|_| {
                let (go_tx, go_rx) = mpsc::channel::<()>();
                let (p11, done_tx) = (p11.clone(), done_tx.clone());
                scope.spawn(move || {
                    let session = p11.open_ro_session(slot).expect("open session");
                    for () in go_rx {
                        let r = (0..QUICK_CALLS)
                            .try_for_each(|_| session.get_session_info().map(drop))
                            .map_err(|e| e.to_string());
                        done_tx.send(r).expect("report");
                    }
                });
                go_tx
            })
            .collect();

        let mut attempts = 0;
        let succeeded = loop {
            // Wait until a key generation is inside the backend (or none will come).
            let s0 = loop {
                let s0 = started.load(Ordering::SeqCst);
                if inside.load(Ordering::SeqCst) == 1 {
                    break Some(s0);
                }
                if slow_finished.load(Ordering::SeqCst) {
                    break None;
                }
                thread::yield_now();
            };
            let Some(s0) = s0 else { break false };
            attempts += 1;
            go.iter().for_each(|tx| tx.send(()).expect("go"));
            for _ in 0..QUICK_THREADS {
                done_rx
                    .recv()
                    .expect("quick thread")
                    .expect("C_GetSessionInfo");
            }
            let same_call_still_inside =
                inside.load(Ordering::SeqCst) == 1 && started.load(Ordering::SeqCst) == s0;
            if same_call_still_inside {
                break true;
            }
        };
        stop.store(true, Ordering::SeqCst);
        drop(go); // ends the quick threads
        drop(main);
        assert!(
            succeeded,
            "in {attempts} attempts, {QUICK_THREADS}x{QUICK_CALLS} C_GetSessionInfo never \
             completed during one RSA-4096 key generation: a lock spans the backend call"
        );
        attempts
    })
}

/// Keywarden in front of the facade (the configuration the test token got, with the
/// facade as backend).
#[test]
fn a_long_backend_call_does_not_block_other_sessions() {
    let env = common::TestEnv::new();
    let (facade, conf) =
        support::facade_backend(env.path(), &env.keywarden_conf, common::SOFTHSM_MODULE);
    std::env::set_var("KEYWARDEN_CONF", conf);
    let attempts = quick_calls_finish_inside_a_slow_call(&common::keywarden_module(), &facade);
    println!("keywarden: 800 quick calls inside one key generation ({attempts} attempts)");
}

/// The same measurement on the facade alone: if SoftHSM (or the facade) serialised
/// these calls, the test above could not pass through any shim, so this is its control.
#[test]
fn control_the_backend_alone_does_not_block_other_sessions() {
    let env = common::TestEnv::new();
    let (facade, _) =
        support::facade_backend(env.path(), &env.keywarden_conf, common::SOFTHSM_MODULE);
    let attempts = quick_calls_finish_inside_a_slow_call(&facade, &facade);
    println!("backend alone: 800 quick calls inside one key generation ({attempts} attempts)");
}

/// `C_Finalize` from one thread while others are inside `C_Sign`: §5.4 leaves it
/// undefined, Keywarden promises that the calls in flight finish before the backend
/// is finalised and later ones are refused at entry (docs/abi-conventions.md), so
/// no call touches a finalised SoftHSM. Each call answers `CKR_OK` or
/// `CKR_CRYPTOKI_NOT_INITIALIZED`; several rounds, so that finalising lands inside
/// a signature in some of them.
#[test]
fn finalize_while_other_threads_sign_refuses_them_instead_of_crashing() {
    use pkcs11_sys::*;
    use support::{mechanism, p11, Module};
    const ROUNDS: usize = 100;
    const SIGNERS: usize = 4;
    let _env = common::TestEnv::new();
    let kw = Module::load(&common::keywarden_module());
    for round in 0..ROUNDS {
        kw.init();
        let slot = kw.slot(common::TOKEN_LABEL);
        let owner = kw.open(slot);
        kw.login(owner, common::USER_PIN);
        let (_, private) = kw.ec_key_pair(owner);
        let sessions: Vec<_> = (0..SIGNERS).map(|_| kw.open(slot)).collect();
        let signed = AtomicUsize::new(0);
        thread::scope(|scope| {
            for &s in &sessions {
                let (kw, signed) = (&kw, &signed);
                scope.spawn(move || loop {
                    let mut m = mechanism(CKM_ECDSA);
                    let rv = p11!(kw, C_SignInit(s, &mut m, private));
                    if rv == CKR_CRYPTOKI_NOT_INITIALIZED {
                        return;
                    }
                    assert_eq!(rv, CKR_OK, "round {round}: C_SignInit {rv:#x}");
                    let (mut digest, mut sig, mut len) = ([1u8; 32], [0u8; 64], 64);
                    let rv = p11!(
                        kw,
                        C_Sign(s, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)
                    );
                    if rv == CKR_CRYPTOKI_NOT_INITIALIZED {
                        return;
                    }
                    assert_eq!(rv, CKR_OK, "round {round}: C_Sign {rv:#x}");
                    signed.fetch_add(1, Ordering::Release);
                });
            }
            // Every signer is in its loop once a few signatures are made.
            while signed.load(Ordering::Acquire) < 2 * SIGNERS {
                thread::yield_now();
            }
            let rv = p11!(kw, C_Finalize(std::ptr::null_mut()));
            assert_eq!(rv, CKR_OK, "round {round}: C_Finalize {rv:#x}");
        });
    }
}
