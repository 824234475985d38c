//! The pod-aware credential chain: Pod Identity, else IMDSv2 where safe.
//!
//! | Pod Identity env | where            | policy (default)  | result                     |
//! |------------------|------------------|-------------------|----------------------------|
//! | present          | anywhere         | —                 | Pod Identity, never IMDS   |
//! | absent           | Kubernetes pod   | `Deny` (default)  | error naming the fix       |
//! | absent           | Kubernetes pod   | `Warn`            | IMDS (node role) + warning |
//! | absent           | Kubernetes pod   | `Allow`           | IMDS (node role)           |
//! | absent           | not Kubernetes   | `Allow` (default) | IMDS (instance role)       |
//!
//! The decision is made once, from configuration: an agent that fails,
//! times out or refuses is an error, never a reason to fall back (that would
//! silently escalate a pod to the node's role).

use crate::cache::refreshing::RefreshingCache;
use crate::cache::schedule::RefreshPolicy;
use crate::cache::sdk_identity::SdkIdentityCache;
use crate::cache::task::TaskWatch;
use crate::config::{self, vars, ImdsEndpointSetting};
use crate::context::ProviderContext;
use crate::error::{ConfigError, RefreshError};
use crate::provider::PodIdentityProviderBuilder;
use crate::source::agent::{AgentSource, BuildError};
use crate::source::imds::{ImdsOptions, ImdsSource};
use crate::source::retry::RetryPolicy;
use crate::source::{CredentialSource, Fetched};
use crate::status::Status;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_credential_types::Credentials;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Whether the chain may use IMDS when Pod Identity is not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackPolicy {
    /// Refuse with an error (default inside Kubernetes).
    Deny,
    /// Fall back, and emit a `WARN` event once per source change.
    Warn,
    /// Fall back silently (default outside Kubernetes).
    Allow,
}

/// Why the chain could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Pod Identity is configured but its configuration is invalid. The
    /// chain does not fall back in this case.
    #[error("EKS Pod Identity is configured but invalid (not falling back to IMDS)")]
    PodIdentity(#[source] ConfigError),
    /// Inside Kubernetes without Pod Identity, IMDS would hand out the node role.
    #[error("EKS Pod Identity is not configured for this pod ({missing} not set) and the fallback policy is Deny: IMDS here would hand out the node's IAM role, shared by every pod on the node. Fix: create a pod identity association for this pod's service account (and restart the pod), or, if the node role is really intended, opt in with .fallback_policy(FallbackPolicy::Allow) on DefaultChain::builder() or CredentialChain::builder()")]
    FallbackDenied {
        /// The missing variables.
        missing: String,
    },
    /// Neither Pod Identity nor IMDS is available.
    #[error("no credential source: EKS Pod Identity is not configured ({full} / {relative} not set) and IMDS is disabled ({disabled}=true)", full = vars::FULL_URI, relative = vars::RELATIVE_URI, disabled = vars::IMDS_DISABLED)]
    NoSource,
    /// The IMDS configuration is invalid.
    #[error("invalid IMDS configuration")]
    Imds(#[source] ConfigError),
}

/// The source the chain selected.
#[derive(Debug)]
pub(crate) enum ChainSource {
    /// The Pod Identity Agent.
    PodIdentity(AgentSource),
    /// IMDS (the node's or instance's role).
    Imds {
        /// The IMDS client.
        source: ImdsSource,
        /// Whether to warn on use.
        warn: bool,
        /// The last label warned about (warn once per source change).
        warned: Mutex<Option<String>>,
    },
}

impl CredentialSource for ChainSource {
    fn name(&self) -> &'static str {
        match self {
            ChainSource::PodIdentity(s) => s.name(),
            ChainSource::Imds { source, .. } => source.name(),
        }
    }

    fn fetch_timeout(&self) -> Duration {
        match self {
            ChainSource::PodIdentity(s) => s.fetch_timeout(),
            ChainSource::Imds { source, .. } => source.fetch_timeout(),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        match self {
            ChainSource::PodIdentity(s) => s.retry_policy(),
            ChainSource::Imds { source, .. } => source.retry_policy(),
        }
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(false).await
    }

    async fn fetch_once(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(true).await
    }
}

impl ChainSource {
    /// The selected source's `fetch`, or its `fetch_once` for `once`.
    async fn fetch_with(&self, once: bool) -> Result<Fetched, RefreshError> {
        match self {
            ChainSource::PodIdentity(s) if once => s.fetch_once().await,
            ChainSource::PodIdentity(s) => s.fetch().await,
            ChainSource::Imds {
                source,
                warn,
                warned,
            } => {
                let fetched = if once {
                    source.fetch_once().await?
                } else {
                    source.fetch().await?
                };
                if *warn {
                    let mut last = warned.lock().unwrap_or_else(|p| p.into_inner());
                    if last.as_deref() != Some(fetched.label.as_str()) {
                        tracing::warn!(
                            source = fetched.label.as_str(),
                            policy = "warn",
                            "EKS Pod Identity is not configured for this pod; using IMDS credentials, which are the NODE's IAM role shared by every pod on the node"
                        );
                        *last = Some(fetched.label.clone());
                    }
                }
                Ok(fetched)
            }
        }
    }
}

/// The pod-aware tail of a credential chain: Pod Identity when configured,
/// otherwise IMDSv2 as the [`FallbackPolicy`] allows, behind the refreshing
/// cache. The facade crate's default chain puts it after the AWS SDK's
/// environment, profile and web-identity links; use it alone where only
/// those two sources may apply.
///
/// ```no_run
/// use eks_pod_identity_provider::CredentialChain;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let chain = CredentialChain::builder().build()?;
/// let ids = chain.identity_cache();
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .load()
///     .await
///     .into_builder()
///     // This very provider: requests through it read the chain's cache.
///     .credentials_provider(ids.credentials_provider())
///     .identity_cache(ids)
///     .build();
/// println!("credentials from {}", chain.status().source);
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone)]
pub struct CredentialChain {
    cache: RefreshingCache<ChainSource>,
}

