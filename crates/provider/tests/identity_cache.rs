//! `SdkIdentityCache`: the refreshing cache as the SDK's identity cache,
//! driven exactly as the SDK's orchestrator drives it
//! (`resolve_cached_identity` with a `SharedIdentityResolver`), under paused
//! tokio time with a scripted source. The SDK's time source and sleep follow
//! tokio time too, so the lazy cache that serves other resolvers expires on
//! the same clock. (Through a real SDK client: the root crate's
//! `tests/chain_identity_cache.rs`.)

mod common;

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use aws_smithy_runtime_api::client::identity::{
    Identity, ResolveCachedIdentity, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use common::{cache, epoch, ScriptedSource, Step, HOUR};
use eks_pod_identity_provider::context::{Clock, TokioClock};
use eks_pod_identity_provider::{ErrorKind, RefreshPolicy, SdkIdentityCache};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The SDK's time source on tokio's (paused) clock.
#[derive(Debug)]
struct SdkTime(TokioClock);

impl TimeSource for SdkTime {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

fn components(clock: TokioClock) -> RuntimeComponents {
    RuntimeComponentsBuilder::for_tests()
        .with_time_source(Some(SharedTimeSource::new(SdkTime(clock))))
        .with_sleep_impl(Some(SharedAsyncSleep::new(TokioSleep::new())))
        .build()
        .unwrap()
}

async fn resolve(
    cache: &SdkIdentityCache,
    resolver: &SharedIdentityResolver,
    clock: TokioClock,
) -> Result<Identity, aws_smithy_runtime_api::box_error::BoxError> {
    let rc = components(clock);
    let cfg = ConfigBag::base();
    cache
        .resolve_cached_identity(resolver.clone(), &rc, &cfg)
        .await
}

/// The resolver the SDK builds from a `SharedCredentialsProvider`: it keeps
/// that provider's partition.
fn resolver_of(provider: SharedCredentialsProvider) -> SharedIdentityResolver {
    SharedIdentityResolver::new(provider)
}

/// The resolver the SDK builds from `credentials_provider(impl ProvideCredentials)`:
/// a new shared provider, hence a new partition.
fn wrapped(provider: impl ProvideCredentials + 'static) -> SharedIdentityResolver {
    SharedIdentityResolver::new(SharedCredentialsProvider::new(provider))
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
async fn own_provider_is_served_from_the_refreshing_cache() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = resolver_of(ids.credentials_provider());

    let first = resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(key(&first), "ASIA000000000001");
    for _ in 0..100 {
        let again = resolve(&ids, &resolver, clock).await.unwrap();
        assert_eq!(key(&again), "ASIA000000000001");
        assert_eq!(again.expiration(), first.expiration());
    }
    assert_eq!(source.calls(), 1, "one fetch in all");
    assert_eq!(c.status().waits, 1, "only the cold start waited");
}

#[tokio::test(start_paused = true)]
async fn every_thread_gets_the_same_identity_before_and_after_a_refresh() {
    // The cache keeps one `Identity` copy per stripe (one per CPU) so that
    // threads don't contend on one set of reference counts; each thread must
    // still see exactly the cached credentials, and a refresh must replace
    // every copy.
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = resolver_of(ids.credentials_provider());
    let first = resolve(&ids, &resolver, clock).await.unwrap();
    let from_threads = |ids: SdkIdentityCache, resolver: SharedIdentityResolver| async move {
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (ids, resolver) = (ids.clone(), resolver.clone());
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let id = handle
                        .block_on(resolve(&ids, &resolver, clock))
                        .expect("cached");
                    (key(&id), id.expiration())
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in threads {
            seen.push(t.await.unwrap());
        }
        seen
    };
    for (k, exp) in from_threads(ids.clone(), resolver.clone()).await {
        assert_eq!(k, key(&first));
        assert_eq!(exp, first.expiration());
    }
    let due = c.status().next_refresh.unwrap();
    tokio::time::advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1)).await;
    settle().await;
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    assert_eq!(source.calls(), 2, "the background refresh ran");
    let second = resolve(&ids, &resolver, clock).await.unwrap();
    assert_ne!(key(&second), key(&first));
    for (k, exp) in from_threads(ids.clone(), resolver.clone()).await {
        assert_eq!(k, key(&second), "every stripe was replaced");
        assert_eq!(exp, second.expiration());
    }
}

