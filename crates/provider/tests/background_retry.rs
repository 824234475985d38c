//! The background refresh against a failing source, on default settings:
//! one attempt per scheduled retry, and retries paced by the credentials'
//! own time scale, so a failing agent is not hammered before expiry.

mod common;

use common::*;
use eks_pod_identity_provider::context::{Clock, TokioClock};
use eks_pod_identity_provider::{ErrorKind, RefreshPolicy};
use std::time::Duration;

/// Primes a cache with credentials living `lifetime`, then fails every fetch
/// and lets paused time run to one second past their expiry, with a caller
/// every 100 ms. Returns (fetches after priming, of which background ones,
/// cached credentials were served to every caller until expiry).
async fn failing_after_priming(lifetime: Duration) -> (usize, usize, bool) {
    let clock = TokioClock::starting_at(epoch());
    let source = ScriptedSource::new(clock, Step::Ok(lifetime));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.expect("primed");
    let expiry = first.expiry().unwrap();
    assert_eq!((source.calls(), source.once_calls()), (1, 0));
    source.set_default(Step::Fail(ErrorKind::ServerError));

    // A caller every 100 ms until expiry: each is served the cached
    // credentials (static stability), none starts a fetch of its own.
    let mut served_cached = true;
    while clock.now() + Duration::from_millis(100) < expiry {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match cache.get().await {
            Ok(c) => served_cached &= c.access_key_id() == first.access_key_id(),
            Err(_) => served_cached = false,
        }
    }
    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + (expiry.duration_since(clock.now()).unwrap_or_default() + Duration::from_secs(1)),
    )
    .await;
    (source.calls() - 1, source.once_calls(), served_cached)
}

/// Cached credentials are served to every caller until expiry, the
/// background retried, and the fetches after priming fall in `bounds`.
async fn assert_paced(lifetime: Duration, bounds: std::ops::RangeInclusive<usize>) {
    let (fetches, background, served_cached) = failing_after_priming(lifetime).await;
    assert!(served_cached, "cached credentials served until expiry");
    // Callers do not fetch once each: the background retries, and a caller
    // only takes over a retry that is due when it arrives.
    assert!(background >= 1, "the background refresh retried");
    assert!(
        bounds.contains(&fetches),
        "{fetches} fetches ({background} background) for {lifetime:?} credentials, want {bounds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn twenty_second_credentials_get_a_few_single_attempt_retries_before_expiry() {
    // Several tries before expiry (a recovering agent is caught in time), but
    // paced by the 5 s mandatory window; the old schedule (full jitter under a
    // quarter of the remaining validity) made 24 fetches here, 200 callers.
    assert_paced(Duration::from_secs(20), 3..=12).await;
}

#[tokio::test(start_paused = true)]
async fn hour_long_credentials_retry_every_half_minute_and_more() {
    // The refresh starts inside the 15 min advisory window; retries step from
    // 15–30 s up to 5 min and halve towards expiry, never under 7.5 s; the
    // old schedule made 53 fetches here, with 36,000 callers.
    assert_paced(HOUR, 5..=20).await;
}

#[tokio::test(start_paused = true)]
async fn callers_waiting_for_credentials_still_get_every_attempt() {
    // Nothing cached: the caller's fetch is not a background one, so the
    // source's full retry policy applies (`fetch`, not `fetch_once`).
    let clock = TokioClock::starting_at(epoch());
    let source = ScriptedSource::new(clock, Step::Fail(ErrorKind::ServerError));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let err = cache.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerError);
    assert_eq!((source.calls(), source.once_calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn fetches_after_expiry_get_every_attempt_again() {
    // Primed, then failing past expiry: once nothing valid is cached, every
    // fetch (a caller's or the background's) uses `fetch`, the source's
    // whole retry policy, never the single attempt of `fetch_once`.
    let clock = TokioClock::starting_at(epoch());
    let source = ScriptedSource::new(clock, Step::Ok(Duration::from_secs(20)));
    let cache = cache(source.clone(), RefreshPolicy::default());
    let first = cache.get().await.expect("primed");
    let expiry = first.expiry().unwrap();
    source.set_default(Step::Fail(ErrorKind::ServerError));
    while clock.now() < expiry {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = cache.get().await;
    }
    let (calls, once) = (source.calls(), source.once_calls());
    assert!(once >= 1, "retries before expiry were single attempts");
    // No caller for 10 min: only the background task fetches (its retries
    // keep going after expiry, at most 5 min apart).
    tokio::time::sleep(Duration::from_secs(600)).await;
    let background = source.calls() - calls;
    assert!(background >= 1, "the background kept retrying after expiry");
    // Callers again.
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(cache.get().await.is_err(), "nothing valid is ever served");
    }
    assert!(
        source.calls() > calls + background,
        "callers kept asking after expiry"
    );
    assert_eq!(
        source.once_calls(),
        once,
        "no single-attempt fetch after expiry"
    );
}
