use std::time::{Duration, Instant, SystemTime};

use super::{pause_for, queued_since, Intake, Msg, Pending};
use crate::audit::record::{OpEvent, Timestamp};
use crate::functions::FunctionId;

fn made_at(time: SystemTime) -> Pending {
    Pending {
        time: Timestamp(time),
        event: OpEvent::new(FunctionId::C_Sign, pkcs11_sys::CKR_OK).into(),
        ack: None,
    }
}

#[test]
fn the_pause_ends_before_the_queue_would_be_half_full() {
    let limit = Duration::from_millis(40);
    let ms = Duration::from_millis;
    // 42 000 records/s into 8 192 slots: 4 096 take ~98 ms, so the full pause.
    assert_eq!(pause_for(limit, 8192, 1680, ms(40)), limit);
    // 440 000 records/s: half the queue in ~9.3 ms.
    assert_eq!(pause_for(limit, 8192, 4096, ms(9)), ms(9));
    assert_eq!(pause_for(limit, 8192, 4096, ms(100)), limit);
    // Too few records to tell a rate: the limit.
    assert_eq!(pause_for(limit, 8192, 0, ms(1)), limit);
    assert_eq!(pause_for(limit, 8192, 63, Duration::from_micros(1)), limit);
    assert_eq!(pause_for(limit, 2, 64, ms(64)), ms(1));
}

#[test]
fn the_sync_deadline_runs_from_when_the_oldest_record_was_made() {
    let ten_s_ago = made_at(SystemTime::now() - Duration::from_secs(10));
    assert!(queued_since(Some(&ten_s_ago)) <= Instant::now() - Duration::from_secs(9));
    // A clock stepped back (a record from the future) and no record: from now.
    let before = Instant::now();
    let future = made_at(SystemTime::now() + Duration::from_secs(3600));
    assert!(queued_since(Some(&future)) >= before);
    assert!(queued_since(None) >= before);
}

/// `Intake::gather` over a queue fed by another thread, with a delay far longer
/// than the test: it returns when `callers` records are in, or when a flush
/// arrives, not at the delay.
fn gather_with(callers: usize, feed: Vec<Msg>) -> (usize, usize, Duration) {
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let (mut batch, mut replies, mut stop) = (vec![made_at(SystemTime::now())], vec![], None);
    let feeder = std::thread::spawn(move || {
        for m in feed {
            tx.send(m).expect("send");
        }
        tx
    });
    let started = Instant::now();
    let mut intake = Intake {
        batch: &mut batch,
        replies: &mut replies,
        stop: &mut stop,
    };
    intake.gather(&rx, callers, Duration::from_secs(30));
    let took = started.elapsed();
    drop(feeder.join());
    (batch.len(), replies.len(), took)
}

#[test]
fn a_batch_waits_for_the_callers_of_the_last_one() {
    let records = (0..2)
        .map(|_| Msg::Record(made_at(SystemTime::now())))
        .collect();
    let (records, flushes, took) = gather_with(3, records);
    assert_eq!((records, flushes), (3, 0));
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_flush_or_a_single_caller_does_not_wait() {
    let (flush, _reply) = std::sync::mpsc::sync_channel(1);
    let (records, flushes, took) = gather_with(8, vec![Msg::Flush(flush)]);
    assert_eq!((records, flushes), (1, 1));
    assert!(took < Duration::from_secs(20), "{took:?}");
    // One caller: nothing is waited for (the queue stays empty).
    let (records, _, took) = gather_with(1, vec![]);
    assert_eq!(records, 1);
    assert!(took < Duration::from_secs(20), "{took:?}");
}
