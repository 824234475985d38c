//! Why an emulated node could not be set up, and when a test skips instead.

use std::path::PathBuf;

use crate::skip;
use crate::stack::StackError;

/// Why the emulated node could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// Not root.
    #[error(
        "an emulated EKS node needs root (CAP_NET_ADMIN) to create network namespaces: run the tests as root (CI does)"
    )]
    NotRoot,
    /// An `ip` command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A thread could not enter a namespace.
    #[error("cannot enter network namespace {name}: {source}")]
    Enter {
        /// Namespace name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A server could not be started inside a namespace.
    #[error("cannot start {what} in network namespace {ns}: {detail}")]
    Start {
        /// What.
        what: &'static str,
        /// Namespace name.
        ns: String,
        /// Why.
        detail: String,
    },
    /// moto could not be started or seeded.
    #[error("moto in the node namespace: {0}")]
    Moto(#[from] StackError),
    /// The token file could not be written.
    #[error("cannot write the service-account token file {path}: {source}")]
    TokenFile {
        /// Path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// Why a test would be skipped (`None`: it must run). Only when not root and `CI`
/// is not `true`.
pub fn skip_reason() -> Option<String> {
    if rustix::process::geteuid().is_root() || skip::ci() {
        None
    } else {
        Some(NetnsError::NotRoot.to_string())
    }
}
