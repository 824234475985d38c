//! Where credentials come from: the one trait every source implements, and
//! the two sources, the Pod Identity Agent ([`agent`]) and IMDSv2
//! ([`imds`]), with what they share: the credentials document, the
//! authorization token and the per-fetch retry policy.

pub(crate) mod agent;
pub(crate) mod document;
pub(crate) mod imds;
pub(crate) mod retry;
pub(crate) mod token;

use self::retry::RetryPolicy;
use crate::error::RefreshError;
use aws_credential_types::Credentials;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Credentials as handed from a source to the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The credentials (their `Debug` is redacted by `aws-credential-types`).
    pub credentials: Credentials,
    /// When they expire. Every source must know this: the cache never
    /// serves credentials past it.
    pub expiration: SystemTime,
    /// A label for status and logs, e.g. `pod-identity` or `imds:node-role`.
    pub label: String,
}

/// A place credentials come from: the Pod Identity Agent, IMDS, or a test
/// double. The [`RefreshingCache`](crate::RefreshingCache) is generic over it, so every source
/// gets proactive refresh, single-flight and static stability for free.
///
/// A source performs one complete fetch per call, including its own
/// per-attempt retries; it does not cache. The cache runs each fetch in a
/// task of its own under [`fetch_timeout`](Self::fetch_timeout), turns a
/// panic into a typed error, and retries credentials that arrive already
/// expired with [`retry_policy`](Self::retry_policy).
pub trait CredentialSource: Send + Sync + Debug + 'static {
    /// A short, stable name used in errors and logs (`pod-identity`, `imds`).
    fn name(&self) -> &'static str;

    /// Fetches fresh credentials.
    fn fetch(&self) -> impl Future<Output = Result<Fetched, RefreshError>> + Send;

    /// Fetches fresh credentials with a single attempt. The cache calls this
    /// for a fetch nobody waits for: the background refresh while valid
    /// credentials are cached. A failure then only means serving the cache
    /// longer, the background schedule retries it, and retrying inside the
    /// fetch as well would multiply the requests a failing agent receives
    /// (one scheduled retry would be three requests). Fetches callers wait
    /// for use [`fetch`](Self::fetch). The default is `fetch`, for sources
    /// without per-fetch retries.
    fn fetch_once(&self) -> impl Future<Output = Result<Fetched, RefreshError>> + Send {
        self.fetch()
    }

    /// The deadline of one whole fetch, retries included (default
    /// [`DEFAULT_FETCH_TIMEOUT`]). Callers never wait much longer than this
    /// for one fetch.
    fn fetch_timeout(&self) -> Duration {
        DEFAULT_FETCH_TIMEOUT
    }

    /// How the cache retries, within the same fetch, credentials that
    /// arrive already expired (default [`RetryPolicy::default`]).
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
}

/// The fetch deadline of a source that does not set its own.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(12);
