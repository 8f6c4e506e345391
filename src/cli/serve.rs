//! `keywarden serve`: the service in the foreground, on a socket path or the one
//! systemd passed, until SIGTERM or SIGINT. The built-in handler answers the
//! `Hello` exchange only (`service::hello`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::service::hello::HelloHandler;
use crate::service::{listen, Limits, Server};
use crate::{Error, Result};

/// Where the service listens when neither `--socket` nor socket activation says.
pub const DEFAULT_SOCKET: &str = "/run/keywarden/keywarden.sock";

/// `keywarden serve`'s options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Socket path to bind (mode 0660; a stale socket there is replaced, anything
    /// else refused). Default: the socket systemd passed, else /run/keywarden/keywarden.sock.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml),
    /// checked at start.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Connections open at once, all clients together.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Connections open at once by the clients of one uid.
    #[arg(long, value_name = "N")]
    max_per_uid: Option<usize>,
    /// Milliseconds a connection may wait between frames before it is closed.
    #[arg(long, value_name = "MS")]
    idle_timeout: Option<u64>,
    /// Milliseconds from a frame's first byte to its last before the connection is
    /// closed (and the longest a write of a reply may block).
    #[arg(long, value_name = "MS")]
    frame_timeout: Option<u64>,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        let d = Limits::default();
        let ms = Duration::from_millis;
        Limits {
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_per_uid: self.max_per_uid.unwrap_or(d.max_per_uid),
            max_frame: d.max_frame,
            idle_timeout: self.idle_timeout.map_or(d.idle_timeout, ms),
            frame_timeout: self.frame_timeout.map_or(d.frame_timeout, ms),
        }
    }
}

pub(super) fn run(args: &ServeArgs) -> Result<ExitCode> {
    let conf = args.config.clone().unwrap_or_else(Config::path_from_env);
    Config::load(&conf)?;
    // Registered before the socket exists, so a signal sent once the start line is
    // out is never missed.
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
    let handler = Arc::new(HelloHandler);
    let (server, shown) = start(args, handler)?;
    println!("serving on {}", shown.display());
    let signal = signals.forever().next();
    log::info!("service: stopping on signal {signal:?}");
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// The server on `--socket`, else the activated socket, else the default path, and
/// the path it listens on.
fn start(args: &ServeArgs, handler: Arc<HelloHandler>) -> Result<(Server, PathBuf)> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::Internal(format!("{what} {}: {e}", path.display()))
    };
    let activated = match &args.socket {
        Some(_) => None,
        None => listen::activated().map_err(|e| io("socket activation", Path::new("fd 3"), e))?,
    };
    if let Some(listener) = activated {
        let shown = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_owned))
            .unwrap_or_else(|| PathBuf::from("the socket systemd passed"));
        let server = Server::start(listener, args.limits(), handler)
            .map_err(|e| io("cannot serve on", &shown, e))?;
        return Ok((server, shown));
    }
    let path = args
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let bound = listen::bind(&path).map_err(|e| io("cannot bind", &path, e))?;
    let server = Server::start_bound(bound, args.limits(), handler)
        .map_err(|e| io("cannot serve on", &path, e))?;
    Ok((server, path))
}
