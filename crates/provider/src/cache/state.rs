//! What every handle of one cache shares, and how a fetch updates it: the
//! cached entry, the flight slot, the schedule and the counters.

use super::entry::Entry;
use super::flight::{Flight, Join};
use super::schedule::RefreshPolicy;
use super::task::TaskState;
use crate::context::{SharedClock, SharedRandom};
use crate::error::{ErrorChain, ErrorKind, ExpiresTooSoon, FetchAborted, RefreshError};
use crate::source::{CredentialSource, Fetched};
use crate::status::Status;
use crate::support::rfc3339;
use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

#[derive(Default)]
pub(crate) struct Schedule {
    pub(crate) next_refresh: Option<SystemTime>,
    consecutive_failures: u32,
    last_refresh: Option<SystemTime>,
    last_error_kind: Option<ErrorKind>,
    /// With nothing valid cached, callers before this instant share
    /// `last_error` instead of starting a fetch (negative caching).
    retry_after: Option<SystemTime>,
    last_error: Option<RefreshError>,
}

#[derive(Default)]
pub(crate) struct Counters {
    fetches: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    pub(crate) waits: AtomicU64,
    /// Calls answered from the cache after a refresh failed (static
    /// stability); [`Status::served_cached_after_failure`].
    pub(crate) served_cached_after_failure: AtomicU64,
}

pub(crate) struct Inner<S> {
    pub(crate) source: S,
    pub(crate) slot: ArcSwapOption<Entry>,
    pub(crate) flight: Mutex<Option<Arc<Flight>>>,
    pub(crate) schedule: Mutex<Schedule>,
    pub(crate) counters: Counters,
    policy: RefreshPolicy,
    pub(crate) clock: SharedClock,
    rng: SharedRandom,
    /// Wakes the background task: new schedule, or the cache was dropped.
    pub(crate) wake: Arc<Notify>,
    pub(crate) task: Arc<TaskState>,
    /// `next_refresh + wait limit` in milliseconds since the epoch
    /// (`u64::MAX`: nothing scheduled). A live task past it sits on a
    /// runtime that is no longer driven; the hot path compares against it
    /// with one atomic load.
    pub(crate) task_overdue_at: AtomicU64,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        // The task sleeps holding only a Weak; wake it so it sees we are gone.
        self.wake.notify_one();
    }
}

impl<S: CredentialSource> Inner<S> {
    pub(crate) fn new(
        source: S,
        policy: RefreshPolicy,
        clock: SharedClock,
        rng: SharedRandom,
    ) -> Self {
        Self {
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
        }
    }

    /// Valid (unexpired) cached credentials at `now`.
    pub(crate) fn valid_entry(&self, now: SystemTime) -> Option<Arc<Entry>> {
        self.slot.load_full().filter(|entry| now < entry.expiration)
    }

