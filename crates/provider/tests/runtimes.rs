//! The cache across runtimes and through fetches that never finish normally:
//! a runtime dropped mid-fetch, a task that is never polled again, a source
//! that panics, several runtimes one after the other, no runtime at all.
//!
//! Credential time comes from a manual clock; tokio time is paused wherever
//! a runtime has to wait, so nothing sleeps.

use aws_credential_types::Credentials;
use eks_pod_identity_provider::context::Clock;
use eks_pod_identity_provider::test_util::{FixedRandom, ManualClock};
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{CredentialSource, Fetched};
use eks_pod_identity_provider::{ErrorChain, ErrorKind, FetchAborted, RefreshError, RefreshPolicy};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

const HOUR: Duration = Duration::from_secs(3600);

/// The manual clock every case starts from.
fn manual_clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

/// What one fetch does.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Credentials valid this long.
    Ok(Duration),
    /// Never completes.
    Hang,
    /// Panics.
    Panic,
}

#[derive(Debug)]
struct Source {
    clock: ManualClock,
    script: Mutex<VecDeque<Act>>,
    /// What every fetch does once the script is used up.
    then: Mutex<Act>,
    calls: AtomicUsize,
}

impl Source {
    fn new(clock: &ManualClock, script: &[Act]) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            script: Mutex::new(script.iter().copied().collect()),
            then: Mutex::new(Act::Ok(HOUR)),
            calls: AtomicUsize::new(0),
        })
    }
}

#[derive(Debug, Clone)]
struct Shared(Arc<Source>);

impl CredentialSource for Shared {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let n = self.0.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let act = self
            .0
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| *self.0.then.lock().unwrap());
        match act {
            Act::Ok(valid_for) => {
                let expiration = self.0.clock.now() + valid_for;
                Ok(Fetched {
                    credentials: Credentials::new(
                        format!("ASIARUNTIME{n:04}"),
                        "secret",
                        None,
                        Some(expiration),
                        "test",
                    ),
                    expiration,
                    label: "test".into(),
                })
            }
            Act::Hang => std::future::pending().await,
            Act::Panic => panic!("the test source panics on purpose"),
        }
    }
}

fn cache(source: &Arc<Source>) -> RefreshingCache<Shared> {
    RefreshingCache::new(
        Shared(source.clone()),
        RefreshPolicy::default(),
        Arc::new(source.clock.clone()),
        Arc::new(FixedRandom(0.5)),
    )
}

fn current_thread(paused: bool) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if paused {
        b.start_paused(true);
    }
    b.build().unwrap()
}

/// A cache whose first fetch hangs, started on a runtime that is then left
/// undriven (returned, so it stays alive): the stalled-task cases.
fn stalled_fetch() -> (
    ManualClock,
    Arc<Source>,
    RefreshingCache<Shared>,
    tokio::runtime::Runtime,
) {
    let clock = manual_clock();
    let source = Source::new(&clock, &[Act::Hang]);
    let cache = cache(&source);
    let stuck = start_a_fetch_on_a_runtime_left_undriven(&cache);
    (clock, source, cache, stuck)
}

/// Starts a fetch on a current-thread runtime that is then never driven
/// again (kept alive, not dropped): the fetch stalls where the source left it.
fn start_a_fetch_on_a_runtime_left_undriven(
    cache: &RefreshingCache<Shared>,
) -> tokio::runtime::Runtime {
    let stuck = current_thread(false);
    stuck.block_on(async {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await });
        settle().await;
    });
    stuck
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn aborted(err: &RefreshError) -> &FetchAborted {
    err.source_error()
        .downcast_ref::<FetchAborted>()
        .unwrap_or_else(|| panic!("not a FetchAborted: {err:?}"))
}

