//! [`PodIdentityProvider`]: the Pod Identity Agent behind the refreshing cache.

use crate::agent::{AgentSource, Timeouts};
use crate::cache::{RefreshingCache, TaskWatch};
use crate::config::{self, vars, AgentEndpoint, Secret, TokenSource};
use crate::context::ProviderContext;
use crate::error::{ConfigError, ErrorKind, RefreshError};
use crate::identity_cache::SdkIdentityCache;
use crate::retry::RetryPolicy;
use crate::schedule::RefreshPolicy;
use crate::status::Status;
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither the environment nor the builder names an endpoint.
    #[error("EKS Pod Identity is not configured: neither {full} nor {relative} is set (EKS sets them in pods whose service account has a pod identity association; check the association and that the pod was created after it)", full = vars::FULL_URI, relative = vars::RELATIVE_URI)]
    NotConfigured,
    /// The configuration is present but invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Credentials from the EKS Pod Identity Agent, refreshed in the background.
///
/// * The hot path is lock-free: one atomic load and a clone.
/// * Credentials are refreshed at a jittered instant inside the advisory
///   window before expiry, so requests never wait for a refresh while valid
///   credentials exist.
/// * Callers wait only with no credentials or inside the mandatory window
///   (`min(60 s, L/4)` for credentials of lifetime `L`), and then share one
///   fetch.
/// * A failed refresh keeps serving valid cached credentials; after a failed
///   fetch with nothing valid cached, callers share its error for a short
///   backoff instead of asking the agent again.
///
/// Cloning is cheap (shared state). The background task ends when the last
/// clone is dropped. Fetches need a tokio runtime (any flavour, any number
/// of them over the provider's life; the background refresh moves to the
/// next caller's runtime when its own shuts down); outside one, calls fail
/// with [`ErrorKind::NoRuntime`] unless valid credentials are cached.
///
/// ```no_run
/// use eks_pod_identity_provider::PodIdentityProvider;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = PodIdentityProvider::from_env()?;
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .credentials_provider(provider.clone())
///     .identity_cache(provider.identity_cache())
///     .load()
///     .await;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PodIdentityProvider {
    cache: RefreshingCache<AgentSource>,
}

impl fmt::Debug for PodIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodIdentityProvider")
            .field("cache", &self.cache)
            .finish()
    }
}

impl PodIdentityProvider {
    /// A builder; settings not given come from the environment.
    pub fn builder() -> PodIdentityProviderBuilder {
        PodIdentityProviderBuilder::default()
    }

    /// A provider configured from the process environment
    /// (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, ...).
    pub fn from_env() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Credentials, waiting only when a refresh is mandatory.
    ///
    /// # Panics
    ///
    /// When a fetch is needed on a tokio runtime built without its time
    /// driver (see [`RefreshingCache::get`]).
    pub async fn credentials(&self) -> Result<aws_credential_types::Credentials, RefreshError> {
        self.cache.get().await
    }

    /// A snapshot of the provider's state (source, expiry, counters).
    pub fn status(&self) -> Status {
        self.cache.status()
    }

    /// A handle that tells whether the background refresh task is running.
    pub fn task_watch(&self) -> TaskWatch {
        self.cache.task_watch()
    }

    /// The agent endpoint in use.
    pub fn endpoint(&self) -> &AgentEndpoint {
        self.cache.source().endpoint()
    }

    /// This provider's cache as the SDK's identity cache: give it to the same
    /// SDK config as the provider (`.identity_cache(provider.identity_cache())`)
    /// so that requests skip the SDK's lazy cache and read ours directly.
    /// See [`SdkIdentityCache`] for why.
    pub fn identity_cache(&self) -> SdkIdentityCache {
        self.cache.identity_cache()
    }
}

