//! Why the stack could not be started.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Why the stack could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// No `moto_server` executable.
    #[error(
        "moto_server not found at {}: run scripts/ensure-moto.sh (or set MOTO_SERVER to its path)",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// Paths looked at.
        tried: Vec<PathBuf>,
    },
    /// Spawning failed.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// moto could not bind its port (with a fixed [`MotoStackBuilder::port`](super::MotoStackBuilder::port) in use).
    #[error("moto_server could not listen on {host}:{port}; its log ends with:\n{log}")]
    Port {
        /// The bind host.
        host: IpAddr,
        /// The port asked for (0: any).
        port: u16,
        /// Tail of its output.
        log: String,
    },
    /// The process exited before being ready.
    #[error("moto_server exited before becoming ready ({status}); its log ends with:\n{log}")]
    Exited {
        /// Exit status.
        status: String,
        /// Tail of its output.
        log: String,
    },
    /// Not ready in time.
    #[error(
        "moto_server did not answer on {endpoint} within {timeout:?}; its log ends with:\n{log}"
    )]
    NotReady {
        /// Endpoint polled.
        endpoint: String,
        /// Bound.
        timeout: Duration,
        /// Tail of its output.
        log: String,
    },
    /// A seeding request failed.
    #[error("seeding moto failed at step `{step}`: {detail}")]
    Seed {
        /// What was being done.
        step: String,
        /// Status/body or transport error.
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_names_the_script() {
        let e = StackError::NotFound {
            tried: vec![PathBuf::from("/r/.venv/bin/moto_server")],
        };
        assert_eq!(
            e.to_string(),
            "moto_server not found at /r/.venv/bin/moto_server: run scripts/ensure-moto.sh (or set MOTO_SERVER to its path)"
        );
    }
}
