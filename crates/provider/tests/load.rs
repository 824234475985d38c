//! Load: 1,000 concurrent callers across several refreshes, on the default
//! refresh policy.
//!
//! tokio's paused clock only exists on the current-thread runtime, so the
//! simulated-time run is the one that checks exact counts: no errors, no
//! caller ever waits while valid credentials exist (`status().waits` stays
//! at the single cold-start wait), and exactly one fetch per refresh. The
//! 2-worker multi-thread runs use real time with credentials that live 2 s,
//! so on a loaded machine a refresh may land late; they assert only what
//! holds under any scheduling: no errors, never two fetches at once, one
//! agent request per fetch, every served key came from a fetch.

mod common;

use common::{ScriptedSource, Step};
use eks_pod_identity_provider::context::TokioClock;
use eks_pod_identity_provider::test_util::FixedRandom;
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{PodIdentityProvider, ProviderContext, RefreshPolicy};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const TASKS: usize = 1000;

#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    errors: AtomicU64,
    keys: Mutex<HashSet<String>>,
}

#[tokio::test(start_paused = true)]
async fn thousand_callers_simulated_time() {
    let clock = TokioClock::starting_at(common::epoch());
    // 4 s credentials: advisory window 2 s, mandatory window 1 s (a quarter
    // of the lifetime, on the default policy); with the draw fixed
    // mid-window the refresh runs 1.5 s before expiry.
    let source = ScriptedSource::new(clock, Step::Ok(Duration::from_secs(4)));
    let cache = RefreshingCache::new(
        source.clone(),
        RefreshPolicy::default(),
        Arc::new(clock),
        Arc::new(FixedRandom(0.5)),
    );
    cache.get().await.unwrap();
    let seen = Arc::new(Seen::default());
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let cache = cache.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                // Spread the callers over the first 100 ms, then every 100 ms for 10 s.
                tokio::time::sleep(Duration::from_micros(100 * i as u64)).await;
                for _ in 0..100 {
                    seen.calls.fetch_add(1, Ordering::Relaxed);
                    match cache.get().await {
                        Ok(c) => {
                            seen.keys
                                .lock()
                                .unwrap()
                                .insert(c.access_key_id().to_owned());
                        }
                        Err(_) => {
                            seen.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let status = cache.status();
    let keys = seen.keys.lock().unwrap().len();
    let calls = seen.calls.load(Ordering::Relaxed);
    assert_eq!(seen.errors.load(Ordering::Relaxed), 0);
    assert_eq!(status.waits, 1, "only the cold start waited: {status:?}");
    assert_eq!(source.calls() as u64, status.fetches);
    assert_eq!(status.failures, 0);
    // One fetch per 2.5 s refresh over ~10 s, and every fetch was a refresh
    // whose credentials callers then used.
    assert!(
        (4..=6).contains(&source.calls()),
        "{} fetches",
        source.calls()
    );
    assert_eq!(keys, source.calls(), "every fetch served callers");
    assert_eq!(source.0.max_in_flight.load(Ordering::SeqCst), 1);
    println!(
        "load (simulated, current-thread): {TASKS} tasks, {calls} calls over 10 s simulated, {} fetches = {} refreshes + cold start, {} waits, 0 errors",
        status.fetches,
        status.fetches - 1,
        status.waits
    );
}

/// Runs `TASKS` callers on the current runtime for `run`, calling every 5 ms.
async fn hammer<F, Fut>(run: Duration, call: F) -> Arc<Seen>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let seen = Arc::new(Seen::default());
    let until = tokio::time::Instant::now() + run;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let call = call.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    seen.calls.fetch_add(1, Ordering::Relaxed);
                    match call().await {
                        Some(key) => {
                            seen.keys.lock().unwrap().insert(key);
                        }
                        None => {
                            seen.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_callers_two_workers_real_time_scripted() {
    let clock = TokioClock::starting_at(SystemTime::now());
    let source = ScriptedSource::new(clock, Step::Ok(Duration::from_secs(2)));
    source.set_delay(Duration::from_millis(5));
    let cache = RefreshingCache::new(
        source.clone(),
        RefreshPolicy::default(),
        Arc::new(clock),
        Arc::new(FixedRandom(0.999)),
    );
    cache.get().await.unwrap();
    let c = cache.clone();
    let seen = hammer(Duration::from_secs(3), move || {
        let c = c.clone();
        async move { c.get().await.ok().map(|c| c.access_key_id().to_owned()) }
    })
    .await;
    let status = cache.status();
    assert_eq!(seen.errors.load(Ordering::Relaxed), 0);
    assert_eq!(status.failures, 0);
    assert_eq!(source.0.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(source.calls() as u64, status.fetches);
    // 2 s credentials over 3 s: at least one refresh happened.
    assert!(source.calls() >= 2, "{} fetches", source.calls());
    let keys = seen.keys.lock().unwrap().len();
    assert!(keys >= 1 && keys <= source.calls(), "{keys} keys");
    println!(
        "load (2 workers, real time, scripted source): {TASKS} tasks, {} calls in 3 s, {} fetches, {} waits, 0 errors",
        seen.calls.load(Ordering::Relaxed),
        status.fetches,
        status.waits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_callers_two_workers_real_time_http_agent() {
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};
    let server = MockServer::start().await;
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    Mock::given(wiremock::matchers::path("/v1/credentials"))
        .respond_with(move |_: &Request| {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "AccessKeyId": format!("ASIALOAD{i:08}"),
                "SecretAccessKey": common::SECRET,
                "Token": common::SESSION,
                "AccountId": "123456789012",
                "Expiration": eks_pod_identity_provider::protocol::rfc3339::format(SystemTime::now() + Duration::from_secs(2)),
            }))
        })
        .mount(&server)
        .await;
    let provider = PodIdentityProvider::builder()
        .context(
            ProviderContext::new()
                .with_env(MapEnv::default())
                .with_random(FixedRandom(0.999)),
        )
        .endpoint(format!("{}/v1/credentials", server.uri()))
        .token("load-test-token")
        .build()
        .unwrap();
    provider.credentials().await.unwrap();
    let p = provider.clone();
    let seen = hammer(Duration::from_secs(3), move || {
        let p = p.clone();
        async move {
            p.credentials()
                .await
                .ok()
                .map(|c| c.access_key_id().to_owned())
        }
    })
    .await;
    // A background refresh may be in flight when the callers stop: its fetch
    // is counted before its request reaches the agent. Read both at a
    // quiescent moment (no fetch in flight, none started while reading).
    let mut settled = None;
    for _ in 0..500 {
        let before = provider.status();
        if before.fetches == before.successes + before.failures {
            let requests = server.received_requests().await.unwrap().len();
            if provider.status().fetches == before.fetches {
                settled = Some((before, requests));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, requests) = settled.expect("no quiescent moment in 5 s");
    assert_eq!(seen.errors.load(Ordering::Relaxed), 0);
    assert_eq!(status.failures, 0);
    assert_eq!(requests as u64, status.fetches, "one request per fetch");
    assert!(requests >= 2, "{requests} requests: at least one refresh");
    let keys = seen.keys.lock().unwrap().len();
    assert!(keys >= 1 && keys <= requests, "{keys} keys");
    println!(
        "load (2 workers, real time, HTTP agent): {TASKS} tasks, {} calls in 3 s, {requests} agent requests = {} fetches, {} waits, 0 errors",
        seen.calls.load(Ordering::Relaxed),
        status.fetches,
        status.waits
    );
}