/// A runtime dropped while its fetch is in flight: the flight is cleared,
/// the failure is in `status()`, and the next caller (on another runtime)
/// fetches again instead of getting `Internal` forever.
#[test]
fn a_runtime_dropped_mid_fetch_does_not_poison_the_cache() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[Act::Hang]);
    let cache = cache(&source);
    let first = current_thread(false);
    first.block_on(async {
        let c = cache.clone();
        tokio::spawn(async move { c.get().await });
        settle().await;
    });
    assert_eq!(source.calls.load(Ordering::SeqCst), 1, "the fetch started");
    drop(first);
    let status = cache.status();
    assert_eq!(status.failures, 1, "the cancelled fetch is recorded");
    assert_eq!(status.last_error_kind, Some(ErrorKind::Internal));

    let second = current_thread(true);
    let got = second
        .block_on(cache.get())
        .expect("a new fetch on the new runtime");
    assert_eq!(got.access_key_id(), "ASIARUNTIME0002");
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.status().consecutive_failures, 0);
}

/// A fetch whose runtime is alive but never driven again: a waiter gives up
/// after the fetch deadline plus a small margin, and the next caller starts
/// a new fetch.
#[test]
fn a_waiter_never_waits_past_the_deadline_on_a_task_that_is_never_polled() {
    let (_clock, source, cache, stuck) = stalled_fetch();
    // `stuck` stays alive but nobody drives it any more.
    let other = current_thread(true);
    other.block_on(async {
        let started = tokio::time::Instant::now();
        let err = cache.get().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(matches!(aborted(&err), FetchAborted::Stalled { .. }));
        // The default fetch deadline is 12 s; the margin is small.
        assert!(waited >= Duration::from_secs(12), "{waited:?}");
        assert!(waited <= Duration::from_secs(14), "{waited:?}");

        // The stalled fetch no longer holds the slot.
        let got = cache.get().await.expect("a new fetch");
        assert_eq!(got.access_key_id(), "ASIARUNTIME0002");
    });
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    drop(stuck);
}

/// A stalled fetch older than its deadline is replaced at once: the next
/// caller does not even wait for it.
#[test]
fn a_fetch_older_than_its_deadline_is_replaced_without_waiting() {
    let (clock, _source, cache, stuck) = stalled_fetch();
    clock.advance(Duration::from_secs(60));
    let other = current_thread(true);
    other.block_on(async {
        let started = tokio::time::Instant::now();
        cache.get().await.expect("a new fetch");
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "did not wait on the old one"
        );
    });
    drop(stuck);
}

/// A panicking source: a typed error, the failure recorded, and the cache
/// fetches again once the error backoff has passed.
#[tokio::test(start_paused = true)]
async fn a_panicking_source_gives_a_typed_error_and_no_stuck_cache() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[Act::Panic]);
    let cache = cache(&source);
    let err = cache.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(
        matches!(
            aborted(&err),
            FetchAborted::Panicked {
                source_name: "test"
            }
        ),
        "{err:?}"
    );
    assert!(ErrorChain(&err).to_string().contains("panicked"), "{err}");
    assert_eq!(cache.status().failures, 1);
    // Shared for the backoff (at most 1 s after a first failure), then fetched again.
    clock.advance(Duration::from_secs(1));
    let got = cache.get().await.expect("fetched again after the panic");
    assert_eq!(got.access_key_id(), "ASIARUNTIME0002");
}

static CLOCK: OnceLock<ManualClock> = OnceLock::new();
static SOURCE: OnceLock<Arc<Source>> = OnceLock::new();
static CACHE: OnceLock<RefreshingCache<Shared>> = OnceLock::new();

fn static_cache() -> &'static RefreshingCache<Shared> {
    CACHE.get_or_init(|| {
        let clock = CLOCK.get_or_init(manual_clock);
        cache(SOURCE.get_or_init(|| Source::new(clock, &[])))
    })
}

