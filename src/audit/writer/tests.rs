use std::time::{Duration, Instant, SystemTime};

use super::{pause_for, queued_since, Pending};
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
