//! The AWS SDK's default credential chain, with our Pod Identity provider in
//! the container-credentials slot and the pod-aware IMDS guard.
//!
//! | # | link | provider | caching |
//! |---|------|----------|---------|
//! | 1 | environment keys | `aws_config`'s `EnvironmentVariableCredentialsProvider` | the SDK's lazy cache |
//! | 2 | shared config/credentials profile (SSO, `credential_process`, role assumption) | `aws_config`'s `ProfileFileCredentialsProvider` | the SDK's lazy cache |
//! | 3 | web identity (IRSA) | `aws_config`'s `WebIdentityTokenCredentialsProvider` | the SDK's lazy cache |
//! | 4 | container credentials | our [`PodIdentityProvider`](crate::PodIdentityProvider): proactive refresh, single-flight, static stability | ours ([`SdkIdentityCache`](crate::SdkIdentityCache)) |
//! | 5 | IMDSv2 | ours, guarded by [`FallbackPolicy`] | ours ([`SdkIdentityCache`](crate::SdkIdentityCache)) |
//!
//! The order is the SDK's: the first link that does not decline (an SDK
//! provider answering "not loaded") wins, and a link that fails stops the
//! chain. The winner is then kept: later calls go straight to it, so the
//! identity cache knows by construction whether a request is served by our
//! cache. Links 4 and 5 are chosen from configuration, as in
//! [`CredentialChain`]: IMDS is used only when Pod Identity is not
//! configured, never because the agent failed, and in a Kubernetes pod only
//! when explicitly allowed. A pod with IRSA never reaches link 5.

use crate::report::ErrorReport;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::{ConfigLoader, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::SharedIdentityCache;
use eks_pod_identity_provider::config::vars;
use eks_pod_identity_provider::FallbackPolicy;
use eks_pod_identity_provider::{ChainError, CredentialChain, CredentialChainBuilder, Status};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

const ENV_PROFILE: &str = "AWS_PROFILE";
const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";

/// The SDK's default credential chain with our Pod Identity provider and
/// IMDS guard in links 4 and 5. See the [module documentation](self).
///
/// Most code needs only [`load_defaults`](crate::load_defaults) or
/// [`ConfigLoaderExt`](crate::ConfigLoaderExt). Build one yourself to keep a
/// handle for [`status`](Self::status):
///
/// ```no_run
/// use eks_pod_identity::DefaultChain;
///
/// # async fn run() {
/// let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
/// let (config, chain) = DefaultChain::builder().load(loader).await;
/// let s3 = aws_sdk_s3::Client::new(&config);
/// # let _ = s3;
/// println!("credentials from {:?}", chain.status().source);
/// # }
/// ```
///
/// Cloning is cheap (shared state).
#[derive(Clone)]
pub struct DefaultChain {
    inner: Arc<Inner>,
    /// This chain as the SDK's provider, created once: its identity-cache
    /// partition is what [`SdkIdentityCache`](crate::SdkIdentityCache) serves.
    shared: SharedCredentialsProvider,
}

struct Inner {
    links: Vec<Link>,
    /// Index of the link that answered first; kept for good.
    selected: Arc<OnceLock<usize>>,
}

enum Link {
    Env(EnvironmentVariableCredentialsProvider),
    Profile {
        provider: ProfileFileCredentialsProvider,
        label: String,
    },
    WebIdentity {
        provider: WebIdentityTokenCredentialsProvider,
        label: String,
    },
    /// Pod Identity, or IMDS where the fallback policy allows it.
    Ours(CredentialChain),
    /// Neither Pod Identity nor IMDS may be used (policy, configuration).
    Refused(ChainError),
}

impl Link {
    fn label(&self) -> String {
        match self {
            Link::Env(_) => "env".into(),
            Link::Profile { label, .. } | Link::WebIdentity { label, .. } => label.clone(),
            Link::Ours(chain) => chain.status().source,
            Link::Refused(_) => "none".into(),
        }
    }

    /// What configuring this link looks like, for the shadowing warning.
    fn configured_by(&self) -> &'static str {
        match self {
            Link::Env(_) => "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            Link::Profile { .. } => "the shared config/credentials profile",
            Link::WebIdentity { .. } => "AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN (IRSA)",
            Link::Ours(_) | Link::Refused(_) => "EKS Pod Identity",
        }
    }

    fn provide(&self) -> future::ProvideCredentials<'_> {
        match self {
            Link::Env(p) => p.provide_credentials(),
            Link::Profile { provider, .. } => provider.provide_credentials(),
            Link::WebIdentity { provider, .. } => provider.provide_credentials(),
            Link::Ours(chain) => chain.provide_credentials(),
            Link::Refused(_) => {
                future::ProvideCredentials::ready(Err(CredentialsError::not_loaded("refused")))
            }
        }
    }
}