/// A `static` cache used from one runtime per phase, as `#[tokio::test]`s
/// sharing a provider do: when a runtime ends, the background refresh
/// restarts on the next one and keeps refreshing before callers would wait;
/// current-thread and multi-thread alike.
#[test]
fn a_static_cache_keeps_refreshing_across_runtimes() {
    let cache = static_cache();
    let clock = CLOCK.get().unwrap();
    let source = SOURCE.get().unwrap();
    let watch = cache.task_watch();

    let first = current_thread(true);
    let cold = first.block_on(async {
        let c = cache.get().await.unwrap();
        assert!(watch.is_running());
        c
    });
    drop(first);
    assert!(!watch.is_running(), "the task ended with its runtime");

    // Second runtime: the hot path restarts the task here, and the task
    // refreshes proactively when the refresh instant comes.
    let second = current_thread(true);
    second.block_on(async {
        assert_eq!(
            cache.cached().unwrap().access_key_id(),
            cold.access_key_id()
        );
        assert!(watch.is_running(), "restarted on this runtime");
        let due = cache.status().next_refresh.unwrap();
        clock.advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1));
        tokio::time::advance(HOUR).await;
        settle().await;
    });
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "refreshed in the background"
    );
    let refreshed = cache.cached().expect("fresh credentials, no wait");
    assert_ne!(refreshed.access_key_id(), cold.access_key_id());
    drop(second);
    assert!(!watch.is_running());

    // Third runtime, multi-thread: the same again.
    let third = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    third.block_on(async {
        assert_eq!(
            cache.get().await.unwrap().access_key_id(),
            refreshed.access_key_id()
        );
        assert!(watch.is_running());
    });
    drop(third);
    assert!(!watch.is_running());
    let status = cache.status();
    assert_eq!(status.waits, 1, "only the cold start waited: {status:?}");
    assert_eq!(status.failures, 0);
}

/// Outside any runtime: valid cached credentials are served; otherwise a
/// typed error, never a panic.
#[test]
fn outside_a_runtime_is_a_typed_error_not_a_panic() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[]);
    let cache = cache(&source);
    let err = poll_once(cache.get()).expect("ready at once").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRuntime);
    assert!(
        ErrorChain(&err).to_string().contains("tokio runtime"),
        "{err}"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);

    current_thread(false).block_on(cache.get()).unwrap();
    let got = poll_once(cache.get()).expect("ready at once").unwrap();
    assert_eq!(got.access_key_id(), "ASIARUNTIME0001");
}

fn poll_once<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// A watch taken before the first fetch follows the task that starts later.
#[tokio::test(start_paused = true)]
async fn a_task_watch_taken_before_the_first_fetch_follows_the_task() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[]);
    let cache = cache(&source);
    let watch = cache.task_watch();
    assert!(!watch.is_running());
    cache.get().await.unwrap();
    assert!(
        watch.is_running(),
        "the watch sees the task started after it"
    );
    drop(cache);
    settle().await;
    assert!(!watch.is_running());
}

/// A source that keeps panicking once credentials are cached: the
/// background task retries with its backoff, never in a loop, and the
/// cached credentials are served until they expire, never after.
#[tokio::test(start_paused = true)]
async fn a_source_that_keeps_panicking_is_retried_with_backoff_not_in_a_loop() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[Act::Ok(Duration::from_secs(20))]);
    *source.then.lock().unwrap() = Act::Panic;
    let cache = cache(&source);
    let first = cache.get().await.unwrap();
    let expiry = first.expiry().unwrap();
    let mut served_after_expiry = 0;
    for _ in 0..600 {
        clock.advance(Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(100)).await;
        settle().await;
        if let Ok(c) = cache.get().await {
            if clock.now() >= expiry {
                served_after_expiry += 1;
            }
            assert_eq!(c.access_key_id(), first.access_key_id());
        }
    }
    assert_eq!(served_after_expiry, 0);
    let calls = source.calls.load(Ordering::SeqCst);
    // 60 s: a few background retries before expiry, then callers every
    // 100 ms limited by the error backoff (0.5 s growing to 2.5–5 s).
    assert!((5..=60).contains(&calls), "{calls} fetches in 60 s");
    let status = cache.status();
    assert_eq!(status.failures as usize, calls - 1);
    assert_eq!(status.last_error_kind, Some(ErrorKind::Internal));
}

