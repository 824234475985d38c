//! Our identity cache through a real SDK client (aws-sdk-s3): its own
//! provider is served from our refreshing cache; a wrapper resolver whose
//! answer changes, and per-client / per-operation credentials overrides, get
//! the SDK's standard lazy caching and never our credentials.
//!
//! The HTTP client records which access key signed each request and answers
//! 200 itself (nothing leaves the process). Paused tokio time drives our
//! cache, the SDK's time source and its sleeps alike.

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::TimeSource;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::ResolveCachedIdentity;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use eks_pod_identity::context::{Clock, FastRandom, TokioClock};
use eks_pod_identity::RefreshingCache;
use eks_pod_identity::{CredentialSource, Fetched};
use eks_pod_identity::{RefreshError, RefreshPolicy};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const HOUR: Duration = Duration::from_secs(3600);

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Our source: one-hour credentials `ASIAOURS<n>` per fetch.
#[derive(Debug)]
struct Minting {
    clock: TokioClock,
    fetches: AtomicUsize,
}

impl CredentialSource for Minting {
    fn name(&self) -> &'static str {
        "minting"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let expiration = self.clock.now() + HOUR;
        Ok(Fetched {
            credentials: Credentials::new(
                format!("ASIAOURS{n:08}"),
                "our-secret",
                Some("our-session".into()),
                Some(expiration),
                "minting",
            ),
            expiration,
            label: "pod-identity".into(),
        })
    }
}

fn our_cache(clock: TokioClock) -> RefreshingCache<Minting> {
    RefreshingCache::new(
        Minting {
            clock,
            fetches: AtomicUsize::new(0),
        },
        RefreshPolicy::default(),
        Arc::new(clock),
        Arc::new(FastRandom::seeded(7)),
    )
}

/// An uncached provider of other credentials, counting its calls (as an
/// `AssumeRoleProvider` would make one STS call per call).
#[derive(Debug, Clone)]
struct Other {
    credentials: Credentials,
    calls: Arc<AtomicUsize>,
}

impl Other {
    fn new(expiration: SystemTime) -> Self {
        Self {
            credentials: Credentials::new(
                "AKIDOTHER",
                "other-secret",
                None,
                Some(expiration),
                "other",
            ),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl ProvideCredentials for Other {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(self.credentials.clone()))
    }
}

/// Answers with our provider's credentials on the first call, and with
/// `then`'s afterwards: a role switcher, or a chain whose first link failed
/// at start-up.
#[derive(Debug)]
struct Switcher {
    first: RefreshingCache<Minting>,
    then: Other,
    calls: AtomicUsize,
}

impl ProvideCredentials for Switcher {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.first.provide_credentials()
        } else {
            self.then.provide_credentials()
        }
    }
}

// --- the SDK client ----------------------------------------------------------

/// The SDK's time source on tokio's (paused) clock.
#[derive(Debug)]
struct SdkTime(TokioClock);

impl TimeSource for SdkTime {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

/// Records the access key of each request's signature; answers 200.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn last(&self) -> String {
        self.0.lock().unwrap().last().cloned().expect("a request")
    }
}

impl HttpConnector for Recorder {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let auth = request.headers().get("authorization").unwrap_or_default();
        let key = auth
            .split("Credential=")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("unsigned")
            .to_owned();
        self.0.lock().unwrap().push(key);
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            200.try_into().unwrap(),
            aws_sdk_s3::primitives::SdkBody::empty(),
        )))
    }
}

impl HttpClient for Recorder {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn s3(
    http: &Recorder,
    clock: TokioClock,
    provider: SharedCredentialsProvider,
    identity_cache: impl ResolveCachedIdentity + 'static,
) -> aws_sdk_s3::Client {
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .force_path_style(true)
        .http_client(http.clone())
        .time_source(SdkTime(clock))
        .sleep_impl(TokioSleep::new())
        .identity_cache(identity_cache);
    conf.set_credentials_provider(Some(provider));
    aws_sdk_s3::Client::from_conf(conf.build())
}

async fn request(client: &aws_sdk_s3::Client, http: &Recorder) -> String {
    client.head_bucket().bucket("b").send().await.expect("200");
    http.last()
}

/// Lets spawned tasks run without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn own_provider_reads_our_cache_and_shows_a_background_refresh_at_once() {
    let clock = TokioClock::starting_at(epoch());
    let cache = our_cache(clock);
    let ids = cache.identity_cache();
    let http = Recorder::default();
    let client = s3(&http, clock, ids.credentials_provider(), ids);

