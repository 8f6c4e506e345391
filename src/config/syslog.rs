//! The syntax of a syslog target (`[audit] syslog`, `[audit] seal_syslog`): checked
//! when the configuration is read, and the address the audit engine's sender uses.

use std::path::PathBuf;

/// Where to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// `udp://host:port`
    Udp(String),
    /// `unix:/path` or an absolute path: a local datagram socket such as `/dev/log`.
    Unix(PathBuf),
}

impl SyslogTarget {
    /// Parses the `[audit] syslog` setting; the error says what was expected.
    pub fn parse(text: &str) -> Result<SyslogTarget, String> {
        if let Some(addr) = text.strip_prefix("udp://") {
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(format!("syslog {text}: expected udp://HOST:PORT"));
            }
            return Ok(SyslogTarget::Udp(addr.to_owned()));
        }
        let path = text.strip_prefix("unix:").unwrap_or(text);
        if path.starts_with('/') {
            return Ok(SyslogTarget::Unix(PathBuf::from(path)));
        }
        Err(format!(
            "syslog {text}: expected udp://HOST:PORT, unix:/PATH or an absolute socket path"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            SyslogTarget::parse("udp://127.0.0.1:514").unwrap(),
            SyslogTarget::Udp("127.0.0.1:514".into())
        );
        assert_eq!(
            SyslogTarget::parse("unix:/dev/log").unwrap(),
            SyslogTarget::Unix("/dev/log".into())
        );
        assert_eq!(
            SyslogTarget::parse("/dev/log").unwrap(),
            SyslogTarget::Unix("/dev/log".into())
        );
        assert!(SyslogTarget::parse("udp://host").is_err());
        assert!(SyslogTarget::parse("tcp://h:1").is_err());
    }
}
