//! The background writer: one thread per process (per [`super::AuditLog`]) that owns
//! the trail handle and writes what the callers queue, in batches.
//!
//! - Callers render their record (outside any lock) and send it over a bounded
//!   channel; a full channel blocks the caller (back-pressure, never silent loss).
//! - The thread takes every queued message (up to [`MAX_BATCH`]) and appends them with
//!   one locked write. Under load batches grow by themselves; idle, a record is
//!   written as soon as it arrives.
//! - `required`: the trail `fdatasync`s each batch and every caller waits for its own
//!   acknowledgement, which carries the write error if there was one (group commit:
//!   one `fsync` answers every thread waiting in that batch).
//! - `buffered`: callers do not wait; the writer pauses up to [`COALESCE`] between
//!   passes (less when the queue would be half full sooner), and the file is
//!   `fdatasync`ed at most [`SYNC_EVERY`] after its oldest unsynced record was made,
//!   and at `flush`/shutdown. A failed write keeps the
//!   records in memory (up to `retry_capacity`, default [`RETRY_CAP`]) and retries; records beyond that are
//!   dropped and counted, and a `gap` record says how many once writing works again.
//!   Every failure increments a counter and is logged (at most every 10 s).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{AuditError, AuditResult};
use super::record::{Event, Timestamp};
use super::render::Renderer;
use super::seal::Sealer;
use super::syslog::SyslogSink;
use super::trail::{Tails, Trail};
use super::{AuditConfig, Mode};

mod append;

/// Most messages taken into one append.
pub const MAX_BATCH: usize = 4096;
/// `buffered` mode: longest time written records stay un-synced.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);
/// `buffered` mode: default of most records kept for a retry while the trail cannot
/// be written.
pub const RETRY_CAP: usize = 65_536;
/// `buffered` mode: the writer's pause after each write (see `State::run`). A full
/// queue or a flush ends it early.
pub const COALESCE: Duration = Duration::from_millis(40);
const RETRY_EVERY: Duration = Duration::from_millis(250);
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// A record on its way to the writer: stamped on the caller's thread, serialised
/// on the writer's (the caller pays a move and a channel send, not the JSON).
pub(crate) struct Pending {
    pub(crate) time: Timestamp,
    pub(crate) event: Event,
    pub(crate) ack: Option<SyncSender<AuditResult<()>>>,
}

// A record is moved into the channel's preallocated slot; boxing it would allocate
// on the caller's thread and free on the writer's, per record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    Record(Pending),
    Flush(SyncSender<AuditResult<()>>),
    Shutdown(SyncSender<AuditResult<()>>),
}

/// Counters shared between the writer and [`super::AuditLog::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    written: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
    seals: AtomicU64,
    seal_errors: AtomicU64,
    syslog_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// What the writer has done so far in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records written (seals, gaps and repairs included).
    pub written: u64,
    /// Failed append attempts.
    pub errors: u64,
    /// Records dropped in `buffered` mode after failures.
    pub lost: u64,
    /// Seals written.
    pub seals: u64,
    /// Seals the sealer failed to make.
    pub seal_errors: u64,
    /// Lines syslog did not take.
    pub syslog_errors: u64,
    /// The last write or seal error.
    pub last_error: Option<String>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            written: self.written.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            seals: self.seals.load(Ordering::Relaxed),
            seal_errors: self.seal_errors.load(Ordering::Relaxed),
            syslog_errors: self.syslog_errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn note_error(&self, e: &AuditError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e.to_string());
        }
    }
}

/// The running writer of one process.
pub(crate) struct WriterHandle {
    tx: SyncSender<Msg>,
    /// The writer thread, to end its pause (`unpark`) when the queue is full or a
    /// caller waits for it.
    waker: std::thread::Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
    pid: u32,
    pub(crate) counters: Arc<Counters>,
}