#[tokio::test(start_paused = true)]
async fn own_provider_follows_background_refreshes_at_once() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = resolver_of(ids.credentials_provider());
    let first = resolve(&ids, &resolver, clock).await.unwrap();

    // Move to the scheduled proactive refresh (inside [exp − A, exp − A/2]),
    // well before the mandatory window, and let the fetch (50 ms) complete:
    // the identity cache hands out the new credentials at once (a lazy
    // cache would keep the first ones until 10 s before their expiry).
    let due = c.status().next_refresh.unwrap();
    // (+1 s: tokio rounds timers up to the next millisecond.)
    tokio::time::advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1)).await;
    settle().await;
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let next = resolve(&ids, &resolver, clock).await.unwrap();
    assert_ne!(key(&next), key(&first));
    assert_eq!(source.calls(), 2);
    assert_eq!(c.status().waits, 1, "only the cold start waited");
    assert!(next.expiration().unwrap() > clock.now() + Duration::from_secs(50 * 60));
}

#[tokio::test(start_paused = true)]
async fn failing_source_64_callers_share_one_fetch_through_the_identity_cache() {
    let (source, clock) = setup();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = resolver_of(ids.credentials_provider());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let ids = ids.clone();
            let resolver = resolver.clone();
            tokio::spawn(async move { resolve(&ids, &resolver, clock).await.is_err() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap(), "every caller gets the shared error");
    }
    assert_eq!(source.calls(), 1, "one fetch for 64 callers");
}

#[tokio::test(start_paused = true)]
async fn cached_credentials_are_served_through_faults_until_expiry_never_after() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    let resolver = resolver_of(ids.credentials_provider());
    let first = resolve(&ids, &resolver, clock).await.unwrap();
    let expiration = first.expiration().unwrap();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    // Every minute up to the last one before expiry: the source fails on
    // every refresh, and every caller still gets the cached credentials.
    let mut minutes = 0;
    while clock.now() + Duration::from_secs(61) < expiration {
        tokio::time::advance(Duration::from_secs(60)).await;
        minutes += 1;
        let identity = resolve(&ids, &resolver, clock)
            .await
            .unwrap_or_else(|e| panic!("minute {minutes}: cached credentials not served: {e}"));
        assert_eq!(key(&identity), key(&first), "minute {minutes}");
        assert!(identity.expiration().unwrap() > clock.now());
    }
    assert!(minutes >= 58, "walked the whole lifetime ({minutes} min)");
    assert!(
        c.status().failures > 0,
        "refreshes were attempted and failed"
    );

    // Past expiry: an error, never the expired credentials.
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(clock.now() > expiration);
    resolve(&ids, &resolver, clock)
        .await
        .expect_err("expired credentials must not be served");
}