impl fmt::Debug for DefaultChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let links: Vec<String> = self.inner.links.iter().map(Link::label).collect();
        f.debug_struct("DefaultChain")
            .field("links", &links)
            .field("selected", &self.status().source)
            .finish_non_exhaustive()
    }
}

/// Which source [`DefaultChain`] uses, and the state of our refreshing
/// cache when it is ours. Contains no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainStatus {
    /// The winning link: `env`, `profile:<name>`, `web-identity:<role>`,
    /// `pod-identity` or `imds:<role>`; `None` until a link has answered.
    pub source: Option<String>,
    /// Expiry of the credentials in our cache (Pod Identity or IMDS).
    pub expiration: Option<SystemTime>,
    /// Fetches made by our cache; 0 when an SDK link (1–3) won, whose
    /// credentials the SDK's lazy cache holds.
    pub fetches: u64,
    /// Callers that waited on a fetch of our cache.
    pub waits: u64,
    /// The full snapshot of our cache when Pod Identity or IMDS won.
    pub cache: Option<Status>,
}

/// No link of the [`DefaultChain`] could provide credentials: each declined
/// and the pod-aware tail refused. `Display` lists every link tried and why,
/// one per line.
#[derive(Debug)]
#[non_exhaustive]
pub struct NoCredentials {
    /// `(link, why it declined)`, in precedence order.
    pub declined: Vec<(String, String)>,
}

