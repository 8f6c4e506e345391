//! Rendering a record's line, on the writer thread for every record: one
//! buffer sized for a typical record, the event serialised into it in place, and
//! the time written digit by digit. `serde_json::to_string` into a fresh `String`
//! (grown 128 → 256 → 512 bytes), then `format!` with `humantime`'s `Display`,
//! cost ~8 500 instructions a record (benches/README.md).
//!
//! Operation records, the ones written per call, are written field by field
//! ([`op_fields`]): serde_json escapes every field name byte by byte (~2 900
//! instructions a record). The output is byte for byte what `#[derive(Serialize)]`
//! on `OpEvent` writes; a test holds the two together, so a field added to
//! `OpEvent` must be added here too.
//!
//! The writer renders with one [`Renderer`] into one reused buffer: no allocation
//! and no `core::fmt` per record. A mechanism's text (`CKM_AES_GCM(iv_len=12, …)`,
//! four `write!`s) is formatted once per distinct mechanism and parameter summary
//! and then copied. Formatting on the writer thread is not free for the caller:
//! measured on this 2-core VM, a writer that formatted four strings per record
//! cost AES-GCM callers ~8 % of their throughput (benches/README.md).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::{Decision, Event, Mechanism, OpEvent};
use crate::abi::MechanismSummary;
use crate::fasthash::FastHash;

/// Most distinct mechanism texts a [`Renderer`] keeps (an application uses a
/// handful; parameters such as AAD lengths can vary more).
const MECHANISMS_MAX: usize = 1024;

/// The first second `rfc3339_micros` does not write (year 10000).
const LAST_SECOND: u64 = 253_402_300_800;

/// The writer's rendering state: the mechanism texts seen so far, as JSON strings.
#[derive(Default)]
pub(super) struct Renderer {
    mechanisms: HashMap<MechanismSummary, Box<[u8]>, FastHash>,
    /// `YYYY-MM-DDTHH:MM:SS` of the last second rendered, and that second.
    second: Option<(u64, [u8; 19])>,
}

impl Renderer {
    /// Appends `"time":"…",PROCESS_FIELDS,EVENT_FIELDS}` to `out`.
    pub(super) fn tail_into(
        &mut self,
        out: &mut Vec<u8>,
        time: SystemTime,
        process_fields: &str,
        event: &Event,
    ) {
        out.extend_from_slice(b"\"time\":\"");
        self.time(out, time);
        out.extend_from_slice(b"\",");
        out.extend_from_slice(process_fields.as_bytes());
        out.push(b',');
        let at = out.len();
        if let Event::Op(op) = event {
            op_fields(out, op, self);
        } else if serde_json::to_writer(&mut *out, event).is_err() {
            out.truncate(at);
            out.extend_from_slice(b"{\"kind\":\"module\",\"what\":\"error\"}");
        }
        // The event is a JSON object: its fields continue the line, its `{` goes.
        if out.get(at) == Some(&b'{') {
            out.remove(at);
        }
    }

    /// [`rfc3339_micros`], the date and time of day reused within one second.
    fn time(&mut self, out: &mut Vec<u8>, t: SystemTime) {
        let since = t.duration_since(UNIX_EPOCH).ok();
        match (since, self.second) {
            (Some(d), Some((s, prefix))) if d.as_secs() == s => {
                out.extend_from_slice(&prefix);
                out.push(b'.');
                digits(out, u64::from(d.subsec_micros()), 6);
                out.push(b'Z');
            }
            _ => {
                let start = out.len();
                rfc3339_micros(out, t);
                // Only an in-range time has its own second (the bounds are fixed text).
                let in_range = since.is_some_and(|d| d.as_secs() < LAST_SECOND);
                if let (true, Some(d), Some(prefix)) = (in_range, since, out.get(start..start + 19))
                {
                    self.second = prefix.try_into().ok().map(|p| (d.as_secs(), p));
                }
            }
        }
    }

    fn mechanism(&mut self, out: &mut Vec<u8>, m: &MechanismSummary) {
        if let Some(text) = self.mechanisms.get(m) {
            return out.extend_from_slice(text);
        }
        let mut text = Vec::new();
        string(&mut text, &m.to_string());
        out.extend_from_slice(&text);
        if self.mechanisms.len() >= MECHANISMS_MAX {
            self.mechanisms.clear();
        }
        self.mechanisms.insert(*m, text.into_boxed_slice());
    }
}

/// Room for the time, the event and the separators beyond the process fields; a
/// typical operation record's event is 250–400 bytes.
const TYPICAL: usize = 512;

