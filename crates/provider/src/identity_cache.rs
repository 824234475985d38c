//! This crate's cache offered to the SDK as its identity cache.
//!
//! An SDK client does not call a credentials provider per request: it asks
//! its *identity cache* ([`ResolveCachedIdentity`]), which by default is
//! `aws-config`'s lazy cache. In front of a [`PodIdentityProvider`] that cache
//! costs more than everything it fronts and adds behaviour we took care to
//! avoid (see BENCHMARKS.md, `hot_path` and `failing_agent`):
//!
//! * every request takes its async `RwLock` and arms a timeout timer, about
//!   3 µs on the benchmark VM against a few hundred ns for our own read;
//! * when credentials are missing it lets one caller at a time through and
//!   each one starts its own fetch, so a failing agent sees one full fetch
//!   (3 attempts) per waiting request, serially, instead of one shared fetch.
//!
//! `IdentityCache::no_cache()` removes the lazy cache, but then every request
//! converts `Credentials` into an `Identity` (a boxed future and several
//! allocations). [`SdkIdentityCache`] serves instead the `Identity` that the
//! refreshing cache built once per refresh: one `ArcSwap` load, one clock
//! read, one clone. Waiting, single-flight, static stability and the
//! background refresh are the refreshing cache's, unchanged.
//!
//! # Which resolver is ours
//!
//! The SDK passes the cache an opaque resolver. `aws-config` wraps whatever
//! is given to `credentials_provider(..)` in a new partition, so the cache
//! cannot know beforehand which partition is this provider. It learns it: a
//! resolver seen for the first time is resolved normally, and if what it
//! returned is exactly the credentials this provider holds, its partition is
//! bound to this provider and later requests take the fast path. Any other
//! resolver (a bearer-token resolver, another provider) is resolved on every
//! call without caching, as with `IdentityCache::no_cache()`, so a misuse is
//! slower, never wrong. One cache binds one partition: build one per SDK
//! config.
//!
//! [`PodIdentityProvider`]: crate::PodIdentityProvider

use crate::cache::RefreshingCache;
use crate::source::CredentialSource;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::{
    Identity, IdentityCachePartition, IdentityFuture, ResolveCachedIdentity, ResolveIdentity,
    SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// What the identity cache needs from a refreshing cache, whatever its source.
pub(crate) trait IdentitySource: Send + Sync + fmt::Debug {
    fn cached_identity(&self) -> Option<Identity>;
    fn current(&self) -> Option<Credentials>;
    fn identity(&self) -> IdentityFuture<'_>;
}

impl<S: CredentialSource> IdentitySource for RefreshingCache<S> {
    fn cached_identity(&self) -> Option<Identity> {
        RefreshingCache::cached_identity(self)
    }

    fn current(&self) -> Option<Credentials> {
        RefreshingCache::current(self)
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

/// A provider's refreshing cache, as the SDK's identity cache.
///
/// Get one from [`PodIdentityProvider::identity_cache`](crate::PodIdentityProvider::identity_cache)
/// or [`CredentialChain::identity_cache`](crate::CredentialChain::identity_cache)
/// and give it to the same SDK config as the provider:
///
/// ```no_run
/// use eks_pod_identity_provider::CredentialChain;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let chain = CredentialChain::builder().build()?;
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .credentials_provider(chain.clone())
///     .identity_cache(chain.identity_cache())
///     .load()
///     .await;
/// # let _ = config; Ok(()) }
/// ```
///
/// See the [module documentation](self) for why and how it recognises the
/// provider's requests.
#[derive(Clone)]
pub struct SdkIdentityCache {
    source: Arc<dyn IdentitySource>,
    bound: Arc<OnceLock<IdentityCachePartition>>,
}

impl fmt::Debug for SdkIdentityCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkIdentityCache")
            .field("source", &self.source)
            .field("bound_partition", &self.bound.get())
            .finish()
    }
}

impl SdkIdentityCache {
    pub(crate) fn new<S: CredentialSource>(cache: RefreshingCache<S>) -> Self {
        Self {
            source: Arc::new(cache),
            bound: Arc::new(OnceLock::new()),
        }
    }

    /// `true` once the cache has recognised its provider's resolver and
    /// serves it from the fast path.
    pub fn is_bound(&self) -> bool {
        self.bound.get().is_some()
    }
}

impl ResolveCachedIdentity for SdkIdentityCache {
    fn resolve_cached_identity<'a>(
        &'a self,
        resolver: SharedIdentityResolver,
        runtime_components: &'a RuntimeComponents,
        config_bag: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        let partition = resolver.cache_partition();
        if self.bound.get() == Some(&partition) {
            return match self.source.cached_identity() {
                Some(identity) => IdentityFuture::ready(Ok(identity)),
                None => self.source.identity(),
            };
        }
        IdentityFuture::new(async move {
            let identity = resolver
                .resolve_identity(runtime_components, config_bag)
                .await?;
            let ours = identity
                .data::<Credentials>()
                .is_some_and(|c| self.source.current().as_ref() == Some(c));
            if ours && self.bound.set(partition).is_ok() {
                tracing::debug!(
                    ?partition,
                    "identity cache bound to the provider's resolver"
                );
            }
            Ok(identity)
        })
    }
}
