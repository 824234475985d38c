//! [`PodIdentityProvider`]: the Pod Identity Agent behind the refreshing cache.

use crate::cache::refreshing::RefreshingCache;
use crate::cache::schedule::RefreshPolicy;
use crate::cache::sdk_identity::SdkIdentityCache;
use crate::cache::task::TaskWatch;
use crate::config::{AgentEndpoint, Secret, TokenSource};
use crate::context::ProviderContext;
use crate::error::RefreshError;
use crate::source::agent::{AgentSettings, AgentSource, BuildError, Timeouts};
use crate::source::retry::RetryPolicy;
use crate::status::Status;
use aws_credential_types::provider::{self, ProvideCredentials};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
/// with [`ErrorKind::NoRuntime`](crate::ErrorKind::NoRuntime) unless valid credentials are cached.
///
/// ```no_run
/// use eks_pod_identity_provider::PodIdentityProvider;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = PodIdentityProvider::from_env()?;
/// // The identity cache hands out the one credentials provider it serves
/// // from our cache (bound by construction, see `SdkIdentityCache`).
/// let ids = provider.identity_cache();
/// let loaded = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
/// let config = loaded
///     .into_builder()
///     .credentials_provider(ids.credentials_provider())
///     .identity_cache(ids)
///     .build();
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
    ///
    /// # Errors
    ///
    /// As [`PodIdentityProviderBuilder::build`]: Pod Identity is not
    /// configured, or the endpoint or a setting is invalid.
    pub fn from_env() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Credentials, waiting only when a refresh is mandatory.
    ///
    /// Lock-free and never waits while fresh credentials are cached;
    /// otherwise waits for the one fetch all callers share, at most the
    /// fetch deadline plus about a second.
    ///
    /// # Errors
    ///
    /// As [`RefreshingCache::get`]: no valid credentials are cached and the
    /// fetch fails, or a fetch is needed outside a tokio runtime.
    ///
    /// # Panics
    ///
    /// When a fetch is needed on a tokio runtime built without its time
    /// driver (see [`RefreshingCache::get`]).
    pub async fn credentials(&self) -> Result<aws_credential_types::Credentials, RefreshError> {
        self.cache.get().await
    }

    /// A snapshot of the provider's state (source, expiry, counters). Takes
    /// the cache's schedule lock briefly; never waits for a fetch.
    pub fn status(&self) -> Status {
        self.cache.status()
    }

    /// A handle that tells whether the background refresh task is running.
    /// Lock-free.
    pub fn task_watch(&self) -> TaskWatch {
        self.cache.task_watch()
    }

    /// The agent endpoint in use.
    pub fn endpoint(&self) -> &AgentEndpoint {
        self.cache.source().endpoint()
    }

    /// This provider's cache as the SDK's identity cache. Set both on one SDK
    /// config: `.credentials_provider(ids.credentials_provider())` and
    /// `.identity_cache(ids)`. Requests resolved through that provider read
    /// our cache directly; any other resolver (a per-client or per-operation
    /// override, a wrapper) gets the SDK's standard lazy cache. See
    /// [`SdkIdentityCache`] for why.
    pub fn identity_cache(&self) -> SdkIdentityCache {
        self.cache.identity_cache()
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
    /// Endpoint, token, context, retry policy and timeouts: what the agent
    /// source is built from (the chain builds its own from the same).
    pub(crate) agent: AgentSettings,
    pub(crate) refresh: RefreshPolicy,
}

impl PodIdentityProviderBuilder {
    /// Overrides the endpoint (default: `AWS_CONTAINER_CREDENTIALS_FULL_URI`
    /// / `_RELATIVE_URI`). Validated like the environment variable.
    pub fn endpoint(mut self, uri: impl Into<String>) -> Self {
        self.agent.endpoint = Some(uri.into());
        self
    }

    /// Reads the token from this file on every fetch (default:
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.agent.token = Some(TokenSource::File(path.into()));
        self
    }

    /// Uses a fixed token (default: `AWS_CONTAINER_AUTHORIZATION_TOKEN`, only
    /// when no token file is set).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.agent.token = Some(TokenSource::Value(Secret::new(token)));
        self
    }

    /// Replaces env, filesystem, clock, randomness and DNS (tests, embedding).
    pub fn context(mut self, ctx: ProviderContext) -> Self {
        self.agent.ctx = ctx;
        self
    }

    /// Per-fetch retries (default: 3 attempts, full-jitter backoff 100 ms–1 s).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.agent.retry = retry;
        self
    }

    /// Refresh windows, jitter and failure backoff (see [`RefreshPolicy`]).
    pub fn refresh_policy(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = refresh;
        self
    }

    /// Connect timeout (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.agent.timeouts.connect = timeout;
        self
    }

    /// Per-attempt deadline (default 5 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.agent.timeouts.attempt = timeout;
        self
    }

    /// Deadline of a whole fetch, all attempts included (default 12 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.agent.timeouts.fetch = timeout;
        self
    }

    /// All three timeouts at once (see [`Timeouts`]).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.agent.timeouts = timeouts;
        self
    }

    /// Builds the provider. Fails when a setting is out of range
    /// ([`ConfigError::InvalidSetting`](crate::ConfigError::InvalidSetting) names it), Pod Identity is not
    /// configured or the endpoint is refused; nothing is fetched yet.
    ///
    /// # Errors
    ///
    /// [`BuildError::NotConfigured`] when no endpoint is set, and
    /// [`BuildError::Config`] for an invalid endpoint, token source or
    /// setting.
    pub fn build(self) -> Result<PodIdentityProvider, BuildError> {
        // Checked in this order so that the error names the first invalid
        // setting: retry policy, refresh policy, timeouts, then endpoint.
        self.agent.retry.validate()?;
        self.refresh.validate()?;
        let source = AgentSource::from_settings(&self.agent)?;
        let ctx = &self.agent.ctx;
        Ok(PodIdentityProvider {
            cache: RefreshingCache::new(source, self.refresh, ctx.clock.clone(), ctx.rng.clone()),
        })
    }
}
