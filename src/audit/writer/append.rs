//! One pass's append: records waiting for a retry first, a seal after exactly
//! `seal_every_records` records or when `seal_every` has passed, then the
//! acknowledgements, the forwarding, and on failure the retry queue or the count
//! of lost records.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{queued_since, Pending, State, ERROR_LOG_EVERY};
use crate::audit::error::AuditError;
use crate::audit::record::{Event, GapEvent, Timestamp};
use crate::audit::trail::{Appended, Tails};

impl State {
    /// Appends `batch` (after any records waiting for a retry), sealing when due,
    /// and leaves `batch` empty with its memory kept: the run loop reuses it, so a
    /// batch is not regrown (and its records moved again) every pass.
    pub(super) fn write(&mut self, batch: &mut Vec<Pending>, force_seal: bool) {
        if !self.retry.is_empty() {
            let mut all: Vec<Pending> = self.retry.drain(..).collect();
            all.append(batch);
            *batch = all;
        }
        let records = batch;
        if self.sealer.is_some() && self.since_seal < self.seal_every_records {
            // A seal after exactly `seal_every_records` of this process's records,
            // not after the whole batch: verify holds each writer to that count.
            // (After a failed seal every batch tries again, unsplit.)
            let room =
                usize::try_from(self.seal_every_records - self.since_seal).unwrap_or(usize::MAX);
            if records.len() > room {
                let mut rest = records.split_off(room);
                self.write(records, false);
                self.write(&mut rest, force_seal);
                return;
            }
        }
        let seal_due = self.since_seal + records.len() as u64 >= self.seal_every_records
            || (self.since_seal + records.len() as u64 > 0
                && self.last_seal.elapsed() >= self.seal_every)
            || force_seal;
        if records.is_empty() && !(force_seal && self.since_seal > 0) {
            return;
        }
        let tails = self.render(records);
        let sealer = if seal_due { self.sealer.clone() } else { None };
        let appended = self.trail.append(&tails, sealer.as_deref());
        self.tails = tails;
        match appended {
            Ok(done) => self.written(done, records, sealer.is_some()),
            Err(e) => self.failed(records.drain(..), &e),
        }
    }

    /// The batch's tails, in the kept buffer: a `gap` record first when records
    /// were lost since the last good write.
    fn render(&mut self, records: &[Pending]) -> Tails {
        let mut tails = std::mem::take(&mut self.tails);
        tails.clear();
        let (renderer, fields) = (&mut self.renderer, self.process_fields.as_str());
        if self.lost > 0 {
            let gap = Event::Gap(GapEvent {
                lost: self.lost,
                errors: self.failures,
                last_error: self
                    .last_failure
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
            tails.push_with(|out| renderer.tail_into(out, Timestamp::now().0, fields, &gap));
        }
        for p in records {
            tails.push_with(|out| renderer.tail_into(out, p.time.0, fields, &p.event));
        }
        tails
    }

    /// After a good append: counters, the seal's outcome, the sync deadline, the
    /// acknowledgements and the forwarding.
    fn written(&mut self, done: Appended, records: &mut Vec<Pending>, sealed: bool) {
        self.counters
            .written
            .fetch_add(done.count, Ordering::Relaxed);
        if self.failures > 0 || self.lost > 0 {
            log::warn!(
                "audit: writing again after {} failed attempts; {} records were lost",
                self.failures,
                self.lost
            );
        }
        (self.lost, self.failures, self.last_failure) = (0, 0, None);
        self.since_seal += records.len() as u64;
        if sealed {
            match done.seal_error {
                None => {
                    self.counters.seals.fetch_add(1, Ordering::Relaxed);
                    self.since_seal = 0;
                    self.forward_seal(&done.lines);
                }
                Some(e) => {
                    self.counters.seal_errors.fetch_add(1, Ordering::Relaxed);
                    self.counters.note_error(&e);
                    log::error!("audit: {e}");
                }
            }
            self.last_seal = Instant::now();
        }
        if !self.mode.syncs_each_batch() && self.unsynced_since.is_none() {
            self.unsynced_since = Some(queued_since(records.first()));
        }
        for p in records.drain(..) {
            if let Some(ack) = p.ack {
                let _ = ack.send(Ok(()));
            }
        }
        self.forward(&done.lines);
        self.trail.recycle(done.lines);
    }

    fn failed(&mut self, records: impl ExactSizeIterator<Item = Pending>, e: &AuditError) {
        self.counters.note_error(e);
        self.failures += 1;
        self.last_failure = Some(e.clone());
        let now = Instant::now();
        if now >= self.next_error_log {
            log::error!(
                "audit: cannot write the trail: {e} (records waiting for a retry: {}, lost: {})",
                self.retry.len() + records.len(),
                self.lost
            );
            self.next_error_log = now + ERROR_LOG_EVERY;
        }
        for p in records {
            match p.ack {
                // required: the caller refuses its operation; nothing is retried.
                Some(ack) => {
                    let _ = ack.send(Err(e.clone()));
                }
                None if self.retry.len() < self.retry_cap => self.retry.push_back(p),
                None => {
                    self.lost += 1;
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn forward(&mut self, lines: &[u8]) {
        let Some(sink) = &mut self.syslog else { return };
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if sink.send(line).is_err() {
                self.counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends the batch's seal — its last line, where the trail puts it — to the
    /// seal target (best-effort, like all forwarding; counted when refused).
    fn forward_seal(&mut self, lines: &[u8]) {
        let Some(sink) = &mut self.seal_syslog else {
            return;
        };
        let body = lines.strip_suffix(b"\n").unwrap_or(lines);
        let seal = body.rsplit(|b| *b == b'\n').next().unwrap_or(body);
        if sink.send(seal).is_err() {
            self.counters.syslog_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
