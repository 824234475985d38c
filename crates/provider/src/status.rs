//! A point-in-time snapshot of a provider, for health checks and metrics.

use crate::error::ErrorKind;
use std::time::SystemTime;

/// What a provider is doing. Contains no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The source in use: `pod-identity`, `imds:<role>`, or the source name
    /// before the first successful fetch.
    pub source: String,
    /// Expiry of the cached credentials, if any.
    pub expiration: Option<SystemTime>,
    /// When credentials were last fetched successfully.
    pub last_refresh: Option<SystemTime>,
    /// When the background task will next refresh.
    pub next_refresh: Option<SystemTime>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// Fetches started.
    pub fetches: u64,
    /// Fetches that succeeded.
    pub successes: u64,
    /// Fetches that failed.
    pub failures: u64,
    /// Calls that had to wait for a fetch (cold cache or mandatory window).
    pub waits: u64,
    /// Calls answered with cached (still valid) credentials after a refresh
    /// failed or could not run (static stability).
    pub served_cached_after_failure: u64,
    /// The kind of the last failure, if any.
    pub last_error_kind: Option<ErrorKind>,
}