impl fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no credentials: every link of the default credential chain declined. Tried, in order:"
        )?;
        for (link, why) in &self.declined {
            write!(f, "\n    {link}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoCredentials {}

/// Why links 4 and 5 declined, one entry each.
fn refused(err: &ChainError) -> Vec<(String, String)> {
    let pod_identity_missing = format!(
        "not configured ({} / {} not set)",
        vars::FULL_URI,
        vars::RELATIVE_URI
    );
    match err {
        ChainError::FallbackDenied { .. } => vec![
            ("pod-identity".into(), pod_identity_missing),
            ("imds".into(), format!("refused: {err}")),
        ],
        ChainError::NoSource => vec![
            ("pod-identity".into(), pod_identity_missing),
            (
                "imds".into(),
                format!("disabled ({}=true)", vars::IMDS_DISABLED),
            ),
        ],
        ChainError::Imds(_) => vec![
            ("pod-identity".into(), pod_identity_missing),
            ("imds".into(), format!("{:#}", ErrorReport(err))),
        ],
        _ => vec![("pod-identity".into(), format!("{:#}", ErrorReport(err)))],
    }
}

/// One line: an error and its distinct causes.
fn one_line(err: &CredentialsError) -> String {
    format!("{:#}", ErrorReport(err))
}

impl DefaultChain {
    /// The chain over `links` in precedence order, with its one SDK provider.
    fn from_links(links: Vec<Link>) -> Self {
        let inner = Arc::new(Inner {
            links,
            selected: Arc::new(OnceLock::new()),
        });
        let shared = SharedCredentialsProvider::new(ChainHandle(inner.clone()));
        DefaultChain { inner, shared }
    }

    /// A builder; every setting defaults to the environment, as in the SDK.
    pub fn builder() -> DefaultChainBuilder {
        DefaultChainBuilder::default()
    }

    /// Which link won, and our cache's state when it is ours.
    pub fn status(&self) -> ChainStatus {
        let selected = self.inner.selected.get().map(|&i| &self.inner.links[i]);
        match selected {
            Some(Link::Ours(chain)) => {
                let status = chain.status();
                ChainStatus {
                    source: Some(status.source.clone()),
                    expiration: status.expiration,
                    fetches: status.fetches,
                    waits: status.waits,
                    cache: Some(status),
                }
            }
            other => ChainStatus {
                source: other.map(Link::label),
                expiration: None,
                fetches: 0,
                waits: 0,
                cache: None,
            },
        }
    }

    /// Credentials from the chain. The SDK calls this through its identity
    /// cache; call it directly only outside the SDK.
    pub async fn credentials(&self) -> provider::Result {
        self.inner.resolve().await
    }

    /// This chain as the SDK's credentials provider: always the same value,
    /// whose identity-cache partition [`identity_cache`](Self::identity_cache)
    /// serves. Give the SDK this value itself (`SdkConfig::builder().credentials_provider(..)`),
    /// or use [`install`](Self::install).
    pub fn credentials_provider(&self) -> SharedCredentialsProvider {
        self.shared.clone()
    }

    /// The identity cache for [`credentials_provider`](Self::credentials_provider):
    /// our refreshing cache answers that provider's requests directly while
    /// Pod Identity or IMDS is the winning link; when an SDK link (1–3) won,
    /// for any other resolver, and before any link has answered, the SDK's
    /// standard lazy cache does. Decided by construction (the provider's
    /// partition and the chain's own record of its winner), never by
    /// comparing credentials.
    pub fn identity_cache(&self) -> SharedIdentityCache {
        let ours = self
            .inner
            .links
            .iter()
            .enumerate()
            .find_map(|(i, l)| match l {
                Link::Ours(chain) => Some((i, chain)),
                _ => None,
            });
        match ours {
            Some((index, chain)) => {
                let selected = self.inner.selected.clone();
                SharedIdentityCache::new(
                    chain
                        .identity_cache()
                        .for_delegating_provider(self.shared.clone(), move || {
                            selected.get() == Some(&index)
                        }),
                )
            }
            None => IdentityCache::lazy().build(),
        }
    }

    /// `config` with this chain's [`credentials_provider`](Self::credentials_provider)
    /// and [`identity_cache`](Self::identity_cache), replacing those set before.
    pub fn install(&self, config: SdkConfig) -> SdkConfig {
        config
            .into_builder()
            .credentials_provider(self.credentials_provider())
            .identity_cache(self.identity_cache())
            .build()
    }
}

impl Inner {
    async fn resolve(&self) -> provider::Result {
        if let Some(&i) = self.selected.get() {
            return self.links[i].provide().await;
        }
        let mut declined = Vec::new();
        for (i, link) in self.links.iter().enumerate() {
            if let Link::Refused(err) = link {
                declined.extend(refused(err));
                let no_credentials = NoCredentials { declined };
                // A deliberate refusal (fallback denied, invalid
                // configuration) must stop an outer chain too; "nothing
                // configured at all" lets it go on.
                return Err(match err {
                    ChainError::NoSource => CredentialsError::not_loaded(no_credentials),
                    _ => CredentialsError::invalid_configuration(no_credentials),
                });
            }
            match link.provide().await {
                Err(err @ CredentialsError::CredentialsNotLoaded(_))
                    if !matches!(link, Link::Ours(_)) =>
                {
                    let why = one_line(&err);
                    tracing::debug!(link = %link.label(), reason = %why, "credential chain link declined");
                    declined.push((link.label(), why));
                }
                answer => {
                    self.select(i);
                    return answer;
                }
            }
        }
        Err(CredentialsError::not_loaded(NoCredentials { declined }))
    }

    /// Keeps link `i` as the winner, warning once if it shadows Pod Identity.
    fn select(&self, i: usize) {
        if self.selected.set(i).is_err() {
            return;
        }
        let link = &self.links[i];
        tracing::debug!(source = %link.label(), "credential chain link selected");
        let pod_identity_configured = self.links.iter().any(|l| match l {
            Link::Ours(chain) => chain.uses_pod_identity(),
            Link::Refused(ChainError::PodIdentity(_)) => true,
            _ => false,
        });
        let sdk_link = matches!(
            link,
            Link::Env(_) | Link::Profile { .. } | Link::WebIdentity { .. }
        );
        if pod_identity_configured && sdk_link {
            tracing::warn!(
                source = %link.label(),
                shadowed = "pod-identity",
                "{} ({}) takes precedence over EKS Pod Identity, which is also configured for this pod ({} is set): the AWS SDK's default chain order applies, so Pod Identity is not used. Remove {} to use Pod Identity",
                link.label(),
                link.configured_by(),
                vars::FULL_URI,
                link.configured_by(),
            );
        }
    }
}

impl ProvideCredentials for DefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.inner.provide()
    }
}

