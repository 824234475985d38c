//! [`SdkIdentityCache`]: this crate's cache offered to the SDK as its
//! identity cache. Why it exists and how it tells the requests that are
//! ours from the others: [`docs::design`](crate::docs::design#the-sdks-identity-cache).

use super::refreshing::RefreshingCache;
use crate::source::CredentialSource;
use aws_credential_types::provider::error::CredentialsError;
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

/// A [`RefreshingCache`] with its source type erased: what the SDK identity
/// cache reads, whatever the source.
pub(crate) trait DynRefreshingCache: Send + Sync + fmt::Debug {
    fn cached_identity(&self) -> Option<Identity>;
    fn identity(&self) -> IdentityFuture<'_>;
}

impl<S: CredentialSource> DynRefreshingCache for RefreshingCache<S> {
    fn cached_identity(&self) -> Option<Identity> {
        RefreshingCache::cached_identity(self)
    }

    fn identity(&self) -> IdentityFuture<'_> {
        IdentityFuture::new(async move {
            let credentials = self.get().await.map_err(CredentialsError::from)?;
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
/// other resolver gets the SDK's standard lazy cache. Why, and how the
/// requests that are ours are told apart, is in
/// [`docs::design`](crate::docs::design#the-sdks-identity-cache). Use one
/// `SdkIdentityCache` per SDK config
/// ([`docs::limitations`](crate::docs::limitations)).
///
/// Cheap to clone. Requests it serves from the refreshing cache are
/// lock-free on the hot path and wait only as
/// [`RefreshingCache::get`] does; other resolvers get the lazy cache's
/// behaviour.
#[derive(Clone)]
pub struct SdkIdentityCache {
    cache: Arc<dyn DynRefreshingCache>,
    /// The SDK provider served from `cache`; its partition is `partition`.
    provider: SharedCredentialsProvider,
    partition: Option<IdentityCachePartition>,
    /// For a provider that answers from `cache` only at times (a chain).
    delegates: Option<Delegates>,
    /// The SDK's standard lazy cache, for every other resolver.
    fallback: SharedIdentityCache,
}

impl fmt::Debug for SdkIdentityCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkIdentityCache")
            .field("cache", &self.cache)
            .field("partition", &self.partition)
            .field("delegating", &self.delegates.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: CredentialSource> RefreshingCache<S> {
    /// This cache as the SDK's identity cache (see [`SdkIdentityCache`]).
    /// Each call creates a new SDK provider handle with its own partition:
    /// call it once per SDK config.
    pub fn identity_cache(&self) -> SdkIdentityCache {
        SdkIdentityCache::new(self.clone())
    }
}

impl SdkIdentityCache {
    fn new<S: CredentialSource>(cache: RefreshingCache<S>) -> Self {
        let provider = SharedCredentialsProvider::new(cache.clone());
        Self {
            partition: provider.cache_partition(),
            cache: Arc::new(cache),
            provider,
            delegates: None,
            fallback: IdentityCache::lazy().build(),
        }
    }

    /// The one credentials provider whose requests this cache serves from the
    /// refreshing cache. Give the SDK this value itself (not a wrapper around
    /// it), e.g. `SdkConfig::builder().credentials_provider(ids.credentials_provider())`.
    /// A clone of one handle; lock-free.
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
            cache: self.cache.clone(),
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
            return match self.cache.cached_identity() {
                Some(identity) => IdentityFuture::ready(Ok(identity)),
                None => self.cache.identity(),
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