impl WriterHandle {
    /// Opens the trail and starts the thread.
    pub(crate) fn spawn(
        cfg: &AuditConfig,
        sealer: Option<Arc<dyn Sealer>>,
    ) -> AuditResult<WriterHandle> {
        let process_fields = super::context::ProcessInfo::current().json_fields();
        let trail = Trail::open(cfg.trail_options(), process_fields.clone(), sealer.clone())?;
        let syslog = match &cfg.syslog {
            Some(target) => Some(SyslogSink::new(target.clone())?),
            None => None,
        };
        let seal_syslog = match &cfg.seal_syslog {
            Some(target) => Some(SyslogSink::new(target.clone())?),
            None => None,
        };
        let counters = Arc::new(Counters::default());
        let queue_capacity = cfg.queue_capacity.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(queue_capacity);
        let mut state = State {
            trail,
            mode: cfg.mode,
            sealer,
            seal_every_records: cfg.seal_every_records.max(1),
            seal_every: cfg.seal_every,
            counters: Arc::clone(&counters),
            syslog,
            seal_syslog,
            process_fields,
            renderer: Renderer::default(),
            tails: Tails::default(),
            since_seal: 0,
            last_seal: Instant::now(),
            unsynced_since: None,
            retry: VecDeque::new(),
            retry_cap: cfg.retry_capacity,
            pause: cfg.pause,
            queue_capacity,
            last_drain: Instant::now(),
            lost: 0,
            failures: 0,
            last_failure: None,
            next_error_log: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("keywarden-audit".into())
            .spawn(move || state.run(&rx))
            .map_err(|e| AuditError::Io(format!("cannot start the audit writer: {e}")))?;
        Ok(WriterHandle {
            tx,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
            stopped: AtomicBool::new(false),
            pid: std::process::id(),
            counters,
        })
    }

    /// Queues `msg`. A full queue ends the writer's pause before this waits for room:
    /// otherwise callers would stall for the rest of it.
    pub(crate) fn send(&self, msg: Msg) -> AuditResult<()> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                self.waker.unpark();
                self.tx.send(msg).map_err(|_| AuditError::WriterGone)
            }
            Err(TrySendError::Disconnected(_)) => Err(AuditError::WriterGone),
        }
    }

    /// Sends `make(reply)`, ends the writer's pause (a flush or a shutdown would
    /// otherwise wait for the rest of it, up to the sync deadline), and waits for
    /// the writer's answer.
    pub(crate) fn request(
        &self,
        make: impl FnOnce(SyncSender<AuditResult<()>>) -> Msg,
    ) -> AuditResult<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(make(tx))?;
        self.waker.unpark();
        rx.recv().map_err(|_| AuditError::WriterGone)?
    }

    /// Seals, syncs and stops the thread; later calls do nothing.
    pub(crate) fn shutdown(&self) -> AuditResult<()> {
        if self.stopped.swap(true, Ordering::AcqRel) || self.pid != std::process::id() {
            return Ok(());
        }
        let result = self.request(Msg::Shutdown);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        match result {
            Err(AuditError::WriterGone) => Ok(()),
            other => other,
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A forked child's copy: the thread exists only in the parent. Joining
            // or detaching it here would act on a thread this process does not have.
            if let Some(t) = self.thread.get_mut().ok().and_then(Option::take) {
                std::mem::forget(t);
            }
            return;
        }
        if let Err(e) = self.shutdown() {
            log::error!("audit: shutdown: {e}");
        }
    }
}

struct State {
    trail: Trail,
    mode: Mode,
    sealer: Option<Arc<dyn Sealer>>,
    seal_every_records: u64,
    seal_every: Duration,
    counters: Arc<Counters>,
    syslog: Option<SyslogSink>,
    /// Receives each seal record only (`[audit] seal_syslog`).
    seal_syslog: Option<SyslogSink>,
    process_fields: String,
    /// Rendering state and the batch's rendered tails, kept from batch to batch.
    renderer: Renderer,
    tails: Tails,
    since_seal: u64,
    last_seal: Instant,
    unsynced_since: Option<Instant>,
    retry: VecDeque<Pending>,
    retry_cap: usize,
    pause: Duration,
    queue_capacity: usize,
    /// When the last pass took what was queued.
    last_drain: Instant,
    lost: u64,
    failures: u64,
    last_failure: Option<AuditError>,
    next_error_log: Instant,
}