impl Inner {
    fn provide(&self) -> future::ProvideCredentials<'_> {
        match self.selected.get() {
            Some(&i) => self.links[i].provide(),
            None => future::ProvideCredentials::new(self.resolve()),
        }
    }
}

/// Builds a [`DefaultChain`]. Every setting defaults to the environment.
#[derive(Debug, Default, Clone)]
pub struct DefaultChainBuilder {
    tail: CredentialChainBuilder,
    profile_name: Option<String>,
}

impl DefaultChainBuilder {
    /// Configures links 4 and 5 (Pod Identity and IMDS) in full.
    pub fn pod_identity_chain(mut self, chain: CredentialChainBuilder) -> Self {
        self.tail = chain;
        self
    }

    /// Whether IMDS may be used when no earlier link is configured (default:
    /// `Deny` in a Kubernetes pod, `Allow` elsewhere).
    pub fn fallback_policy(mut self, policy: FallbackPolicy) -> Self {
        self.tail = self.tail.fallback_policy(policy);
        self
    }

    /// Overrides the IMDS endpoint (default: environment, then
    /// `http://169.254.169.254`).
    pub fn imds_endpoint(mut self, uri: impl Into<String>) -> Self {
        self.tail = self.tail.imds_endpoint(uri);
        self
    }

    /// The profile of link 2 (default: `AWS_PROFILE`, else `default`).
    pub fn profile_name(mut self, name: impl Into<String>) -> Self {
        self.profile_name = Some(name.into());
        self
    }

    /// Builds the chain for the SDK settings in `config` (region, HTTP
    /// client, time source, retry and timeout settings are passed to the
    /// SDK's providers, as `aws_config`'s loader does). Nothing is fetched.
    pub fn build(self, config: &SdkConfig) -> DefaultChain {
        let conf = provider_config(config);
        let env_var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let profile = self
            .profile_name
            .clone()
            .or_else(|| env_var(ENV_PROFILE))
            .unwrap_or_else(|| "default".into());
        let mut profile_builder = ProfileFileCredentialsProvider::builder().configure(&conf);
        if let Some(name) = &self.profile_name {
            profile_builder = profile_builder.profile_name(name);
        }
        let role = env_var(ENV_ROLE_ARN)
            .map(|arn| arn.rsplit('/').next().unwrap_or(&arn).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let tail = match self.tail.build() {
            Ok(chain) => Link::Ours(chain),
            Err(err) => Link::Refused(err),
        };
        DefaultChain::from_links(vec![
            Link::Env(EnvironmentVariableCredentialsProvider::new()),
            Link::Profile {
                provider: profile_builder.build(),
                label: format!("profile:{profile}"),
            },
            Link::WebIdentity {
                provider: WebIdentityTokenCredentialsProvider::builder()
                    .configure(&conf)
                    .build(),
                label: format!("web-identity:{role}"),
            },
            tail,
        ])
    }

    /// Loads `loader` and installs the chain in the result: its credentials
    /// provider and identity cache are replaced by this chain's.
    pub async fn load(self, loader: ConfigLoader) -> (SdkConfig, DefaultChain) {
        // The loader need not build the SDK's own chain: ours replaces it.
        let config = loader.no_credentials().load().await;
        let chain = self.build(&config);
        let config = chain.install(config);
        (config, chain)
    }
}

/// The chain's state as the SDK's provider (`DefaultChain` itself holds
/// the shared provider, so it cannot be inside it).
struct ChainHandle(Arc<Inner>);

impl fmt::Debug for ChainHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultChain")
    }
}