/// Converts a refresh error into the SDK's error, keeping it as the source.
pub(crate) fn to_credentials_error(err: RefreshError) -> CredentialsError {
    match err.kind() {
        ErrorKind::NotConfigured => CredentialsError::not_loaded(err),
        ErrorKind::InvalidConfiguration | ErrorKind::RefusedHost | ErrorKind::FallbackDenied => {
            CredentialsError::invalid_configuration(err)
        }
        _ => CredentialsError::provider_error(err),
    }
}

impl ProvideCredentials for PodIdentityProvider {
    #[inline]
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.cache.provide()
    }
}

/// Builds a [`PodIdentityProvider`]. Every setting defaults to the
/// environment and the values documented on each method.
#[derive(Debug, Default, Clone)]
pub struct PodIdentityProviderBuilder {
    pub(crate) endpoint: Option<String>,
    pub(crate) token: Option<TokenSource>,
    pub(crate) ctx: ProviderContext,
    pub(crate) retry: RetryPolicy,
    pub(crate) refresh: RefreshPolicy,
    pub(crate) timeouts: Timeouts,
}

impl PodIdentityProviderBuilder {
    /// Overrides the endpoint (default: `AWS_CONTAINER_CREDENTIALS_FULL_URI`
    /// / `_RELATIVE_URI`). Validated like the environment variable.
    pub fn endpoint(mut self, uri: impl Into<String>) -> Self {
        self.endpoint = Some(uri.into());
        self
    }

    /// Reads the token from this file on every fetch (default:
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token = Some(TokenSource::File(path.into()));
        self
    }

    /// Uses a fixed token (default: `AWS_CONTAINER_AUTHORIZATION_TOKEN`, only
    /// when no token file is set).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(TokenSource::Value(Secret::new(token)));
        self
    }

    /// Replaces env, filesystem, clock, randomness and DNS (tests, embedding).
    pub fn context(mut self, ctx: ProviderContext) -> Self {
        self.ctx = ctx;
        self
    }

    /// Per-fetch retries (default: 3 attempts, full-jitter backoff 100 ms–1 s).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Refresh windows, jitter and failure backoff (see [`RefreshPolicy`]).
    pub fn refresh_policy(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = refresh;
        self
    }

    /// Connect timeout (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Per-attempt deadline (default 5 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.attempt = timeout;
        self
    }

    /// Deadline of a whole fetch, all attempts included (default 12 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.fetch = timeout;
        self
    }

    /// All three timeouts at once (see [`Timeouts`]).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Checks the retry policy, refresh policy and timeouts; the error names
    /// the offending field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.retry.validate()?;
        self.refresh.validate()?;
        self.timeouts.validate()
    }

    /// Resolves endpoint and token: builder values first, then environment.
    pub(crate) fn resolve(&self) -> Result<(AgentEndpoint, Option<TokenSource>), BuildError> {
        let env = self.ctx.env();
        let (endpoint, env_token) = match &self.endpoint {
            Some(uri) => (
                config::validate_uri("endpoint", uri)?,
                config::token_from_env(env),
            ),
            None => match config::container_credentials_from_env(env)? {
                Some(found) => (found.endpoint, found.token),
                None => return Err(BuildError::NotConfigured),
            },
        };
        Ok((endpoint, self.token.clone().or(env_token)))
    }

    pub(crate) fn build_source(&self) -> Result<AgentSource, BuildError> {
        self.validate()?;
        let (endpoint, token) = self.resolve()?;
        Ok(AgentSource::new(
            endpoint,
            token,
            self.ctx.clone(),
            self.retry.clone(),
            self.timeouts.clone(),
        )?)
    }

    /// Builds the provider. Fails when a setting is out of range
    /// ([`ConfigError::InvalidSetting`] names it), Pod Identity is not
    /// configured or the endpoint is refused; nothing is fetched yet.
    pub fn build(self) -> Result<PodIdentityProvider, BuildError> {
        let source = self.build_source()?;
        Ok(PodIdentityProvider {
            cache: RefreshingCache::new(
                source,
                self.refresh,
                self.ctx.clock.clone(),
                self.ctx.rng.clone(),
            ),
        })
    }
}
