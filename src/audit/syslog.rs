//! Forwarding to syslog as RFC 5424 messages over a datagram socket.
//!
//! Written here rather than with the `syslog` crate: its 5424 formatter takes a
//! numeric MSGID and stamps its own time, while a forwarded audit line must carry the
//! record's own time and kind, and the writer thread needs a send that never blocks.
//!
//! Message: `<PRI>1 TIME HOST keywarden PID KIND - JSON`, where PRI is facility
//! `authpriv` (10) × 8 + a severity chosen from the record (refusals and failures
//! stand out), TIME/HOST/PID are the record's, KIND is its `kind`, and the message
//! is the record line exactly as written to the trail (so a SIEM can check the chain
//! from syslog too). No structured data (`-`), no BOM.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;

use super::error::{AuditError, AuditResult};
use super::record::{Decision, RecordView};
use crate::config::SyslogTarget;

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// A non-blocking datagram sender to one target.
pub struct SyslogSink {
    target: SyslogTarget,
    socket: Option<Socket>,
}

impl SyslogSink {
    /// Checks the target; connects on first use (a syslog daemon that starts later,
    /// or restarts, is picked up).
    pub fn new(target: SyslogTarget) -> AuditResult<SyslogSink> {
        if let SyslogTarget::Udp(addr) = &target {
            resolve(addr)?;
        }
        Ok(SyslogSink {
            target,
            socket: None,
        })
    }

    fn connect(&self) -> std::io::Result<Socket> {
        match &self.target {
            SyslogTarget::Udp(addr) => {
                let to = resolve(addr).map_err(std::io::Error::other)?;
                let local: SocketAddr = if to.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let s = UdpSocket::bind(local)?;
                s.connect(to)?;
                s.set_nonblocking(true)?;
                Ok(Socket::Udp(s))
            }
            SyslogTarget::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_nonblocking(true)?;
                Ok(Socket::Unix(s))
            }
        }
    }

    /// Formats and sends one record line. An error drops the connection so the next
    /// line reconnects; the caller counts the failure.
    pub fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        let message = format_5424(line);
        if self.socket.is_none() {
            self.socket = Some(self.connect()?);
        }
        let sent = match &self.socket {
            Some(Socket::Udp(s)) => s.send(message.as_bytes()),
            Some(Socket::Unix(s)) => s.send(message.as_bytes()),
            None => Ok(0),
        };
        if sent.is_err() {
            self.socket = None;
        }
        sent.map(|_| ())
    }
}

fn resolve(addr: &str) -> AuditResult<SocketAddr> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| AuditError::Config(format!("syslog: cannot resolve {addr}")))
}

const AUTHPRIV: u8 = 10;

/// The RFC 5424 severity of a record.
pub fn severity(r: &RecordView) -> u8 {
    let kind = r.kind.as_deref().unwrap_or("");
    let failed = r.outcome.as_deref() == Some("error");
    match kind {
        "gap" => 3,
        "module" if r.what.as_deref() == Some("error") => 3,
        _ if r.decision == Some(Decision::Deny) || failed || kind == "repair" => 4,
        "op" if r.rv.as_deref() != Some("CKR_OK") => 5,
        "lifecycle" | "admin" | "reload" | "module" => 5,
        _ => 6,
    }
}

/// RFC 5424 header fields allow printable US-ASCII without spaces, 1–255 chars.
fn header_field(value: Option<&str>, max: usize) -> String {
    let clean: String = value
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

/// One record line as an RFC 5424 message.
pub fn format_5424(line: &[u8]) -> String {
    let view: RecordView = serde_json::from_slice(line).unwrap_or_default();
    let pri = u16::from(AUTHPRIV) * 8 + u16::from(severity(&view));
    format!(
        "<{pri}>1 {} {} keywarden {} {} - {}",
        header_field(view.time.as_deref(), 64),
        header_field(view.host.as_deref(), 255),
        view.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        header_field(view.kind.as_deref(), 32),
        String::from_utf8_lossy(line)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc_5424() {
        let line = br#"{"seq":3,"prev":"00","time":"2025-01-31T12:00:00.000001Z","host":"h 1","pid":42,"uid":0,"user":null,"exe":null,"kind":"op","function":"C_Sign","decision":"deny","rv":"CKR_FUNCTION_FAILED"}"#;
        let m = format_5424(line);
        // authpriv.warning = 10*8+4
        assert!(
            m.starts_with("<84>1 2025-01-31T12:00:00.000001Z h1 keywarden 42 op - {\"seq\":3"),
            "{m}"
        );
        assert!(m.ends_with(&*String::from_utf8_lossy(line)));
        let ok = br#"{"kind":"op","rv":"CKR_OK","decision":"allow"}"#;
        assert!(format_5424(ok).starts_with("<86>1 - - keywarden - op - "));
    }
}
