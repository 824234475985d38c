//! Why a fake agent could not start or be reconfigured.

use std::time::Duration;

use super::protocol::MIN_REMAINING;

/// Why [`FakeAgentBuilder::start`](super::FakeAgentBuilder::start) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An address could not be bound.
    #[error("fake agent: {0}")]
    Bind(#[from] std::io::Error),
    /// The configuration is impossible.
    #[error("fake agent: invalid configuration: {0}")]
    Config(String),
}

impl From<StartError> for std::io::Error {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Bind(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

pub(super) fn check_lifetime(d: Duration) -> Result<(), StartError> {
    if d <= MIN_REMAINING {
        return Err(StartError::Config(format!(
            "lifetime {d:?} must exceed {MIN_REMAINING:?}: the real agent never hands out \
             credentials with <= 15 s left (use Fault::ExpiresIn to test that)"
        )));
    }
    Ok(())
}
