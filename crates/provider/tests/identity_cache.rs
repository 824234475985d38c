//! `SdkIdentityCache`: the refreshing cache as the SDK's identity cache,
//! driven exactly as the SDK's orchestrator drives it
//! (`resolve_cached_identity` with a `SharedIdentityResolver`), under paused
//! tokio time with a scripted source.

mod common;

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::{
    Identity, ResolveCachedIdentity, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use common::{cache, epoch, ScriptedSource, Step, HOUR};
use eks_pod_identity_provider::time::{Clock, TokioClock};
use eks_pod_identity_provider::{ErrorKind, RefreshPolicy, SdkIdentityCache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn components() -> RuntimeComponents {
    RuntimeComponentsBuilder::for_tests().build().unwrap()
}

/// The resolver the SDK builds from `credentials_provider(..)`: a new
/// partition around the provider, as `aws-config`'s loader does.
fn sdk_resolver(provider: impl ProvideCredentials + 'static) -> SharedIdentityResolver {
    SharedIdentityResolver::new(SharedCredentialsProvider::new(provider))
}

async fn resolve(
    cache: &SdkIdentityCache,
    resolver: &SharedIdentityResolver,
) -> Result<Identity, aws_smithy_runtime_api::box_error::BoxError> {
    let rc = components();
    let cfg = ConfigBag::base();
    cache
        .resolve_cached_identity(resolver.clone(), &rc, &cfg)
        .await
}

fn key(identity: &Identity) -> String {
    identity
        .data::<Credentials>()
        .expect("credentials identity")
        .access_key_id()
        .to_owned()
}

/// Lets spawned tasks run without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn setup() -> (ScriptedSource, TokioClock) {
    let clock = TokioClock::starting_at(epoch());
    (ScriptedSource::new(clock, Step::Ok(HOUR)), clock)
}

#[tokio::test(start_paused = true)]
async fn binds_to_its_own_resolver_and_then_serves_without_resolving() {
    let (source, _clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let (provider, calls) = counted(c.clone());
    let resolver = sdk_resolver(provider);
    assert!(!ids.is_bound());

    let first = resolve(&ids, &resolver).await.unwrap();
    assert!(ids.is_bound(), "the provider's own resolver is recognised");
    assert_eq!(key(&first), "ASIA000000000001");
    let resolver_calls = calls.load(Ordering::SeqCst);

    for _ in 0..100 {
        let again = resolve(&ids, &resolver).await.unwrap();
        assert_eq!(key(&again), "ASIA000000000001");
        assert_eq!(again.expiration(), first.expiration());
    }
    assert_eq!(source.calls(), 1, "one fetch in all");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        resolver_calls,
        "a bound cache never goes through the resolver"
    );
}

#[tokio::test(start_paused = true)]
async fn bound_cache_follows_background_refreshes() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = sdk_resolver(c.clone());
    let first = resolve(&ids, &resolver).await.unwrap();
    assert!(ids.is_bound());

    // Move to the scheduled proactive refresh (inside [exp − A, exp − A/2]),
    // well before the mandatory window, and let the fetch (50 ms) complete:
    // the identity cache hands out the new credentials at once.
    let due = c.status().next_refresh.unwrap();
    // (+1 s: tokio rounds timers up to the next millisecond.)
    tokio::time::advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1)).await;
    settle().await;
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let next = resolve(&ids, &resolver).await.unwrap();
    assert_ne!(key(&next), key(&first));
    assert_eq!(source.calls(), 2);
    assert_eq!(c.status().waits, 1, "only the cold start waited");
    assert!(next.expiration().unwrap() > clock.now() + Duration::from_secs(50 * 60));
}

#[tokio::test(start_paused = true)]
async fn failing_source_64_callers_share_one_fetch_through_the_identity_cache() {
    let (source, _clock) = setup();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = sdk_resolver(c.clone());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let ids = ids.clone();
            let resolver = resolver.clone();
            tokio::spawn(async move { resolve(&ids, &resolver).await.is_err() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap(), "every caller gets the shared error");
    }
    assert_eq!(source.calls(), 1, "one fetch for 64 callers");
    assert!(!ids.is_bound(), "nothing to compare with yet");

    // Once the source recovers and the error backoff (≤ 5 s) has passed,
    // the next caller fetches and binds.
    source.set_default(Step::Ok(HOUR));
    tokio::time::advance(Duration::from_secs(5)).await;
    resolve(&ids, &resolver).await.unwrap();
    assert!(ids.is_bound());
}

#[tokio::test(start_paused = true)]
async fn expired_credentials_are_never_served_from_the_fast_path() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = sdk_resolver(c.clone());
    resolve(&ids, &resolver).await.unwrap();
    assert!(ids.is_bound());
    source.set_default(Step::Fail(ErrorKind::ServerError));
    // Walk past expiry in steps; whatever is served must be unexpired.
    for _ in 0..80 {
        tokio::time::advance(Duration::from_secs(60)).await;
        if let Ok(identity) = resolve(&ids, &resolver).await {
            assert!(identity.expiration().unwrap() > clock.now());
        }
    }
    assert!(
        resolve(&ids, &resolver).await.is_err(),
        "expired: an error, not stale credentials"
    );
}

#[tokio::test(start_paused = true)]
async fn other_resolvers_are_resolved_every_time_and_never_bound() {
    let (source, _clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    // Prime our cache so that a comparison is possible.
    c.get().await.unwrap();
    let other = Credentials::new("AKIDOTHER", "other-secret", None, None, "static");
    let (provider, calls) = counted(other);
    let resolver = sdk_resolver(provider);
    for i in 1..=5 {
        let identity = resolve(&ids, &resolver).await.unwrap();
        assert_eq!(key(&identity), "AKIDOTHER");
        assert_eq!(calls.load(Ordering::SeqCst), i);
    }
    assert!(!ids.is_bound());
    assert_eq!(source.calls(), 1);
}

#[test]
fn debug_shows_no_secret() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (source, _clock) = setup();
        let c = cache(source, RefreshPolicy::default());
        let ids = c.identity_cache();
        resolve(&ids, &sdk_resolver(c.clone())).await.unwrap();
        let shown = format!("{ids:?}");
        assert!(shown.contains("SdkIdentityCache"));
        assert!(!shown.contains(common::SECRET) && !shown.contains(common::SESSION));
    });
}

// --- a provider that counts calls, to see which path a request took ---------

#[derive(Debug)]
struct CountingProvider<P> {
    inner: P,
    calls: Arc<AtomicUsize>,
}

/// `inner` wrapped to count its calls, and the counter.
fn counted<P>(inner: P) -> (CountingProvider<P>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = CountingProvider {
        inner,
        calls: calls.clone(),
    };
    (provider, calls)
}

impl<P: ProvideCredentials> ProvideCredentials for CountingProvider<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.provide_credentials()
    }
}
