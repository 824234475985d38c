//! The refreshing cache: lock-free reads, background refresh, single-flight.
//!
//! * Reads are one `ArcSwap` load and a clone: no lock, no `await`.
//! * A background task refreshes at a jittered instant inside the advisory
//!   window, long before callers would notice.
//! * Callers wait only when there are no credentials or they are inside the
//!   mandatory window; then every waiter (and the background task) shares
//!   one in-flight fetch and its result, error included.
//! * A failed refresh never discards valid credentials (static stability).
//!
//! The task holds only a `Weak` reference and ends when the last handle is
//! dropped.

use crate::error::{ErrorKind, ExpiresTooSoon, FetchAborted, RefreshError};
use crate::rfc3339;
use crate::schedule::RefreshPolicy;
use crate::source::{CredentialSource, Fetched};
use crate::status::Status;
use crate::time::{sleep_until, SharedClock, SharedRandom};
use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::FutureExt;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// How much longer than a source's fetch deadline a caller waits for a
/// fetch before giving up on the task running it (a runtime that is no
/// longer driven never finishes it).
const WAIT_MARGIN: Duration = Duration::from_secs(1);

/// How much longer than the source's own deadline the cache lets a fetch
/// run, so that the source's own (more precise) timeout error wins.
const FETCH_SLACK: Duration = Duration::from_millis(250);

/// The background task never retries sooner than this after an attempt.
const MIN_RETRY: Duration = Duration::from_millis(100);

/// How many copies of the SDK `Identity` each entry keeps: one per CPU the
/// process may use, at most 16 (each copy is a few hundred bytes).
fn identity_stripes() -> usize {
    static STRIPES: OnceLock<usize> = OnceLock::new();
    *STRIPES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(16)
    })
}

/// The calling thread's stripe: threads are numbered in the order they first
/// ask, so the worker threads of a runtime spread over the stripes.
fn identity_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|s| *s)
}

/// Cached credentials and the instants derived from them.
struct Entry {
    credentials: Credentials,
    /// The same credentials as the SDK's `Identity`, built once per refresh so
    /// that [`crate::identity_cache::SdkIdentityCache`] hands out a clone
    /// instead of converting (and allocating) on every request. One copy per
    /// stripe (see [`identity_stripe`]): cloning one shared `Identity` from
    /// every thread made its reference counts a contended cache line, and
    /// the SDK path cost ~10× more at 8 tasks than at 1 (`benches/hot_path.rs`).
    identities: Box<[Identity]>,
    expiration: SystemTime,
    /// `expiration − mandatory window`: from here on callers wait.
    wait_from: SystemTime,
    label: String,
}

/// One fetch in progress and, once it ends, its result.
///
/// The task running the fetch owns a [`FlightGuard`] that records a result
/// however the task ends (completion, panic, cancellation), so a flight
/// never stays in the slot with no one to finish it; waiters also bound
/// their wait in case the task is never polled again.
struct Flight {
    /// When the fetch started (injected clock).
    started: SystemTime,
    result: OnceLock<Result<Arc<Entry>, RefreshError>>,
    done: Notify,
}

#[derive(Default)]
struct Schedule {
    next_refresh: Option<SystemTime>,
    consecutive_failures: u32,
    last_refresh: Option<SystemTime>,
    last_error_kind: Option<ErrorKind>,
    /// With nothing valid cached, callers before this instant share
    /// `last_error` instead of starting a fetch (negative caching).
    retry_after: Option<SystemTime>,
    last_error: Option<RefreshError>,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    waits: AtomicU64,
    served_stale: AtomicU64,
}

/// The background task's liveness, shared with every [`TaskWatch`].
#[derive(Debug, Default)]
struct TaskState {
    alive: AtomicBool,
    /// Bumped for every task started; a task that is not the latest ends.
    generation: AtomicU64,
}

