//! This crate's cache offered to the SDK as its identity cache.
//!
//! An SDK client does not call a credentials provider per request: it asks
//! its *identity cache* ([`ResolveCachedIdentity`]), which by default is the
//! SDK's lazy cache. In front of a [`PodIdentityProvider`] that cache costs
//! more than everything it fronts and adds behaviour we took care to avoid
//! (see BENCHMARKS.md, `hot_path` and `failing_agent`):
//!
//! * every request takes its async `RwLock` and arms a timeout timer, about
//!   3 µs on the benchmark VM against a few hundred ns for our own read;
//! * when credentials are missing it lets one caller at a time through and
//!   each one starts its own fetch, so a failing agent sees one full fetch
//!   (3 attempts) per waiting request, serially, instead of one shared fetch.
//!
//! [`SdkIdentityCache`] serves instead the `Identity` that the refreshing
//! cache built once per refresh: one `ArcSwap` load, one clock read, one
//! clone. Waiting, single-flight, static stability and the background refresh
//! are the refreshing cache's, unchanged.
//!
//! # Which resolver is ours: decided by construction
//!
//! The SDK hands the identity cache an opaque resolver, which carries an
//! [`IdentityCachePartition`]. A `SharedCredentialsProvider` gets its
//! partition once, when it is created, and keeps it however often it is
//! cloned. So an `SdkIdentityCache` creates the one shared provider that
//! reads its refreshing cache ([`SdkIdentityCache::credentials_provider`]) and
//! serves its fast path to exactly that provider's partition. Every other
//! resolver (another provider, a wrapper around ours, a per-client or
//! per-operation override, a bearer-token resolver) goes to the SDK's standard
//! lazy cache, exactly as if no custom identity cache were configured: it is
//! cached, never served our credentials. Nothing is decided by comparing the
//! credentials a resolver returned.
//!
//! Give the provider to the SDK as that very value, through
//! `SdkConfig::builder().credentials_provider(..)` or a client config's
//! `set_credentials_provider(Some(..))`. The `credentials_provider(impl
//! ProvideCredentials)` methods of `aws_config`'s loader and of service
//! configs wrap their argument in a *new* shared provider, hence a new
//! partition: that still works, through the lazy cache. The facade crate's
//! one-line setup (`eks_pod_identity::load_defaults`) does this for you.
//!
//! [`PodIdentityProvider`]: crate::PodIdentityProvider

use crate::cache::RefreshingCache;
use crate::source::CredentialSource;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::identity::{
    Identity, IdentityCachePartition, IdentityFuture, ResolveCachedIdentity, ResolveIdentity,
    SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use std::fmt;
use std::sync::Arc;

/// What the identity cache needs from a refreshing cache, whatever its source.
pub(crate) trait IdentitySource: Send + Sync + fmt::Debug {
    fn cached_identity(&self) -> Option<Identity>;
    fn identity(&self) -> IdentityFuture<'_>;
}

impl<S: CredentialSource> IdentitySource for RefreshingCache<S> {
    fn cached_identity(&self) -> Option<Identity> {
        RefreshingCache::cached_identity(self)
    }

    fn identity(&self) -> IdentityFuture<'_> {
        IdentityFuture::new(async move {
            let credentials = self
                .get()
                .await
                .map_err(crate::provider::to_credentials_error)?;
            Ok(Identity::from(credentials))
        })
    }
}

/// Tells whether a delegating provider currently answers from our cache.
type Delegates = Arc<dyn Fn() -> bool + Send + Sync>;

/// A provider's refreshing cache, as the SDK's identity cache.
///
/// Get one from [`PodIdentityProvider::identity_cache`](crate::PodIdentityProvider::identity_cache)
/// or [`CredentialChain::identity_cache`](crate::CredentialChain::identity_cache),
/// and give the SDK both it and *its* [`credentials_provider`](Self::credentials_provider):
///
/// ```no_run
/// use eks_pod_identity_provider::PodIdentityProvider;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ids = PodIdentityProvider::from_env()?.identity_cache();
/// let loaded = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
/// let config = loaded
///     .into_builder()
///     .credentials_provider(ids.credentials_provider())
///     .identity_cache(ids)
///     .build();
/// # let _ = config; Ok(()) }
/// ```
///
/// Requests resolved through that provider read our cache directly; any
/// other resolver gets the SDK's standard lazy cache. See the
/// [module documentation](self). One `SdkIdentityCache` per SDK config.
#[derive(Clone)]
pub struct SdkIdentityCache {
    source: Arc<dyn IdentitySource>,
    /// The SDK provider served from `source`; its partition is `partition`.
    provider: SharedCredentialsProvider,
    partition: Option<IdentityCachePartition>,
    /// For a provider that answers from `source` only at times (a chain).
    delegates: Option<Delegates>,
    /// The SDK's standard lazy cache, for every other resolver.
    fallback: SharedIdentityCache,
}

impl fmt::Debug for SdkIdentityCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkIdentityCache")
            .field("source", &self.source)
            .field("partition", &self.partition)
            .field("delegating", &self.delegates.is_some())
            .finish_non_exhaustive()
    }
}

impl SdkIdentityCache {
    pub(crate) fn new<S: CredentialSource>(cache: RefreshingCache<S>) -> Self {
        let provider = SharedCredentialsProvider::new(cache.clone());
        Self {
            partition: provider.cache_partition(),
            source: Arc::new(cache),
            provider,
            delegates: None,
            fallback: IdentityCache::lazy().build(),
        }
    }

    /// The one credentials provider whose requests this cache serves from the
    /// refreshing cache. Give the SDK this value itself (not a wrapper around
    /// it), e.g. `SdkConfig::builder().credentials_provider(ids.credentials_provider())`.
    pub fn credentials_provider(&self) -> SharedCredentialsProvider {
        self.provider.clone()
    }

    /// A cache for a provider that wraps this one, such as a credential
    /// chain one of whose links is this cache's provider: requests resolved
    /// through `provider` are served from this cache while `delegates()`
    /// returns `true`, and go to the SDK's lazy cache otherwise, as do all
    /// other resolvers.
    ///
    /// The caller builds `provider` and vouches, by construction, that it
    /// answers from this cache whenever `delegates()` is `true`. `delegates`
    /// runs on every request through `provider`: keep it to an atomic load.
    pub fn for_delegating_provider(
        &self,
        provider: SharedCredentialsProvider,
        delegates: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            source: self.source.clone(),
            partition: provider.cache_partition(),
            provider,
            delegates: Some(Arc::new(delegates)),
            fallback: IdentityCache::lazy().build(),
        }
    }

    /// `true` when `resolver` is this cache's provider and that provider
    /// answers from our cache now.
    #[inline]
    fn serves(&self, resolver: &SharedIdentityResolver) -> bool {
        self.partition == Some(resolver.cache_partition())
            && self.delegates.as_ref().is_none_or(|d| d())
    }
}

impl ResolveCachedIdentity for SdkIdentityCache {
    fn resolve_cached_identity<'a>(
        &'a self,
        resolver: SharedIdentityResolver,
        runtime_components: &'a RuntimeComponents,
        config_bag: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        if self.serves(&resolver) {
            return match self.source.cached_identity() {
                Some(identity) => IdentityFuture::ready(Ok(identity)),
                None => self.source.identity(),
            };
        }
        self.fallback
            .resolve_cached_identity(resolver, runtime_components, config_bag)
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.fallback
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.fallback.validate_final_config(runtime_components, cfg)
    }
}