    for _ in 0..20 {
        assert_eq!(request(&client, &http).await, "ASIAOURS00000001");
    }
    assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 1);

    // At the proactive refresh (15–7.5 min before expiry) the next request
    // is signed with the new credentials; the SDK's lazy cache would keep the
    // first ones until 10 s before their expiry.
    let due = cache.status().next_refresh.unwrap();
    tokio::time::advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(request(&client, &http).await, "ASIAOURS00000002");
    assert_eq!(cache.status().waits, 1, "only the cold start waited");
}

#[tokio::test(start_paused = true)]
async fn a_wrapper_whose_answer_changes_gets_lazy_caching_not_our_cache() {
    let clock = TokioClock::starting_at(epoch());
    let cache = our_cache(clock);
    let ids = cache.identity_cache();
    let switcher = Arc::new(Switcher {
        first: cache.clone(),
        then: Other::new(clock.now() + 3 * HOUR),
        calls: AtomicUsize::new(0),
    });
    let http = Recorder::default();
    // The wrapper is configured where our provider would be, next to our
    // identity cache.
    let client = s3(
        &http,
        clock,
        SharedCredentialsProvider::new(SharedSwitcher(switcher.clone())),
        ids,
    );

    for _ in 0..10 {
        assert_eq!(request(&client, &http).await, "ASIAOURS00000001");
    }
    assert_eq!(switcher.calls.load(Ordering::SeqCst), 1, "cached lazily");

    // When the first answer nears expiry the wrapper is asked again, and its
    // new answer signs the requests.
    tokio::time::advance(HOUR).await;
    assert_eq!(request(&client, &http).await, "AKIDOTHER");
    assert_eq!(request(&client, &http).await, "AKIDOTHER");
    assert_eq!(switcher.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn per_operation_and_per_client_overrides_sign_with_their_own_keys_and_are_cached() {
    let clock = TokioClock::starting_at(epoch());
    let cache = our_cache(clock);
    let ids = cache.identity_cache();
    let http = Recorder::default();
    let client = s3(&http, clock, ids.credentials_provider(), ids);
    assert_eq!(request(&client, &http).await, "ASIAOURS00000001");

    // Per operation: one shared provider set on each operation's override.
    // The SDK gives such an operation its own short-lived lazy identity cache
    // (it serves the operation's retries), so the provider is asked once per
    // operation, exactly as without our cache, and always signs its own
    // requests: our credentials never leak into an override.
    let other = Other::new(clock.now() + HOUR);
    let shared = SharedCredentialsProvider::new(other.clone());
    for n in 1..=10 {
        let mut overrides = aws_sdk_s3::Config::builder();
        overrides.set_credentials_provider(Some(shared.clone()));
        client
            .head_bucket()
            .bucket("b")
            .customize()
            .config_override(overrides)
            .send()
            .await
            .expect("200");
        assert_eq!(http.last(), "AKIDOTHER");
        assert_eq!(other.calls(), n, "the SDK's per-operation cache");
    }
    // The client's own requests still use our credentials.
    assert_eq!(request(&client, &http).await, "ASIAOURS00000001");

    // Per client: a client derived from ours with another provider keeps our
    // identity cache, which must cache that provider the SDK's way: once,
    // not once per request.
    let per_client_other = Other::new(clock.now() + HOUR);
    let derived = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .credentials_provider(per_client_other.clone())
            .build(),
    );
    for _ in 0..10 {
        assert_eq!(request(&derived, &http).await, "AKIDOTHER");
    }
    assert_eq!(per_client_other.calls(), 1);
    assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 1);
}

#[derive(Debug)]
struct SharedSwitcher(Arc<Switcher>);

impl ProvideCredentials for SharedSwitcher {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}