struct Inner<S> {
    source: S,
    slot: ArcSwapOption<Entry>,
    flight: Mutex<Option<Arc<Flight>>>,
    schedule: Mutex<Schedule>,
    counters: Counters,
    policy: RefreshPolicy,
    clock: SharedClock,
    rng: SharedRandom,
    /// Wakes the background task: new schedule, or the cache was dropped.
    wake: Arc<Notify>,
    task: Arc<TaskState>,
    /// `next_refresh + wait limit` in milliseconds since the epoch
    /// (`u64::MAX`: nothing scheduled). A live task past it sits on a
    /// runtime that is no longer driven; the hot path compares against it
    /// with one atomic load.
    task_overdue_at: AtomicU64,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        // The task sleeps holding only a Weak; wake it so it sees we are gone.
        self.wake.notify_one();
    }
}

/// A refreshing credentials cache over one [`CredentialSource`].
///
/// Cloning is cheap and shares the cache. It may be used from any number of
/// tokio runtimes, one after the other or at once: the background refresh
/// runs on the runtime of a caller and is restarted on the next caller's
/// runtime when that runtime shuts down, or when it is alive but no longer
/// driven (the refresh is then overdue).
pub struct RefreshingCache<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for RefreshingCache<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: CredentialSource> fmt::Debug for RefreshingCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = self.inner.slot.load();
        f.debug_struct("RefreshingCache")
            .field("source", &self.inner.source)
            .field(
                "expiration",
                &entry.as_ref().map(|e| rfc3339::format(e.expiration)),
            )
            .finish_non_exhaustive()
    }
}

/// Reports whether a cache's background task is running. Valid from the
/// moment the cache is built: it follows the task as it starts, ends with
/// a runtime, and restarts.
#[derive(Debug, Clone)]
pub struct TaskWatch(Arc<TaskState>);

impl TaskWatch {
    /// `true` while a background refresh task is alive.
    pub fn is_running(&self) -> bool {
        self.0.alive.load(Ordering::Acquire)
    }
}

/// What a caller does after looking at the cache under the flight lock.
enum Join {
    /// Fresh credentials appeared meanwhile.
    Fresh(Arc<Entry>),
    /// Valid credentials inside the mandatory window while a failed refresh
    /// backs off: serve them.
    ServeCached(Arc<Entry>),
    /// Nothing valid, and the last fetch failed moments ago: its error.
    SharedError(RefreshError),
    /// Wait for this fetch.
    Wait(Arc<Flight>),
}

impl<S: CredentialSource> RefreshingCache<S> {
    /// A cache over `source`. Nothing is fetched until the first call.
    pub fn new(source: S, policy: RefreshPolicy, clock: SharedClock, rng: SharedRandom) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                slot: ArcSwapOption::empty(),
                flight: Mutex::new(None),
                schedule: Mutex::new(Schedule::default()),
                counters: Counters::default(),
                policy,
                clock,
                rng,
                wake: Arc::new(Notify::new()),
                task: Arc::new(TaskState::default()),
                task_overdue_at: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// The source behind the cache.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// Before the mandatory window? The cheap clock answers almost always; only
    /// within its margin of the window is the precise clock read, so the
    /// answer is exactly the precise one.
    ///
    /// When fresh, also keeps the background task going (see
    /// [`Self::ensure_task`]) with the reading already taken.
    #[inline]
    fn is_fresh(&self, entry: &Entry) -> bool {
        let clock = &self.inner.clock;
        let t = clock.now_not_before();
        let fresh = t < entry.wait_from || clock.now() < entry.wait_from;
        if fresh {
            self.ensure_task(t);
        }
        fresh
    }

    /// Valid credentials that need no refresh, without waiting: the hot path.
    ///
    /// Inside a tokio runtime it also restarts the background refresh if the
    /// runtime that ran it has shut down.
    #[inline]
    pub fn cached(&self) -> Option<Credentials> {
        let guard = self.inner.slot.load();
        let entry = guard.as_ref()?;
        if self.is_fresh(entry) {
            Some(entry.credentials.clone())
        } else {
            None
        }
    }

    /// The hot path of [`SdkIdentityCache`](crate::identity_cache::SdkIdentityCache):
    /// the pre-built `Identity` of valid credentials that need no refresh.
    #[inline]
    pub(crate) fn cached_identity(&self) -> Option<Identity> {
        let guard = self.inner.slot.load();
        let entry = guard.as_ref()?;
        if self.is_fresh(entry) {
            let stripes = &entry.identities;
            Some(stripes[identity_stripe() % stripes.len()].clone())
        } else {
            None
        }
    }