impl fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialChain")
            .field("cache", &self.cache)
            .finish()
    }
}

impl CredentialChain {
    /// A builder with the defaults described on [`FallbackPolicy`].
    pub fn builder() -> CredentialChainBuilder {
        CredentialChainBuilder::default()
    }

    /// Credentials, waiting only when a refresh is mandatory.
    ///
    /// Lock-free and never waits while fresh credentials are cached;
    /// otherwise waits for the one fetch all callers share (see
    /// [`RefreshingCache::get`](crate::RefreshingCache::get)).
    ///
    /// # Errors
    ///
    /// No valid credentials are cached and the fetch from the selected
    /// source fails, or a fetch is needed outside a tokio runtime.
    ///
    /// # Panics
    ///
    /// When a fetch is needed on a tokio runtime built without its time
    /// driver (see [`RefreshingCache::get`](crate::RefreshingCache::get)).
    pub async fn credentials(&self) -> Result<Credentials, RefreshError> {
        self.cache.get().await
    }

    /// A snapshot: `source` is `pod-identity` or `imds:<role>`. Takes the
    /// cache's schedule lock briefly; never waits for a fetch.
    pub fn status(&self) -> Status {
        self.cache.status()
    }

    /// `true` when the chain selected Pod Identity (decided once, at build).
    pub fn uses_pod_identity(&self) -> bool {
        matches!(self.cache.source(), ChainSource::PodIdentity(_))
    }

    /// A handle telling whether the background refresh task is running.
    /// Lock-free.
    pub fn task_watch(&self) -> TaskWatch {
        self.cache.task_watch()
    }

    /// This chain's cache as the SDK's identity cache, with the one
    /// credentials provider it serves directly
    /// ([`SdkIdentityCache::credentials_provider`](crate::SdkIdentityCache::credentials_provider)).
    /// See [`SdkIdentityCache`](crate::SdkIdentityCache) for why and how.
    pub fn identity_cache(&self) -> SdkIdentityCache {
        self.cache.identity_cache()
    }
}

