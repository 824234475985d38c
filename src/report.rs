//! Printing an error with its causes, for command-line tools.
//!
//! [`ErrorReport`] is the provider's [`ErrorChain`](crate::ErrorChain): the
//! error, then each distinct cause ([`Error::source`](std::error::Error::source))
//! on its own line, never a `Debug` dump; `{:#}` puts the chain on one line.
//!
//! ```
//! use eks_pod_identity::report::ErrorReport;
//!
//! let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
//! println!("error: {}", ErrorReport(&io));
//! ```

pub use eks_pod_identity_provider::ErrorChain as ErrorReport;