    /// Credentials, fetching only when there are none or they are inside the
    /// mandatory window.
    ///
    /// Works on any tokio runtime, current-thread or multi-thread. Outside a
    /// runtime it still returns valid cached credentials, and fails with
    /// [`ErrorKind::NoRuntime`] when a fetch would be needed.
    ///
    /// # Errors
    ///
    /// When no valid credentials are cached and the fetch fails (or failed
    /// moments ago: its error is shared for a short backoff), or when a
    /// fetch is needed outside a tokio runtime. A failed refresh while valid
    /// credentials are cached is not an error: they are served.
    ///
    /// # Panics
    ///
    /// When a fetch is needed on a runtime built without its time driver
    /// (`tokio::runtime::Builder::enable_time`): tokio's timers panic there,
    /// and a fetch cannot run without deadlines.
    pub async fn get(&self) -> Result<Credentials, RefreshError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        self.slow_path().await
    }

    /// Valid (unexpired) cached credentials at `now`.
    fn valid_entry(&self, now: SystemTime) -> Option<Arc<Entry>> {
        self.inner
            .slot
            .load_full()
            .filter(|entry| now < entry.expiration)
    }

    fn serve_stale(&self, entry: &Entry, err: &RefreshError) -> Credentials {
        self.inner
            .counters
            .served_stale
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            source = entry.label.as_str(),
            expiration = %rfc3339::format(entry.expiration),
            error_kind = err.kind().as_str(),
            error = %err,
            "credentials refresh failed; serving cached credentials until they expire"
        );
        entry.credentials.clone()
    }

    async fn slow_path(&self) -> Result<Credentials, RefreshError> {
        let inner = &self.inner;
        if Handle::try_current().is_err() {
            let err = RefreshError::new(inner.source.name(), FetchAborted::NoRuntime);
            return match self.valid_entry(inner.clock.now()) {
                Some(entry) => Ok(self.serve_stale(&entry, &err)),
                None => Err(err),
            };
        }
        self.ensure_task(inner.clock.now());
        self.restart_stalled_task();
        let mut waited = false;
        let mut rejoined = false;
        loop {
            let flight = match self.join_flight(true) {
                Join::Fresh(entry) => return Ok(entry.credentials.clone()),
                Join::ServeCached(entry) => {
                    inner.counters.served_stale.fetch_add(1, Ordering::Relaxed);
                    return Ok(entry.credentials.clone());
                }
                Join::SharedError(err) => return Err(err),
                Join::Wait(flight) => flight,
            };
            if !waited {
                waited = true;
                inner.counters.waits.fetch_add(1, Ordering::Relaxed);
            }
            let err = match self.wait(&flight).await {
                Ok(entry) => return Ok(entry.credentials.clone()),
                Err(err) => err,
            };
            // A fetch cancelled under us (its runtime shut down) says nothing
            // about the source: start one on this caller's runtime, once.
            if !rejoined && is_cancelled(&err) {
                rejoined = true;
                continue;
            }
            return match self.valid_entry(inner.clock.now()) {
                Some(entry) => Ok(self.serve_stale(&entry, &err)),
                None => Err(err),
            };
        }
    }

    /// Under the flight lock: join the fetch in flight, start one, or answer
    /// without fetching. `request` is `false` for the background task, which
    /// acts on its schedule only.
    fn join_flight(&self, request: bool) -> Join {
        let inner = &self.inner;
        let mut slot = inner.flight.lock().unwrap_or_else(|p| p.into_inner());
        let now = inner.clock.now();
        if let Some(flight) = slot.as_ref() {
            if flight.result.get().is_none() && !self.is_stalled(flight, now) {
                return Join::Wait(flight.clone());
            }
            // Ended (its guard is about to clear it) or stalled: replace it.
            *slot = None;
        }
        // Re-check under the lock: a fetch may have completed between the
        // caller's read and here.
        if let Some(entry) = inner.slot.load_full() {
            if now < entry.wait_from && !self.refresh_due(now) {
                return Join::Fresh(entry);
            }
        }
        if request {
            let sched = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
            match self.valid_entry(now) {
                // Inside the mandatory window but still valid, and a retry is
                // already scheduled after a failure: serve the cache rather
                // than hammering a failing agent once per caller.
                Some(entry) => {
                    if sched.consecutive_failures > 0 && sched.next_refresh.is_some_and(|t| now < t)
                    {
                        return Join::ServeCached(entry);
                    }
                }
                // Nothing valid and the last fetch failed moments ago: share
                // its error (the agent's rate budget is the whole node's).
                None => {
                    if let (Some(until), Some(err)) = (sched.retry_after, &sched.last_error) {
                        if now < until {
                            return Join::SharedError(err.clone());
                        }
                    }
                }
            }
        }
        let Ok(handle) = Handle::try_current() else {
            return Join::SharedError(RefreshError::new(
                inner.source.name(),
                FetchAborted::NoRuntime,
            ));
        };
        let flight = Arc::new(Flight {
            started: now,
            result: OnceLock::new(),
            done: Notify::new(),
        });
        *slot = Some(flight.clone());
        drop(slot);
        let guard = FlightGuard {
            cache: self.clone(),
            flight: flight.clone(),
        };
        handle.spawn(guard.run());
        Join::Wait(flight)
    }

    /// A fetch that outlived its deadline and margin: the task running it
    /// is not being polled.
    fn is_stalled(&self, flight: &Flight, now: SystemTime) -> bool {
        now.duration_since(flight.started)
            .is_ok_and(|age| age > self.wait_limit())
    }

    fn wait_limit(&self) -> Duration {
        self.inner.source.fetch_timeout() + FETCH_SLACK + WAIT_MARGIN
    }

    /// Waits for `flight`, never longer than the fetch deadline plus a
    /// margin, even if the task running it is never polled again.
    async fn wait(&self, flight: &Arc<Flight>) -> Result<Arc<Entry>, RefreshError> {
        let limit = self.wait_limit();
        let wait = async {
            loop {
                let notified = flight.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(result) = flight.result.get() {
                    return result.clone();
                }
                notified.await;
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(result) => result,
            Err(_) => {
                let err = RefreshError::new(
                    self.inner.source.name(),
                    FetchAborted::Stalled { after: limit },
                );
                // Give up on it: the next caller starts a new fetch.
                let mut slot = self.inner.flight.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
                    *slot = None;
                    drop(slot);
                    self.record_failure(&err, false);
                }
                Err(err)
            }
        }
    }

    fn refresh_due(&self, now: SystemTime) -> bool {
        let sched = self
            .inner
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sched.next_refresh.is_some_and(|t| now >= t)
    }

    /// One fetch with acceptance: credentials that arrive already expired
    /// (or inside their own mandatory window) count as a failed attempt and
    /// are fetched again with the source's backoff, all within the source's
    /// fetch deadline.
    async fn fetch_accepted(&self) -> Result<Arc<Entry>, RefreshError> {
        let inner = &self.inner;
        inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let name = inner.source.name();
        tracing::debug!(source = name, "credentials fetch started");
        let retry = inner.source.retry_policy();
        let deadline = inner.source.fetch_timeout();
        let attempts = async {
            let mut attempt = 1;
            loop {
                let fetched = inner.source.fetch().await?;
                let err = match self.accept(fetched) {
                    Ok(entry) => return Ok(entry),
                    Err(err) => err,
                };
                if attempt >= retry.max_attempts {
                    return Err(err);
                }
                let delay = retry.backoff(attempt, &*inner.rng);
                tracing::warn!(
                    source = name,
                    attempt,
                    error_kind = err.kind().as_str(),
                    error = %err,
                    delay_ms = delay.as_millis() as u64,
                    "unusable credentials received; fetching again"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        };
        let limit = deadline + FETCH_SLACK;
        tokio::time::timeout(limit, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(RefreshError::new(
                    name,
                    FetchAborted::DeadlineExceeded { after: deadline },
                ))
            })
    }

    /// Acceptance uses the cache's own mandatory window `M(L)`, with `L`
    /// the validity left on arrival: credentials inside it would make every
    /// caller wait at once.
    fn accept(&self, fetched: Fetched) -> Result<Arc<Entry>, RefreshError> {
        let now = self.inner.clock.now();
        let lifetime = fetched
            .expiration
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        let mandatory = self.inner.policy.mandatory_window_for(lifetime);
        if lifetime <= mandatory {
            return Err(RefreshError::new(
                self.inner.source.name(),
                ExpiresTooSoon::new(fetched.expiration, now, mandatory),
            ));
        }
        Ok(Arc::new(Entry {
            identities: (0..identity_stripes())
                .map(|_| Identity::from(fetched.credentials.clone()))
                .collect(),
            credentials: fetched.credentials,
            expiration: fetched.expiration,
            wait_from: fetched.expiration - mandatory,
            label: fetched.label,
        }))
    }

    /// Records how `flight` ended, publishes the result to its waiters and
    /// clears the flight slot. Called exactly once per flight, by its guard.
    ///
    /// A flight that was given up on (stalled) and replaced no longer speaks
    /// for the cache: its failure only counts, and its credentials are kept
    /// only if they outlive the cached ones.
    fn finish(&self, flight: &Arc<Flight>, result: Result<Arc<Entry>, RefreshError>) {
        let inner = &self.inner;
        let current = inner
            .flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, flight));
        match &result {
            Ok(entry) if current => self.record_success(entry),
            Err(err) if current => self.record_failure(err, !is_cancelled(err)),
            Ok(entry) => {
                let newer = inner
                    .slot
                    .load()
                    .as_ref()
                    .is_none_or(|cached| cached.expiration < entry.expiration);
                if newer {
                    self.record_success(entry);
                }
            }
            Err(err) => {
                inner.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    source = inner.source.name(),
                    error_kind = err.kind().as_str(),
                    error = %err,
                    "a fetch given up on earlier ended with an error; ignored"
                );
            }
        }
        let _ = flight.result.set(result);
        // Clear the flight only after the slot is updated, so a caller that
        // finds no flight also finds the new credentials.
        {
            let mut slot = inner.flight.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
                *slot = None;
            }
        }
        flight.done.notify_waiters();
        inner.wake.notify_one();
    }

    fn record_success(&self, entry: &Arc<Entry>) {
        let inner = &self.inner;
        let now = inner.clock.now();
        inner.slot.store(Some(entry.clone()));
        inner.counters.successes.fetch_add(1, Ordering::Relaxed);
        let lifetime = entry
            .expiration
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        let next = inner
            .policy
            .refresh_at(entry.expiration, lifetime, &*inner.rng);
        {
            let mut s = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
            self.set_next_refresh(&mut s, Some(next));
            s.consecutive_failures = 0;
            s.last_refresh = Some(now);
            s.retry_after = None;
            s.last_error = None;
        }
        tracing::info!(
            source = entry.label.as_str(),
            expiration = %rfc3339::format(entry.expiration),
            next_refresh = %rfc3339::format(next),
            "credentials refreshed"
        );
    }

    /// A failed fetch: counted, shown in `status()`, and (unless it says
    /// nothing about the source, like a cancelled task) shared with callers
    /// for the error backoff.
    fn record_failure(&self, err: &RefreshError, share: bool) {
        let inner = &self.inner;
        let now = inner.clock.now();
        inner.counters.failures.fetch_add(1, Ordering::Relaxed);
        let current = inner.slot.load_full();
        let remaining = current
            .as_ref()
            .and_then(|e| e.expiration.duration_since(now).ok());
        let mut s = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.last_error_kind = Some(err.kind());
        if share {
            s.retry_after = Some(
                now + inner
                    .policy
                    .error_backoff(s.consecutive_failures, &*inner.rng),
            );
            s.last_error = Some(err.clone());
        }
        // Keep retrying in the background once we have ever had
        // credentials, so the next caller finds fresh ones; a cache that
        // never succeeded is driven by callers alone.
        let next = current.as_ref().map(|_| {
            now + inner.policy.failure_backoff(
                s.consecutive_failures,
                remaining.unwrap_or(Duration::ZERO),
                &*inner.rng,
            )
        });
        self.set_next_refresh(&mut s, next);
        tracing::warn!(
            source = inner.source.name(),
            error_kind = err.kind().as_str(),
            error = %err,
            consecutive_failures = s.consecutive_failures,
            cached_valid_for_secs = remaining.map(|d| d.as_secs()),
            "credentials fetch failed"
        );
    }

    /// Sets the background task's next refresh, and the instant past which
    /// a live task that has not acted counts as stalled.
    fn set_next_refresh(&self, s: &mut Schedule, next: Option<SystemTime>) {
        s.next_refresh = next;
        let overdue_at = next.map_or(u64::MAX, |t| epoch_millis(t + self.wait_limit()));
        self.inner
            .task_overdue_at
            .store(overdue_at, Ordering::Release);
    }

    /// Starts the background task if none is alive (the first call, or the
    /// runtime that ran it has shut down), or restarts it here if it is
    /// overdue at `now` (its runtime is alive but no longer driven). Two
    /// atomic loads when it runs.
    #[inline]
    fn ensure_task(&self, now: SystemTime) {
        if !self.inner.task.alive.load(Ordering::Acquire) {
            self.start_task(false);
        } else if epoch_millis(now) > self.inner.task_overdue_at.load(Ordering::Relaxed) {
            self.restart_stalled_task();
        }
    }

    /// A task that should have refreshed long ago lives on a runtime that is
    /// no longer driven: start another one here. One caller restarts it per
    /// overdue period.
    #[cold]
    fn restart_stalled_task(&self) {
        let now = self.inner.clock.now();
        let overdue = self
            .next_wakeup()
            .and_then(|due| now.duration_since(due).ok())
            .is_some_and(|late| late > self.wait_limit());
        let idle = self
            .inner
            .flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if !(overdue && idle && self.inner.task.alive.load(Ordering::Acquire)) {
            return;
        }
        // Push the mark forward before restarting, so that the callers that
        // saw it passed restart the task once, not once each.
        let mark = &self.inner.task_overdue_at;
        let seen = mark.load(Ordering::Acquire);
        let next_mark = epoch_millis(now + self.wait_limit());
        if seen >= next_mark
            || mark
                .compare_exchange(seen, next_mark, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        tracing::warn!(
            source = self.inner.source.name(),
            "background refresh is overdue (its runtime is not running); restarting it on this runtime"
        );
        self.start_task(true);
    }

    #[cold]
    fn start_task(&self, force: bool) {
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        let task = &self.inner.task;
        if force {
            task.alive.store(true, Ordering::Release);
        } else if task
            .alive
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let generation = task.generation.fetch_add(1, Ordering::AcqRel) + 1;
        // The guard is built here and moved into the task, not built inside
        // it: a runtime that shuts down before it ever polls the task still
        // drops it, and the next caller restarts the task.
        let alive = TaskAlive {
            task: task.clone(),
            generation,
        };
        handle.spawn(refresher(
            Arc::downgrade(&self.inner),
            self.inner.wake.clone(),
            alive,
        ));
    }

    /// The SDK-facing future: ready at once on the hot path, boxed only when
    /// a fetch is needed. Shared by every public provider type.
    #[inline]
    pub(crate) fn provide(&self) -> aws_credential_types::provider::future::ProvideCredentials<'_> {
        use aws_credential_types::provider::future::ProvideCredentials;
        match self.cached() {
            Some(creds) => ProvideCredentials::ready(Ok(creds)),
            None => ProvideCredentials::new(async move {
                self.get()
                    .await
                    .map_err(crate::provider::to_credentials_error)
            }),
        }
    }

    /// This cache as the SDK's identity cache (see
    /// [`SdkIdentityCache`](crate::SdkIdentityCache)).
    pub fn identity_cache(&self) -> crate::SdkIdentityCache {
        crate::SdkIdentityCache::new(self.clone())
    }

    /// A handle telling whether the background task is running. It may be
    /// taken at any time, before the first fetch included.
    pub fn task_watch(&self) -> TaskWatch {
        TaskWatch(self.inner.task.clone())
    }

    /// A snapshot of the cache's state.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let entry = inner.slot.load_full();
        let s = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let c = &inner.counters;
        Status {
            source: entry
                .as_ref()
                .map_or_else(|| inner.source.name().to_owned(), |e| e.label.clone()),
            expiration: entry.as_ref().map(|e| e.expiration),
            last_refresh: s.last_refresh,
            next_refresh: s.next_refresh,
            consecutive_failures: s.consecutive_failures,
            fetches: c.fetches.load(Ordering::Relaxed),
            successes: c.successes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            served_stale_after_failure: c.served_stale.load(Ordering::Relaxed),
            last_error_kind: s.last_error_kind,
        }
    }

    /// When the background task should next act, if at all.
    fn next_wakeup(&self) -> Option<SystemTime> {
        self.inner
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_refresh
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
#[inline]
fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn is_cancelled(err: &RefreshError) -> bool {
    matches!(
        err.source_error().downcast_ref::<FetchAborted>(),
        Some(FetchAborted::Cancelled)
    )
}

/// Owned by the task running a fetch: finishes the flight however the task
/// ends. Completion and panics finish it in [`FlightGuard::run`]; a task
/// dropped before completing (its runtime shut down) finishes it in `drop`.
struct FlightGuard<S: CredentialSource> {
    cache: RefreshingCache<S>,
    flight: Arc<Flight>,
}

impl<S: CredentialSource> FlightGuard<S> {
    async fn run(self) {
        let name = self.cache.inner.source.name();
        let result = AssertUnwindSafe(self.cache.fetch_accepted())
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(RefreshError::new(
                    name,
                    FetchAborted::Panicked { source_name: name },
                ))
            });
        self.cache.finish(&self.flight, result);
    }
}