#[tokio::test(start_paused = true)]
async fn other_resolvers_get_the_sdks_lazy_caching_never_our_credentials() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    c.get().await.unwrap();
    // An uncached provider, as an AssumeRoleProvider override would be.
    let (provider, calls) = counted(Other::with_expiry(clock.now() + HOUR));
    let resolver = wrapped(provider);
    for _ in 0..5 {
        let identity = resolve(&ids, &resolver, clock).await.unwrap();
        assert_eq!(key(&identity), "AKIDOTHER");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "cached like the SDK does");
    assert_eq!(source.calls(), 1, "our source is not involved");

    // Near its expiry the lazy cache asks the provider again.
    tokio::time::advance(HOUR - Duration::from_secs(5)).await;
    resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_wrapper_whose_answer_changes_is_never_served_our_credentials() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let ids = c.identity_cache();
    // A switching provider: answers with our provider's credentials first,
    // then with others. It is not our provider, so the SDK's caching applies
    // to it, whatever its first answer was.
    let switcher = Switcher {
        first: c.clone(),
        then: Other::with_expiry(clock.now() + 2 * HOUR),
        calls: AtomicUsize::new(0),
    };
    let switcher = Arc::new(switcher);
    let resolver = wrapped(SharedSwitcher(switcher.clone()));

    let first = resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(key(&first), "ASIA000000000001");
    for _ in 0..10 {
        assert_eq!(
            key(&resolve(&ids, &resolver, clock).await.unwrap()),
            "ASIA000000000001"
        );
    }
    assert_eq!(switcher.calls.load(Ordering::SeqCst), 1, "lazily cached");

    // Once the first answer is about to expire, the wrapper is asked again
    // and its new answer is used.
    tokio::time::advance(HOUR).await;
    let later = resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(key(&later), "AKIDOTHER");
    assert_eq!(switcher.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_delegating_provider_is_served_only_while_it_delegates() {
    let (source, clock) = setup();
    let c = cache(source.clone(), RefreshPolicy::default());
    let own = c.identity_cache();
    let delegating = Arc::new(AtomicBool::new(false));
    let (provider, calls) = counted(c.clone());
    let wrapper = SharedCredentialsProvider::new(provider);
    let flag = delegating.clone();
    let ids = own.for_delegating_provider(wrapper.clone(), move || flag.load(Ordering::SeqCst));
    let resolver = resolver_of(wrapper);

    // Not delegating: the lazy cache resolves through the wrapper.
    resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Delegating: served from our cache, the wrapper is not called, and a
    // background refresh shows at once.
    delegating.store(true, Ordering::SeqCst);
    let due = c.status().next_refresh.unwrap();
    tokio::time::advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1)).await;
    settle().await;
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let served = resolve(&ids, &resolver, clock).await.unwrap();
    assert_eq!(key(&served), "ASIA000000000002");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the wrapper was not asked");

    // Another resolver is never served from our cache.
    let (other, other_calls) = counted(Other::with_expiry(clock.now() + HOUR));
    let other = wrapped(other);
    assert_eq!(
        key(&resolve(&ids, &other, clock).await.unwrap()),
        "AKIDOTHER"
    );
    assert_eq!(other_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn debug_shows_no_secret() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (source, clock) = setup();
        let c = cache(source, RefreshPolicy::default());
        let ids = c.identity_cache();
        resolve(&ids, &resolver_of(ids.credentials_provider()), clock)
            .await
            .unwrap();
        let shown = format!("{ids:?}");
        assert!(shown.contains("SdkIdentityCache"));
        assert!(!shown.contains(common::SECRET) && !shown.contains(common::SESSION));
    });
}

// --- providers that are not ours ---------------------------------------------

#[derive(Debug)]
struct Other(Credentials);

impl Other {
    fn with_expiry(expiration: SystemTime) -> Self {
        Self(Credentials::new(
            "AKIDOTHER",
            "other-secret",
            None,
            Some(expiration),
            "other",
        ))
    }
}

impl ProvideCredentials for Other {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Ok(self.0.clone()))
    }
}

/// Our provider's answer on the first call, `then`'s afterwards.
#[derive(Debug)]
struct Switcher<P> {
    first: P,
    then: Other,
    calls: AtomicUsize,
}

#[derive(Debug)]
struct SharedSwitcher<P>(Arc<Switcher<P>>);

impl<P: ProvideCredentials> ProvideCredentials for SharedSwitcher<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        if self.0.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.0.first.provide_credentials()
        } else {
            self.0.then.provide_credentials()
        }
    }
}

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