/// `"time":"…",PROCESS_FIELDS,EVENT_FIELDS}`: see `record::render_tail`.
pub(super) fn tail(time: SystemTime, process_fields: &str, event: &Event) -> String {
    let mut out = Vec::with_capacity(process_fields.len() + TYPICAL);
    Renderer::default().tail_into(&mut out, time, process_fields, event);
    // serde_json and the digits write UTF-8; the process fields are a `&str`.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `"kind":"op",` and the fields of `e`, in declaration order, and the closing `}`.
fn op_fields(out: &mut Vec<u8>, e: &OpEvent, r: &mut Renderer) {
    out.extend_from_slice(b"\"kind\":\"op\",\"function\":");
    string(out, e.function.name());
    out.extend_from_slice(b",\"identity\":");
    opt_string(out, e.identity.as_deref());
    out.extend_from_slice(b",\"role\":");
    opt_string(out, e.role.as_deref());
    out.extend_from_slice(b",\"slot\":");
    opt_number(out, e.slot);
    out.extend_from_slice(b",\"token\":");
    opt_string(out, e.token.as_deref());
    out.extend_from_slice(b",\"session\":");
    opt_number(out, e.session);
    out.extend_from_slice(b",\"mechanism\":");
    match &e.mechanism {
        Some(Mechanism::Summary(m)) => r.mechanism(out, m),
        Some(Mechanism::Type(t)) => string(out, &crate::abi::mechanism_name(*t)),
        Some(Mechanism::Text(t)) => string(out, t),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"key_label\":");
    opt_string(out, e.key_label.as_deref());
    out.extend_from_slice(b",\"key_id\":");
    match &e.key_id {
        Some(id) => hex_string(out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"key_version\":");
    opt_number(out, e.key_version.map(u64::from));
    out.extend_from_slice(match e.decision {
        Decision::Allow => b",\"decision\":\"allow\",\"rule\":",
        Decision::Deny => b",\"decision\":\"deny\",\"rule\":",
    });
    opt_string(out, e.rule.as_deref());
    out.extend_from_slice(b",\"rv\":");
    string(out, &crate::abi::rv_name(e.rv.0));
    out.extend_from_slice(b",\"bytes_in\":");
    number(out, e.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    number(out, e.bytes_out);
    out.extend_from_slice(b",\"duration_us\":");
    number(out, e.duration_us);
    // Only in the records of creating calls (`skip_serializing_if`).
    if let Some(new_key) = &e.new_key {
        if let Some(label) = new_key.label.as_deref() {
            out.extend_from_slice(b",\"new_key_label\":");
            string(out, label);
        }
        if let Some(id) = &new_key.id {
            out.extend_from_slice(b",\"new_key_id\":");
            hex_string(out, id);
        }
        if let Some(v) = new_key.version {
            out.extend_from_slice(b",\"new_key_version\":");
            number(out, u64::from(v));
        }
    }
    out.push(b'}');
}

/// A JSON string as serde_json writes it: copied when nothing needs escaping (the
/// usual case: names, serials, labels), else by serde_json itself.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Bytes as a JSON string of lower-case hex.
fn hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    super::chain::push_hex(out, bytes);
    out.push(b'"');
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `n` in decimal, as serde_json writes it (which uses `itoa` too: two digits per
/// step from a table).
pub(super) fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_number(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => number(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// The last `n` (≤ 6) decimal digits of `v`, zero-padded. Right to left, dividing
/// by the constant 10 (a multiply), not by 10^i.
fn digits(out: &mut Vec<u8>, mut v: u64, n: usize) {
    let mut d = [b'0'; 6];
    let n = n.min(d.len());
    for slot in d[..n].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&d[..n]);
}

/// `2025-01-31T12:00:00.123456Z`, exactly as `humantime::format_rfc3339_micros`
/// writes it. Outside the years 1970–9999 (which `humantime` refuses with a
/// formatting error, a panic in `format!`), the nearest bound: a clock that far
/// off is not worth losing the record over.
pub(super) fn rfc3339_micros(out: &mut Vec<u8>, t: SystemTime) {
    const FIRST: &[u8] = b"1970-01-01T00:00:00.000000Z";
    const LAST: &[u8] = b"9999-12-31T23:59:59.999999Z";
    let Ok(since) = t.duration_since(UNIX_EPOCH) else {
        return out.extend_from_slice(FIRST);
    };
    let secs = since.as_secs();
    let of_day = secs % 86_400;
    let (year, month, day) =
        crate::coarse_clock::civil_date(i64::try_from(secs).unwrap_or(i64::MAX));
    let (year, month, day) = (year.unsigned_abs(), u64::from(month), u64::from(day));
    if year > 9999 {
        return out.extend_from_slice(LAST);
    }
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, of_day / 3600, 2);
    out.push(b':');
    digits(out, of_day % 3600 / 60, 2);
    out.push(b':');
    digits(out, of_day % 60, 2);
    out.push(b'.');
    digits(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::record::{KeyRef, Rv};
    use super::*;
    use crate::functions::FunctionId;

    fn by_serde(e: &OpEvent) -> String {
        serde_json::to_string(&Event::Op(e.clone())).unwrap()
    }

    fn by_hand(e: &OpEvent) -> String {
        let mut out = b"{".to_vec();
        op_fields(&mut out, e, &mut Renderer::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn op_records_are_written_as_serde_writes_them() {
        let bare = OpEvent::new(FunctionId::C_OpenSession, pkcs11_sys::CKR_OK);
        let mut full = OpEvent::new(FunctionId::C_SignFinal, 0x8000_0001)
            .with_key(KeyRef {
                label: Some("app \"quoted\" \\ \n\t\u{1}\u{7f} é 🔑".into()),
                id: Some(vec![0x00, 0xab, 0xff].into()),
                version: Some(u32::MAX),
            })
            .with_identity("alice", Some("sign\u{0}er".into()))
            .with_mechanism_type(pkcs11_sys::CKM_AES_GCM)
            .denied("rule-\u{1f}x")
            .with_duration(Duration::from_micros(412));
        full.slot = Some(0);
        full.session = Some(u64::MAX);
        full.token = Some("a1b2c3d4e5f60708".into());
        full.bytes_in = 1024;
        full.bytes_out = 10;
        let mut odd = bare.clone();
        odd.rv = Rv(pkcs11_sys::CKR_VENDOR_DEFINED + 7);
        odd.decision = Decision::Deny;
        let created = full.clone().with_new_key(KeyRef {
            label: Some("new \"k\"\n".into()),
            id: Some(vec![0x4b, 0x57].into()),
            version: Some(1),
        });
        let id_only = bare.clone().with_new_key(KeyRef {
            label: None,
            id: Some(vec![0x01].into()),
            version: None,
        });
        for e in [&bare, &full, &odd, &created, &id_only] {
            assert_eq!(by_hand(e), by_serde(e));
        }
        for f in FunctionId::ALL {
            let e = OpEvent::new(*f, pkcs11_sys::CKR_OK);
            assert_eq!(by_hand(&e), by_serde(&e));
        }
    }

    #[test]
    fn a_reused_renderer_writes_what_a_fresh_one_writes() {
        use crate::abi::{MechParams, MechanismSummary};
        let gcm = |aad_len| MechanismSummary {
            mechanism: pkcs11_sys::CKM_AES_GCM,
            params: MechParams::Gcm {
                iv_len: 12,
                aad_len,
                tag_bits: 128,
            },
        };
        let mut reused = Renderer::default();
        let at = UNIX_EPOCH + Duration::from_secs(1_777_636_800);
        // Cached texts are keyed by the whole summary: a changed parameter is not
        // rendered with an earlier one's text, and the cap empties the cache.
        for aad_len in (0..3).chain(0..3).chain(0..MECHANISMS_MAX as u64 + 5) {
            let mut e = OpEvent::new(FunctionId::C_Encrypt, pkcs11_sys::CKR_OK);
            e.mechanism = Some(Mechanism::Summary(gcm(aad_len)));
            let event = Event::Op(e);
            let mut out = Vec::new();
            reused.tail_into(&mut out, at, "\"pid\":1", &event);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                tail(at, "\"pid\":1", &event)
            );
        }
        assert!(reused.mechanisms.len() <= MECHANISMS_MAX);
        let mut out = b"{".to_vec();
        let mut e = OpEvent::new(FunctionId::C_Encrypt, pkcs11_sys::CKR_OK);
        e.mechanism = Some(Mechanism::Summary(gcm(7)));
        op_fields(&mut out, &e, &mut reused);
        assert_eq!(String::from_utf8(out).unwrap(), by_serde(&e));
    }

    #[test]
    fn times_read_as_humantime_writes_them() {
        let mut t = 0u64;
        // Every day boundary over 400 years (leap rules), plus odd instants.
        let mut samples: Vec<Duration> = Vec::new();
        while t < 146_097 * 86_400 {
            samples.push(Duration::from_secs(t));
            t += 86_400 * 7 + 3_601;
        }
        samples.extend([
            Duration::new(951_782_400, 999_999_999),
            Duration::new(1_777_636_800, 123_456_789),
            Duration::new(253_402_300_799, 999_999_000),
        ]);
        // Several instants within one second, for the renderer's cached second.
        samples.extend((0..5).map(|i| Duration::new(1_777_636_801, i * 200_000_123)));
        let mut reused = Renderer::default();
        for d in samples {
            let at = UNIX_EPOCH + d;
            let mut out = Vec::new();
            rfc3339_micros(&mut out, at);
            let want = humantime::format_rfc3339_micros(at).to_string();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{d:?}");
            let mut out = Vec::new();
            reused.time(&mut out, at);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{d:?}, reused");
        }
        for (at, want) in [
            (
                UNIX_EPOCH - Duration::from_secs(1),
                "1970-01-01T00:00:00.000000Z",
            ),
            (
                UNIX_EPOCH + Duration::from_secs(253_402_300_800),
                "9999-12-31T23:59:59.999999Z",
            ),
        ] {
            let mut out = Vec::new();
            rfc3339_micros(&mut out, at);
            assert_eq!(String::from_utf8(out).unwrap(), want);
            // Twice: a bound is fixed text, never a cached second.
            for _ in 0..2 {
                let mut out = Vec::new();
                reused.time(&mut out, at);
                assert_eq!(String::from_utf8(out).unwrap(), want);
            }
        }
    }
}