impl<S: CredentialSource> Drop for FlightGuard<S> {
    fn drop(&mut self) {
        if self.flight.result.get().is_none() {
            let err = RefreshError::new(self.cache.inner.source.name(), FetchAborted::Cancelled);
            self.cache.finish(&self.flight, Err(err));
        }
    }
}

/// Marks the task dead when it ends, however it ends (returned, or dropped
/// with its runtime), unless a newer task has replaced it.
struct TaskAlive {
    task: Arc<TaskState>,
    generation: u64,
}

impl Drop for TaskAlive {
    fn drop(&mut self) {
        if self.task.generation.load(Ordering::Acquire) == self.generation {
            self.task.alive.store(false, Ordering::Release);
        }
    }
}

/// The background refresher. Holds the cache only through `Weak` while it
/// sleeps, so dropping the last handle ends it; while it waits for a
/// refresh it holds a strong reference, for at most the fetch deadline plus
/// a margin. Every turn of its loop awaits a sleep, a wake-up or a fetch, so
/// it cannot spin.
async fn refresher<S: CredentialSource>(weak: Weak<Inner<S>>, wake: Arc<Notify>, alive: TaskAlive) {
    let current = || alive.task.generation.load(Ordering::Acquire) == alive.generation;
    loop {
        if !current() {
            return;
        }
        let (due, clock) = {
            let Some(inner) = weak.upgrade() else { return };
            let cache = RefreshingCache { inner };
            (cache.next_wakeup(), cache.inner.clock.clone())
        };
        let Some(due) = due else {
            wake.notified().await;
            continue;
        };
        if clock.now() < due {
            tokio::select! {
                _ = sleep_until(&*clock, due) => {}
                _ = wake.notified() => continue,
            }
        }
        if !current() {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        let cache = RefreshingCache { inner };
        if !cache.refresh_due(cache.inner.clock.now()) {
            continue;
        }
        tracing::debug!(source = cache.inner.source.name(), "proactive refresh");
        if let Join::Wait(flight) = cache.join_flight(false) {
            let _ = cache.wait(&flight).await;
        }
        // Whatever happened, never loop straight back into a due refresh.
        let still_due = cache.refresh_due(cache.inner.clock.now());
        drop(cache);
        if still_due {
            tokio::time::sleep(MIN_RETRY).await;
        }
    }
}

/// A cache over any source is a credentials provider, so custom sources get
/// the same refresh behaviour when plugged into an SDK.
impl<S: CredentialSource> aws_credential_types::provider::ProvideCredentials
    for RefreshingCache<S>
{
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.provide()
    }
}
