//! The one trait every credential source implements.

use crate::error::RefreshError;
use aws_credential_types::Credentials;
use std::fmt::Debug;
use std::future::Future;
use std::time::SystemTime;

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
/// double. The [`cache`](crate::cache) is generic over it, so every source
/// gets proactive refresh, single-flight and static stability for free.
///
/// A source performs one complete fetch per call, including its own
/// per-attempt retries; it does not cache.
pub trait CredentialSource: Send + Sync + Debug + 'static {
    /// A short, stable name used in errors and logs (`pod-identity`, `imds`).
    fn name(&self) -> &'static str;

    /// Fetches fresh credentials.
    fn fetch(&self) -> impl Future<Output = Result<Fetched, RefreshError>> + Send;
}