/// A runtime that ends before it ever polls the background task it was
/// handed (a `block_on` answered by the hot path returns at once): the task
/// is not left marked alive, so the next runtime restarts it and it
/// refreshes before callers would wait.
#[test]
fn a_task_dropped_before_its_first_poll_is_restarted_on_the_next_runtime() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[]);
    let cache = cache(&source);
    let watch = cache.task_watch();

    let first = current_thread(true);
    let cold = first.block_on(cache.get()).unwrap();
    drop(first);
    assert!(!watch.is_running());

    // The hot path starts a task on this runtime and returns before the
    // runtime gets to poll it.
    let second = current_thread(true);
    second.block_on(async { cache.cached().expect("cached") });
    drop(second);
    assert!(
        !watch.is_running(),
        "a task dropped unpolled with its runtime is not alive"
    );

    let third = current_thread(true);
    third.block_on(async {
        cache.cached().expect("cached");
        let due = cache.status().next_refresh.unwrap();
        clock.advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(1));
        tokio::time::advance(HOUR).await;
        settle().await;
    });
    drop(third);
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "refreshed in the background on the third runtime"
    );
    let refreshed = cache.cached().expect("fresh credentials, no wait");
    assert_ne!(refreshed.access_key_id(), cold.access_key_id());
    assert_eq!(cache.status().waits, 1, "only the cold start waited");
}

/// A stalled fetch that ends after a newer fetch has succeeded (here: its
/// runtime is dropped, which cancels it) says nothing about the cache any
/// more: it neither counts as a consecutive failure nor pulls the next
/// refresh forward, so no extra fetch follows.
#[test]
fn a_superseded_fetch_ending_late_does_not_disturb_the_schedule() {
    let (clock, source, cache, stuck) = stalled_fetch();
    clock.advance(Duration::from_secs(60));
    let other = current_thread(true);
    other.block_on(async {
        cache
            .get()
            .await
            .expect("a new fetch replaces the stalled one")
    });
    let before = cache.status();
    assert_eq!(before.consecutive_failures, 0);

    drop(stuck); // cancels the old, superseded fetch
    let after = cache.status();
    assert_eq!(after.consecutive_failures, 0, "{after:?}");
    assert_eq!(after.next_refresh, before.next_refresh, "{after:?}");

    other.block_on(async {
        clock.advance(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
    });
    assert_eq!(source.calls.load(Ordering::SeqCst), 2, "no extra fetch");
}

/// A runtime that stays alive but is no longer driven (a start-up
/// current-thread runtime kept in a struct) holds the background task:
/// callers on another runtime restart it from the hot path once it is
/// overdue, so the refresh still lands before anyone waits.
#[test]
fn a_task_on_an_undriven_runtime_is_restarted_from_the_hot_path() {
    let clock = manual_clock();
    let source = Source::new(&clock, &[]);
    let cache = cache(&source);
    let startup = current_thread(true);
    let cold = startup.block_on(async {
        let c = cache.get().await.unwrap();
        settle().await; // the task is running on `startup` and sleeping
        c
    });
    // `startup` stays alive but is never driven again.
    let app = current_thread(true);
    let due = cache.status().next_refresh.unwrap();
    app.block_on(async {
        // Past the refresh instant by more than a fetch deadline, but long
        // before the mandatory window.
        clock.advance(due.duration_since(clock.now()).unwrap() + Duration::from_secs(20));
        for _ in 0..3 {
            assert!(cache.cached().is_some(), "served from the hot path");
            tokio::time::advance(Duration::from_secs(1)).await;
            settle().await;
        }
    });
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "refreshed in the background on the app runtime"
    );
    let refreshed = cache.cached().expect("fresh credentials");
    assert_ne!(refreshed.access_key_id(), cold.access_key_id());
    assert_eq!(cache.status().waits, 1, "only the cold start waited");
    drop(app);
    drop(startup);
}