impl ProvideCredentials for CredentialChain {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.cache.provide()
    }
}

/// Builds a [`CredentialChain`].
#[derive(Debug, Default, Clone)]
pub struct CredentialChainBuilder {
    pod_identity: PodIdentityProviderBuilder,
    /// Set by [`CredentialChainBuilder::context`]; else the Pod Identity builder's.
    ctx: Option<ProviderContext>,
    /// Set by [`CredentialChainBuilder::refresh_policy`]; else the Pod Identity builder's.
    refresh: Option<RefreshPolicy>,
    fallback: Option<FallbackPolicy>,
    imds_endpoint: Option<String>,
    imds: ImdsOptions,
}

impl CredentialChainBuilder {
    /// Replaces env, filesystem, clock, randomness and DNS for the whole
    /// chain. Takes precedence over a context given through
    /// [`pod_identity`](Self::pod_identity), whatever the order of the calls.
    pub fn context(mut self, ctx: ProviderContext) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// Configures the Pod Identity part (endpoint, token, timeouts, and also
    /// context and refresh policy). The chain uses `builder`'s context and
    /// refresh policy unless [`context`](Self::context) or
    /// [`refresh_policy`](Self::refresh_policy) are called on the chain
    /// builder, whose settings apply to the whole chain.
    pub fn pod_identity(mut self, builder: PodIdentityProviderBuilder) -> Self {
        self.pod_identity = builder;
        self
    }

    /// The fallback policy (default: `Deny` inside Kubernetes, i.e. when
    /// `KUBERNETES_SERVICE_HOST` is set; `Allow` elsewhere).
    pub fn fallback_policy(mut self, policy: FallbackPolicy) -> Self {
        self.fallback = Some(policy);
        self
    }

    /// Overrides the IMDS endpoint (default: environment, then
    /// `http://169.254.169.254`).
    pub fn imds_endpoint(mut self, uri: impl Into<String>) -> Self {
        self.imds_endpoint = Some(uri.into());
        self
    }

    /// Allows IMDSv1 when the token request fails (default: never).
    pub fn allow_imdsv1(mut self, allow: bool) -> Self {
        self.imds.allow_imdsv1 = allow;
        self
    }

    /// Extends already-expired IMDS credentials during IMDS outages
    /// (default: on; IMDS only, never Pod Identity).
    pub fn extend_stale_imds_credentials(mut self, extend: bool) -> Self {
        self.imds.extend_stale_credentials = extend;
        self
    }

