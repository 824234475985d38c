//! The refreshing cache under paused tokio time, with a scripted source.

mod common;

use common::*;
use eks_pod_identity_provider::context::{Clock, TokioClock};
use eks_pod_identity_provider::{ErrorChain, ErrorKind, RefreshPolicy};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn setup(default: Step) -> (ScriptedSource, TokioClock) {
    let clock = TokioClock::starting_at(epoch());
    (ScriptedSource::new(clock, default), clock)
}

/// Lets spawned tasks run without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn cold_cache_100_callers_share_one_fetch() {
    let (source, _) = setup(Step::Ok(HOUR));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let calls = (0..100).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await })
    });
    let results = futures_util::future::join_all(calls).await;
    let keys: std::collections::HashSet<_> = results
        .into_iter()
        .map(|r| r.unwrap().unwrap().access_key_id().to_owned())
        .collect();
    assert_eq!(source.calls(), 1, "exactly one fetch for 100 cold callers");
    assert_eq!(keys.len(), 1, "every caller got the same credentials");
    assert_eq!(source.0.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn failing_fetch_is_shared_by_all_waiters() {
    let (source, _) = setup(Step::Fail(ErrorKind::ServerError));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let calls = (0..100).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await })
    });
    let results = futures_util::future::join_all(calls).await;
    for r in results {
        let err = r.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerError);
    }
    assert_eq!(
        source.calls(),
        1,
        "one fetch, its error shared, no retry per waiter"
    );
    let status = cache.status();
    assert_eq!(status.failures, 1);
    assert_eq!(status.last_error_kind, Some(ErrorKind::ServerError));
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_before_expiry_without_waiting_callers() {
    let (source, clock) = setup(Step::Ok(HOUR));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.unwrap();
    let exp = first.expiry().unwrap();
    let next = cache.status().next_refresh.unwrap();
    let a = RefreshPolicy::default().advisory_window_for(HOUR);
    assert!(
        next >= exp - a && next <= exp - a / 2,
        "refresh scheduled inside [exp-A, exp-A/2]"
    );
    assert_eq!(cache.status().waits, 1);

    // Keep calling every 10 s across the refresh instant: nobody waits.
    let mut seen_new = false;
    while clock.now() < exp - Duration::from_secs(120) {
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        let c = cache
            .cached()
            .expect("valid credentials are served without waiting");
        seen_new |= c.access_key_id() != first.access_key_id();
        let _ = cache.get().await.unwrap();
    }
    assert!(
        seen_new,
        "background task replaced the credentials before expiry"
    );
    assert_eq!(source.calls(), 2);
    assert_eq!(cache.status().waits, 1, "only the cold start waited");
}