impl ProvideCredentials for ChainHandle {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide()
    }
}

/// The SDK settings that `aws_config`'s providers need, from a loaded config.
fn provider_config(config: &SdkConfig) -> ProviderConfig {
    let mut conf = ProviderConfig::without_region()
        .with_region(config.region().cloned())
        .with_use_fips(config.use_fips())
        .with_use_dual_stack(config.use_dual_stack())
        .with_behavior_version(config.behavior_version());
    if let Some(time) = config.time_source() {
        conf = conf.with_time_source(time);
    }
    if let Some(http) = config.http_client() {
        conf = conf.with_http_client(http);
    }
    if let Some(sleep) = config.sleep_impl() {
        conf = conf.with_sleep_impl(sleep);
    }
    if let Some(retry) = config.retry_config() {
        conf = conf.with_retry_config(retry.clone());
    }
    if let Some(timeout) = config.timeout_config() {
        conf = conf.with_timeout_config(timeout.clone());
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
    use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
    use aws_smithy_runtime_api::client::identity::{ResolveCachedIdentity, SharedIdentityResolver};
    use aws_smithy_runtime_api::client::runtime_components::{
        RuntimeComponents, RuntimeComponentsBuilder,
    };
    use aws_smithy_types::config_bag::ConfigBag;
    use eks_pod_identity_provider::MapEnv;
    use eks_pod_identity_provider::ProviderContext;
    use eks_pod_identity_testkit::agent::FakeAgent;

    /// What the SDK passes: with a time source and sleep (the lazy cache needs them).
    fn sdk_components() -> RuntimeComponents {
        RuntimeComponentsBuilder::for_tests()
            .with_time_source(Some(SharedTimeSource::new(SystemTimeSource::new())))
            .with_sleep_impl(Some(SharedAsyncSleep::new(TokioSleep::new())))
            .build()
            .unwrap()
    }

    /// Components whose time source and sleep panic when used: only a
    /// request served from our cache, not through the lazy cache, succeeds.
    fn without_lazy_cache_support() -> RuntimeComponents {
        RuntimeComponentsBuilder::for_tests().build().unwrap()
    }

    #[tokio::test]
    async fn once_pod_identity_won_the_chains_own_provider_reads_our_cache() {
        let agent = FakeAgent::builder()
            .association("ns", "sa", "arn:aws:iam::123456789012:role/app")
            .start()
            .await
            .unwrap();
        let env = MapEnv::from_iter([
            (vars::FULL_URI.to_owned(), agent.uri()),
            (
                vars::TOKEN.to_owned(),
                eks_pod_identity_testkit::token::mint("ns", "sa"),
            ),
        ]);
        let tail = CredentialChain::builder()
            .context(ProviderContext::new().with_env(env))
            .fallback_policy(FallbackPolicy::Deny)
            .build()
            .unwrap();
        let chain = DefaultChain::from_links(vec![Link::Ours(tail)]);
        let ids = chain.identity_cache();
        let resolver = SharedIdentityResolver::new(chain.credentials_provider());
        let cfg = ConfigBag::base();
        assert_eq!(chain.status().source, None);

        // Before any link has answered: the SDK's lazy cache, through the chain.
        let rc = sdk_components();
        ids.resolve_cached_identity(resolver.clone(), &rc, &cfg)
            .await
            .unwrap();
        assert_eq!(chain.status().source.as_deref(), Some("pod-identity"));

        // Pod Identity won: served from our cache without the lazy cache.
        let rc = without_lazy_cache_support();
        for _ in 0..3 {
            ids.resolve_cached_identity(resolver.clone(), &rc, &cfg)
                .await
                .unwrap();
        }
        assert_eq!(agent.stats().total, 1);
    }
}