    /// Serves `entry` after the refresh failed with `err` (static
    /// stability): counted and logged.
    pub(crate) fn serve_cached_after_failure(
        &self,
        entry: &Entry,
        err: &RefreshError,
    ) -> Credentials {
        self.counters
            .served_cached_after_failure
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            source = entry.label.as_str(),
            expiration = %rfc3339::format(entry.expiration),
            error_kind = err.kind().as_str(),
            error = %ErrorChain(&err).one_line(),
            "credentials refresh failed; serving cached credentials until they expire"
        );
        entry.credentials.clone()
    }

    /// Under the flight lock: join the fetch in flight, start one, or answer
    /// without fetching. `request` is `false` for the background task, which
    /// acts on its schedule only.
    pub(crate) fn join_flight(self: &Arc<Self>, request: bool) -> Join {
        let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        if let Some(flight) = slot.as_ref() {
            if flight.result.get().is_none() && !flight.is_stalled(now, self.wait_limit()) {
                return Join::Wait(flight.clone());
            }
            // Ended (its guard is about to clear it) or stalled: replace it.
            *slot = None;
        }
        // Re-check under the lock: a fetch may have completed between the
        // caller's read and here.
        if let Some(entry) = self.slot.load_full() {
            if now < entry.wait_from && !self.refresh_due(now) {
                return Join::Fresh(entry);
            }
        }
        if request {
            let sched = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
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
                self.source.name(),
                FetchAborted::NoRuntime,
            ));
        };
        let flight = Arc::new(Flight::new(now));
        *slot = Some(flight.clone());
        drop(slot);
        let guard = FlightGuard {
            inner: self.clone(),
            flight: flight.clone(),
            // A fetch nobody waits for (the background refresh while valid
            // credentials are cached) makes one attempt: a failure only
            // means serving the cache longer, and the schedule retries it.
            // A caller starting a fetch waits for it, and so does anyone
            // joining a fetch started with nothing valid cached: the
            // source's whole retry policy.
            single_attempt: !request && self.valid_entry(now).is_some(),
        };
        handle.spawn(guard.run());
        Join::Wait(flight)
    }

    /// How long a caller waits for one fetch: the source's deadline plus
    /// margins.
    pub(crate) fn wait_limit(&self) -> Duration {
        self.source.fetch_timeout() + FETCH_SLACK + WAIT_MARGIN
    }

    /// Waits for `flight`, never longer than the fetch deadline plus a
    /// margin, even if the task running it is never polled again.
    pub(crate) async fn wait(&self, flight: &Arc<Flight>) -> Result<Arc<Entry>, RefreshError> {
        let limit = self.wait_limit();
        match flight.result_within(limit).await {
            Some(result) => result,
            None => {
                let err =
                    RefreshError::new(self.source.name(), FetchAborted::Stalled { after: limit });
                // Give up on it: the next caller starts a new fetch.
                let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
                    *slot = None;
                    drop(slot);
                    self.record_failure(&err, false);
                }
                Err(err)
            }
        }
    }

    pub(crate) fn refresh_due(&self, now: SystemTime) -> bool {
        let sched = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        sched.next_refresh.is_some_and(|t| now >= t)
    }

    /// One fetch with acceptance: credentials that arrive already expired
    /// (or inside their own mandatory window) count as a failed attempt and
    /// are fetched again with the source's backoff, all within the source's
    /// fetch deadline. A `single_attempt` fetch (the background refresh
    /// while valid credentials are cached) makes one attempt
    /// ([`CredentialSource::fetch_once`]): the background schedule is its
    /// retry loop.
    async fn fetch_accepted(&self, single_attempt: bool) -> Result<Arc<Entry>, RefreshError> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let name = self.source.name();
        tracing::debug!(source = name, "credentials fetch started");
        let retry = self.source.retry_policy();
        let max_attempts = if single_attempt {
            1
        } else {
            retry.max_attempts
        };
        let deadline = self.source.fetch_timeout();
        let attempts = async {
            let mut attempt = 1;
            loop {
                let fetched = if single_attempt {
                    self.source.fetch_once().await?
                } else {
                    self.source.fetch().await?
                };
                let err = match self.accept(fetched) {
                    Ok(entry) => return Ok(entry),
                    Err(err) => err,
                };
                if attempt >= max_attempts {
                    return Err(err);
                }
                let delay = retry.backoff(attempt, &*self.rng);
                tracing::warn!(
                    source = name,
                    attempt,
                    error_kind = err.kind().as_str(),
                    error = %ErrorChain(&err).one_line(),
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
        let now = self.clock.now();
        let lifetime = fetched
            .expiration
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        let mandatory = self.policy.mandatory_window_for(lifetime);
        if lifetime <= mandatory {
            return Err(RefreshError::new(
                self.source.name(),
                ExpiresTooSoon::new(fetched.expiration, now, mandatory),
            ));
        }
        Ok(Arc::new(Entry::new(
            fetched.credentials,
            fetched.expiration,
            fetched.expiration - mandatory,
            fetched.label,
        )))
    }

    /// Records how `flight` ended, publishes the result to its waiters and
    /// clears the flight slot. Called exactly once per flight, by its guard.
    ///
    /// A flight that was given up on (stalled) and replaced no longer speaks
    /// for the cache: its failure only counts, and its credentials are kept
    /// only if they outlive the cached ones.
    fn finish(&self, flight: &Arc<Flight>, result: Result<Arc<Entry>, RefreshError>) {
        let current = self
            .flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, flight));
        match &result {
            Ok(entry) if current => self.record_success(entry),
            Err(err) if current => self.record_failure(err, !is_cancelled(err)),
            Ok(entry) => {
                let newer = self
                    .slot
                    .load()
                    .as_ref()
                    .is_none_or(|cached| cached.expiration < entry.expiration);
                if newer {
                    self.record_success(entry);
                }
            }
            Err(err) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    source = self.source.name(),
                    error_kind = err.kind().as_str(),
                    error = %ErrorChain(&err).one_line(),
                    "a fetch given up on earlier ended with an error; ignored"
                );
            }
        }
        let _ = flight.result.set(result);
        // Clear the flight only after the slot is updated, so a caller that
        // finds no flight also finds the new credentials.
        {
            let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
                *slot = None;
            }
        }
        flight.done.notify_waiters();
        self.wake.notify_one();
    }

    fn record_success(&self, entry: &Arc<Entry>) {
        let now = self.clock.now();
        self.slot.store(Some(entry.clone()));
        self.counters.successes.fetch_add(1, Ordering::Relaxed);
        let lifetime = entry
            .expiration
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        let next = self
            .policy
            .refresh_at(entry.expiration, lifetime, &*self.rng);
        {
            let mut s = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
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
        let now = self.clock.now();
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let current = self.slot.load_full();
        let remaining = current
            .as_ref()
            .and_then(|e| e.expiration.duration_since(now).ok());
        // The cached credentials' mandatory window sets the retry's time scale.
        let window = current
            .as_ref()
            .and_then(|e| e.expiration.duration_since(e.wait_from).ok())
            .unwrap_or_default();
        let mut s = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.last_error_kind = Some(err.kind());
        if share {
            s.retry_after = Some(
                now + self
                    .policy
                    .error_backoff(s.consecutive_failures, &*self.rng),
            );
            s.last_error = Some(err.clone());
        }
        // Keep retrying in the background once we have ever had
        // credentials, so the next caller finds fresh ones; a cache that
        // never succeeded is driven by callers alone.
        let next = current.as_ref().map(|_| {
            now + self.policy.failure_backoff(
                s.consecutive_failures,
                remaining.unwrap_or(Duration::ZERO),
                window,
                &*self.rng,
            )
        });
        self.set_next_refresh(&mut s, next);
        tracing::warn!(
            source = self.source.name(),
            error_kind = err.kind().as_str(),
            error = %ErrorChain(&err).one_line(),
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
        self.task_overdue_at.store(overdue_at, Ordering::Release);
    }

    /// When the background task should next act, if at all.
    pub(crate) fn next_wakeup(&self) -> Option<SystemTime> {
        self.schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_refresh
    }

    /// A snapshot of the cache's state.
    pub(crate) fn status(&self) -> Status {
        let entry = self.slot.load_full();
        let s = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let c = &self.counters;
        Status {
            source: entry
                .as_ref()
                .map_or_else(|| self.source.name().to_owned(), |e| e.label.clone()),
            expiration: entry.as_ref().map(|e| e.expiration),
            last_refresh: s.last_refresh,
            next_refresh: s.next_refresh,
            consecutive_failures: s.consecutive_failures,
            fetches: c.fetches.load(Ordering::Relaxed),
            successes: c.successes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            served_cached_after_failure: c.served_cached_after_failure.load(Ordering::Relaxed),
            last_error_kind: s.last_error_kind,
        }
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
#[inline]
pub(crate) fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `true` for a fetch cancelled under us (its runtime shut down): it says
/// nothing about the source.
pub(crate) fn is_cancelled(err: &RefreshError) -> bool {
    matches!(
        err.source_error().downcast_ref::<FetchAborted>(),
        Some(FetchAborted::Cancelled)
    )
}

/// Owned by the task running a fetch: finishes the flight however the task
/// ends. Completion and panics finish it in [`FlightGuard::run`]; a task
/// dropped before completing (its runtime shut down) finishes it in `drop`.
struct FlightGuard<S: CredentialSource> {
    inner: Arc<Inner<S>>,
    flight: Arc<Flight>,
    /// Started by the background task while valid credentials were cached:
    /// one attempt.
    single_attempt: bool,
}

impl<S: CredentialSource> FlightGuard<S> {
    async fn run(self) {
        let name = self.inner.source.name();
        let result = AssertUnwindSafe(self.inner.fetch_accepted(self.single_attempt))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(RefreshError::new(
                    name,
                    FetchAborted::Panicked { source_name: name },
                ))
            });
        self.inner.finish(&self.flight, result);
    }
}

impl<S: CredentialSource> Drop for FlightGuard<S> {
    fn drop(&mut self) {
        if self.flight.result.get().is_none() {
            let err = RefreshError::new(self.inner.source.name(), FetchAborted::Cancelled);
            self.inner.finish(&self.flight, Err(err));
        }
    }
}