#[tokio::test(start_paused = true)]
async fn refresh_failure_keeps_serving_valid_credentials_and_recovers() {
    let (source, clock) = setup(Step::Ok(HOUR));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.unwrap();
    let exp = first.expiry().unwrap();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    // Walk through the advisory window to the start of the mandatory window.
    while clock.now() < exp - Duration::from_secs(60) {
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
        let c = cache
            .get()
            .await
            .expect("valid cached credentials survive failures");
        assert_eq!(c.access_key_id(), first.access_key_id());
        assert!(clock.now() < exp);
    }
    let failures = cache.status().failures;
    assert!(
        failures >= 4,
        "several retries before expiry, got {failures}"
    );
    assert!(cache.status().served_cached_after_failure > 0);
    // Agent recovers: the next retry, at most half the remaining validity
    // away, brings fresh credentials before expiry.
    source.set_default(Step::Ok(HOUR));
    let mut c = cache.get().await.unwrap();
    while c.access_key_id() == first.access_key_id() && clock.now() < exp {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        c = cache.get().await.unwrap();
    }
    assert_ne!(c.access_key_id(), first.access_key_id());
    assert!(clock.now() < exp, "recovered before expiry");
    assert_eq!(cache.status().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn expired_credentials_are_never_served() {
    let (source, clock) = setup(Step::Ok(HOUR));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.unwrap();
    source.set_default(Step::Fail(ErrorKind::Connect));
    tokio::time::advance(HOUR + Duration::from_secs(1)).await;
    settle().await;
    assert!(clock.now() > first.expiry().unwrap());
    assert!(cache.cached().is_none());
    let err = cache.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
}

#[tokio::test(start_paused = true)]
async fn credentials_arriving_expired_are_refetched_within_the_same_fetch() {
    let (source, _) = setup(Step::Ok(HOUR));
    // The first answer is already expired: a cold caller still gets the
    // retried, valid credentials.
    source.push(Step::Ok(Duration::ZERO));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let got = cache.get().await.expect("the retried credentials");
    assert_eq!(source.calls(), 2, "one retry inside the fetch");
    assert_eq!(got.access_key_id(), "ASIA000000000002");
    let status = cache.status();
    assert_eq!(
        (status.fetches, status.successes, status.failures),
        (1, 1, 0)
    );

    // Always expired: the fetch fails after the usual 3 attempts, typed.
    let (source, _) = setup(Step::Ok(Duration::ZERO));
    let cache = common::cache(source.clone(), RefreshPolicy::default());
    let err = cache.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExpiresTooSoon);
    assert!(
        ErrorChain(&err).to_string().contains("already expired"),
        "{err}"
    );
    assert_eq!(source.calls(), 3);
    assert_eq!(cache.status().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn mandatory_window_waiters_share_one_fetch() {
    let (source, clock) = setup(Step::Ok(HOUR));
    // Background refresh fails so the cache reaches the mandatory window.
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.unwrap();
    let exp = first.expiry().unwrap();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    tokio::time::advance(exp.duration_since(clock.now()).unwrap() - Duration::from_secs(30)).await;
    settle().await;
    // Let the failing background fetch (50 ms) finish.
    tokio::time::advance(Duration::from_millis(60)).await;
    settle().await;
    // Inside the mandatory window; the next background retry is scheduled.
    let retry_at = cache.status().next_refresh.unwrap();
    assert!(retry_at > clock.now() && retry_at < exp);
    source.set_default(Step::Ok(HOUR));
    let before = source.calls();
    let waits = cache.status().waits;
    // 50 callers arrive exactly when the retry is due: they and the
    // background task share one fetch.
    tokio::time::advance(retry_at.duration_since(clock.now()).unwrap()).await;
    let calls = (0..50).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await.unwrap() })
    });
    let got = futures_util::future::join_all(calls).await;
    assert!(got
        .iter()
        .all(|c| c.as_ref().unwrap().expiry().unwrap() > exp));
    assert_eq!(
        source.calls() - before,
        1,
        "exactly one fetch for 50 waiters"
    );
    assert!(cache.status().waits > waits, "callers did wait for it");
    assert_eq!(source.0.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_the_background_task() {
    let (source, _) = setup(Step::Ok(HOUR));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let clone = cache.clone();
    cache.get().await.unwrap();
    let watch = cache.task_watch();
    settle().await;
    assert!(watch.is_running());
    drop(cache);
    settle().await;
    assert!(watch.is_running(), "a clone is still alive");
    drop(clone);
    settle().await;
    assert!(!watch.is_running(), "task ended with the last handle");
    // And it never fetched again.
    tokio::time::advance(HOUR * 2).await;
    settle().await;
    assert_eq!(source.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_multi_thread_runtime() {
    let (source, _) = setup(Step::Ok(HOUR));
    source.set_delay(Duration::from_millis(20));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let calls = (0..64).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await.map(|c| c.access_key_id().to_owned()) })
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(source.calls(), 1);
    let watch = cache.task_watch();
    drop(cache);
    for _ in 0..200 {
        if !watch.is_running() {
            break;
        }
        tokio::task::yield_now().await;
        std::thread::yield_now();
    }
    assert!(!watch.is_running());
}

/// Default policy, lifetimes from 4 s to 6 h: callers every 1/20 of the
/// lifetime over ten lifetimes never fail and never wait after the cold
/// start, and the source is asked about once per lifetime (the refresh
/// runs between `A/2` and `A` before expiry: one to two fetches per
/// lifetime).
#[tokio::test(start_paused = true)]
async fn default_policy_serves_every_lifetime_with_one_fetch_per_lifetime() {
    for secs in [4u64, 20, 90, 15 * 60, 6 * 3600] {
        let lifetime = Duration::from_secs(secs);
        let (source, clock) = setup(Step::Ok(lifetime));
        // An instant fetch: the test's time steps are coarser than a fetch.
        source.set_delay(Duration::ZERO);
        let cache = cache(source.clone(), RefreshPolicy::default());
        let end = clock.now() + lifetime * 10;
        let mut failed = 0;
        let mut calls = 0;
        while clock.now() < end {
            calls += 1;
            if cache.get().await.is_err() {
                failed += 1;
            }
            tokio::time::advance(lifetime / 20).await;
            settle().await;
        }
        let fetches = source.calls();
        assert_eq!(failed, 0, "{secs} s: {failed} of {calls} calls failed");
        assert_eq!(
            cache.status().waits,
            1,
            "{secs} s: only the cold start waited"
        );
        assert_eq!(cache.status().failures, 0, "{secs} s");
        assert!(
            (10..=21).contains(&fetches),
            "{secs} s: {fetches} fetches over 10 lifetimes"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn short_lifetimes_rotate_once_per_lifetime() {
    let (source, clock) = setup(Step::Ok(Duration::from_secs(300)));
    let cache = cache(source.clone(), RefreshPolicy::default());
    cache.get().await.unwrap();
    let end = clock.now() + Duration::from_secs(3000);
    while clock.now() < end {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert!(cache.cached().is_some(), "never a gap");
    }
    // 3000 s / refresh every 150–225 s → 14..=21 fetches.
    let n = source.calls();
    assert!((14..=21).contains(&n), "{n} fetches");
    assert_eq!(cache.status().waits, 1);
}

/// An agent that fails at once (a 404 for a missing association) with
/// nothing cached: callers share the last error during a jittered
/// exponential backoff capped at 5 s instead of asking again, and the
/// backoff resets on success.
#[tokio::test(start_paused = true)]
async fn a_fast_failing_source_is_asked_at_a_bounded_rate() {
    let (source, clock) = setup(Step::Fail(ErrorKind::ClientError));
    source.set_delay(Duration::ZERO);
    let cache = cache(source.clone(), RefreshPolicy::default());
    // One caller every 10 ms for 60 s: 6,000 calls.
    let start = clock.now();
    let mut calls = 0;
    while clock.now() < start + Duration::from_secs(60) {
        let err = cache.get().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ClientError);
        calls += 1;
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let fetches = source.calls();
    // Backoff 0.5–1 s, 1–2 s, 2–4 s, then 2.5–5 s: at most 4 + 57/2.5.
    assert!(
        (12..=27).contains(&fetches),
        "{fetches} source requests for {calls} calls"
    );
    assert_eq!(
        cache.status().waits as usize,
        fetches,
        "only fetching callers waited"
    );

    // A success resets the backoff (it grows with consecutive failures).
    assert!(cache.status().consecutive_failures >= 10);
    source.set_default(Step::Ok(HOUR));
    tokio::time::advance(Duration::from_secs(5)).await;
    cache.get().await.expect("the agent recovered");
    assert_eq!(cache.status().consecutive_failures, 0);
}