impl State {
    fn run(&mut self, rx: &Receiver<Msg>) {
        let mut batch = Vec::new();
        loop {
            let wait = self
                .next_deadline()
                .saturating_duration_since(Instant::now());
            let mut replies = Vec::new();
            let mut stop = None;
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut msg = Some(first);
                    while let Some(m) = msg.take() {
                        match m {
                            Msg::Record(p) => batch.push(p),
                            Msg::Flush(r) => replies.push(r),
                            Msg::Shutdown(r) => stop = Some(r),
                        }
                        if stop.is_none() && batch.len() < MAX_BATCH {
                            msg = rx.try_recv().ok();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.finish();
                    return;
                }
            }
            let pause = self.pause_after(batch.len());
            // Pause only when the queue was drained: a full batch means more are
            // waiting.
            let wrote = !batch.is_empty() && batch.len() < MAX_BATCH;
            self.write(&mut batch, false);
            self.periodic();
            if wrote && replies.is_empty() && stop.is_none() && self.mode == Mode::Buffered {
                // Let the next records accumulate: a sender finds the writer not
                // waiting and queues without a wake-up (a futex call per record
                // otherwise), and the writer's fixed cost per pass (wake-up, lock,
                // head, `write`) is shared by more records. A full queue, a flush
                // or a shutdown unparks it; an early or spurious return just starts
                // the next pass sooner.
                std::thread::park_timeout(
                    pause.min(
                        self.next_deadline()
                            .saturating_duration_since(Instant::now()),
                    ),
                );
            }
            if !replies.is_empty() {
                let answer = self.sync();
                for r in replies {
                    let _ = r.send(answer.clone());
                }
            }
            if let Some(r) = stop {
                let _ = r.send(self.finish());
                return;
            }
        }
    }

    /// The pause after a pass that took `arrived` records (see [`pause_for`]); the
    /// rate runs from the previous pass's drain.
    fn pause_after(&mut self, arrived: usize) -> Duration {
        let now = Instant::now();
        let over = now.saturating_duration_since(std::mem::replace(&mut self.last_drain, now));
        pause_for(self.pause, self.queue_capacity, arrived, over)
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(3600);
        if let Some(t) = self.unsynced_since {
            next = next.min(t + SYNC_EVERY);
        }
        if self.sealer.is_some() && self.since_seal > 0 {
            next = next.min(self.last_seal + self.seal_every);
        }
        if !self.retry.is_empty() {
            next = next.min(now + RETRY_EVERY);
        }
        next
    }

    /// Timer work: a due seal, the buffered-mode sync, a retry.
    fn periodic(&mut self) {
        if !self.retry.is_empty() {
            self.write(&mut Vec::new(), false);
        }
        if self.sealer.is_some()
            && self.since_seal > 0
            && self.last_seal.elapsed() >= self.seal_every
        {
            self.write(&mut Vec::new(), true);
        }
        if self
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= SYNC_EVERY)
        {
            let _ = self.sync();
        }
    }

    /// Makes everything written so far durable; fails while records wait for a retry.
    fn sync(&mut self) -> AuditResult<()> {
        if !self.retry.is_empty() {
            self.write(&mut Vec::new(), false);
        }
        if self.unsynced_since.take().is_some() {
            if let Err(e) = self.trail.sync() {
                self.counters.note_error(&e);
                log::error!("audit: {e}");
                return Err(e);
            }
        }
        match &self.last_failure {
            Some(e) if !self.retry.is_empty() => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> AuditResult<()> {
        if self.sealer.is_some() && self.since_seal > 0 {
            self.write(&mut Vec::new(), true);
        }
        self.sync()
    }
}

/// Fewest records a pass must take for their rate to shorten the pause: one or two
/// records over a short time say nothing about the load.
const RATE_SAMPLE: u32 = 64;

/// The pause after a pass that took `arrived` records queued over `over`: `limit`,
/// or less when at that rate the queue would be half full sooner. Callers that find
/// the queue full wait for the writer, so at high rates a fixed pause would leave the
/// writer idle while they wait (they end it, but only once the queue is full).
fn pause_for(limit: Duration, capacity: usize, arrived: usize, over: Duration) -> Duration {
    let Ok(arrived @ RATE_SAMPLE..) = u32::try_from(arrived) else {
        return limit;
    };
    let half = u32::try_from(capacity / 2).unwrap_or(u32::MAX).max(1);
    limit.min(over.saturating_mul(half) / arrived)
}

/// When the oldest of a batch's records was made, as an `Instant`: the sync
/// deadline runs from there, so a record is on disk within [`SYNC_EVERY`] of being
/// made, not of being written (up to a pause later). Its wall-clock stamp is the
/// only age a record carries; a clock stepped back counts as now (the deadline runs
/// from the write), one stepped forward only brings the sync sooner.
fn queued_since(oldest: Option<&Pending>) -> Instant {
    let now = Instant::now();
    let age = oldest
        .and_then(|p| std::time::SystemTime::now().duration_since(p.time.0).ok())
        .unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

#[cfg(test)]
mod tests;