    /// IMDS connect/read timeouts (default 1 s each). One request may take
    /// up to `connect + 2 × read`; the overall IMDS fetch deadline
    /// ([`imds_fetch_timeout`](Self::imds_fetch_timeout), default 10 s) must
    /// be at least that, or [`build`](Self::build) fails naming
    /// `imds.fetch_timeout`.
    pub fn imds_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.imds.connect_timeout = connect;
        self.imds.read_timeout = read;
        self
    }

    /// The overall deadline of one IMDS fetch, retries included (default
    /// 10 s).
    pub fn imds_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.imds.fetch_timeout = timeout;
        self
    }

    /// IMDS per-request retries (default 3 attempts).
    pub fn imds_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.imds.retry = retry;
        self
    }

    /// Refresh windows and jitter for whichever source is selected. Takes
    /// precedence over a policy given through [`pod_identity`](Self::pod_identity).
    pub fn refresh_policy(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// The context and refresh policy in force: the chain's own when set,
    /// else those of the Pod Identity builder.
    fn settings(&self) -> (ProviderContext, RefreshPolicy) {
        (
            self.ctx
                .clone()
                .unwrap_or_else(|| self.pod_identity.agent.ctx.clone()),
            self.refresh
                .clone()
                .unwrap_or_else(|| self.pod_identity.refresh.clone()),
        )
    }

    /// The fallback policy in force for this environment.
    fn effective_policy(&self, ctx: &ProviderContext) -> FallbackPolicy {
        self.fallback.unwrap_or_else(|| {
            if ctx.env().non_empty(vars::KUBERNETES_SERVICE_HOST).is_some() {
                FallbackPolicy::Deny
            } else {
                FallbackPolicy::Allow
            }
        })
    }

    /// Selects the source and builds the chain. Nothing is fetched yet; the
    /// only I/O is reading the environment through the context.
    ///
    /// # Errors
    ///
    /// [`ChainError::PodIdentity`] when Pod Identity is configured but
    /// invalid (the chain never falls back then), or a setting is out of
    /// range; [`ChainError::FallbackDenied`] when Pod Identity is not
    /// configured and the policy is `Deny`; [`ChainError::NoSource`] when
    /// IMDS is disabled too; [`ChainError::Imds`] for an invalid IMDS
    /// endpoint or IMDS settings.
    pub fn build(self) -> Result<CredentialChain, ChainError> {
        let (ctx, refresh) = self.settings();
        let mut agent = self.pod_identity.agent.clone();
        agent.ctx = ctx.clone();
        // Checked in the Pod Identity builder's order (retry policy, refresh
        // policy, then the rest in `AgentSource::from_settings`), so that the
        // chain names the same first invalid setting.
        let checked = agent
            .retry
            .validate()
            .and_then(|()| refresh.validate())
            .map_err(BuildError::from);
        let source = match checked.and_then(|()| AgentSource::from_settings(&agent)) {
            Ok(agent) => ChainSource::PodIdentity(agent),
            Err(BuildError::Config(e)) => return Err(ChainError::PodIdentity(e)),
            Err(BuildError::NotConfigured) => {
                let policy = self.effective_policy(&ctx);
                if policy == FallbackPolicy::Deny {
                    return Err(ChainError::FallbackDenied {
                        missing: format!("{} / {}", vars::FULL_URI, vars::TOKEN_FILE),
                    });
                }
                let endpoint =
                    match config::imds_endpoint_from_env(ctx.env(), self.imds_endpoint.as_deref())
                        .map_err(ChainError::Imds)?
                    {
                        ImdsEndpointSetting::Disabled => return Err(ChainError::NoSource),
                        ImdsEndpointSetting::Endpoint(u) => u,
                    };
                let source =
                    ImdsSource::new(endpoint, ctx.clone(), self.imds).map_err(ChainError::Imds)?;
                ChainSource::Imds {
                    source,
                    warn: policy == FallbackPolicy::Warn,
                    warned: Mutex::new(None),
                }
            }
        };
        Ok(CredentialChain {
            cache: RefreshingCache::new(source, refresh, ctx.clock.clone(), ctx.rng.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MapEnv;
    use crate::error::ErrorChain;
    use crate::provider::PodIdentityProvider;
    use std::error::Error;

    fn pod_identity_env() -> ProviderContext {
        ProviderContext::new().with_env(MapEnv::from_iter([
            (vars::FULL_URI, "http://127.0.0.1:1/v1/credentials"),
            (vars::TOKEN, "not-a-real-token"),
        ]))
    }

    /// The chain's background refresh makes one request per retry, like
    /// the provider's: `fetch_once` reaches the selected source's
    /// `fetch_once`, while `fetch` keeps the whole retry policy.
    #[tokio::test]
    async fn the_chain_forwards_single_attempt_fetches_to_its_source() {
        let (server, uri) = crate::source::agent::tests::agent_answering_500().await;
        let chain = CredentialChain::builder()
            .context(ProviderContext::new().with_env(MapEnv::from_iter([
                (vars::FULL_URI, uri.as_str()),
                (vars::TOKEN, "not-a-real-token"),
            ])))
            .build()
            .unwrap();
        let source = chain.cache.source();
        assert!(matches!(source, ChainSource::PodIdentity(_)));
        let requests = || async { server.received_requests().await.unwrap().len() };
        source.fetch_once().await.unwrap_err();
        assert_eq!(requests().await, 1);
        source.fetch().await.unwrap_err();
        assert_eq!(
            requests().await,
            1 + RetryPolicy::default().max_attempts as usize
        );
    }

    fn custom_refresh() -> RefreshPolicy {
        RefreshPolicy {
            jitter: false,
            ..RefreshPolicy::default()
        }
    }

    #[test]
    fn imds_timeouts_longer_than_the_fetch_deadline_need_a_longer_deadline() {
        // Plain EC2 (no Pod Identity env, not Kubernetes): the IMDS link.
        let ec2 = || {
            CredentialChain::builder()
                .context(
                    ProviderContext::new()
                        .with_env(MapEnv::from_iter(std::iter::empty::<(&str, &str)>())),
                )
                .imds_timeouts(Duration::from_secs(5), Duration::from_secs(10))
        };
        let Err(err) = ec2().build() else {
            panic!("25 s per request > 10 s deadline must not build");
        };
        let shown = ErrorChain(&err).to_string();
        assert!(shown.contains("imds.fetch_timeout"), "{shown}");
        ec2()
            .imds_fetch_timeout(Duration::from_secs(25))
            .build()
            .expect("a deadline that admits one request builds");
    }

    #[test]
    fn pod_identity_builder_keeps_its_context_and_refresh_policy() {
        let builder = CredentialChain::builder()
            .fallback_policy(FallbackPolicy::Deny)
            .pod_identity(
                PodIdentityProvider::builder()
                    .context(pod_identity_env())
                    .refresh_policy(custom_refresh()),
            );
        let (ctx, refresh) = builder.settings();
        assert_eq!(refresh, custom_refresh());
        assert!(ctx.env().non_empty(vars::FULL_URI).is_some());
        // Configured only through the Pod Identity builder's context: selected.
        let chain = builder
            .build()
            .expect("Pod Identity from the builder's context");
        assert!(chain.uses_pod_identity());
    }

    #[test]
    fn chain_settings_win_over_the_pod_identity_builders_in_any_order() {
        let empty = || ProviderContext::new().with_env(MapEnv::from_iter([("HOME", "/x")]));
        for builder in [
            CredentialChain::builder()
                .context(empty())
                .refresh_policy(RefreshPolicy::default())
                .pod_identity(
                    PodIdentityProvider::builder()
                        .context(pod_identity_env())
                        .refresh_policy(custom_refresh()),
                ),
            CredentialChain::builder()
                .pod_identity(
                    PodIdentityProvider::builder()
                        .context(pod_identity_env())
                        .refresh_policy(custom_refresh()),
                )
                .context(empty())
                .refresh_policy(RefreshPolicy::default()),
        ] {
            let (ctx, refresh) = builder.settings();
            assert_eq!(refresh, RefreshPolicy::default());
            assert!(ctx.env().non_empty(vars::FULL_URI).is_none());
            let err = builder
                .fallback_policy(FallbackPolicy::Deny)
                .build()
                .expect_err("the chain's context has no Pod Identity");
            assert!(matches!(err, ChainError::FallbackDenied { .. }), "{err}");
        }
    }

    /// The chain's configuration errors say what the chain knows (Pod
    /// Identity or IMDS, no fallback) and leave the setting's error to
    /// `source()`.
    #[test]
    fn config_errors_leave_the_setting_error_to_source() {
        let config = || ConfigError::Empty {
            var: vars::RELATIVE_URI,
        };
        let setting = config().to_string();
        for (err, shown) in [
            (
                ChainError::PodIdentity(config()),
                "EKS Pod Identity is configured but invalid (not falling back to IMDS)",
            ),
            (ChainError::Imds(config()), "invalid IMDS configuration"),
        ] {
            assert_eq!(err.to_string(), shown);
            assert!(!err.to_string().contains(&setting), "{err}");
            let source = err.source().expect("the setting's error is the source");
            assert!(source.is::<ConfigError>());
            assert_eq!(source.to_string(), setting);
            assert_eq!(
                ErrorChain(&err).to_string(),
                format!("{shown}\n  caused by: {setting}")
            );
        }
    }
}
