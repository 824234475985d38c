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

use crate::error::{Aborted, ErrorKind, ExpiresTooSoon, RefreshError};
use crate::rfc3339;
use crate::schedule::RefreshPolicy;
use crate::source::{CredentialSource, Fetched};
use crate::status::Status;
use crate::time::{sleep_until, SharedClock, SharedRandom};
use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// Cached credentials and the instants derived from them.
struct Entry {
    credentials: Credentials,
    /// The same credentials as the SDK's `Identity`, built once per refresh so
    /// that [`crate::identity_cache::SdkIdentityCache`] hands out a clone
    /// instead of converting (and allocating) on every request.
    identity: Identity,
    expiration: SystemTime,
    /// `expiration − mandatory window`: from here on callers wait.
    wait_from: SystemTime,
    label: String,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Entry>, RefreshError>>>;

#[derive(Default)]
struct Schedule {
    next_refresh: Option<SystemTime>,
    consecutive_failures: u32,
    last_refresh: Option<SystemTime>,
    last_error_kind: Option<ErrorKind>,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    waits: AtomicU64,
    served_stale: AtomicU64,
}

struct Inner<S> {
    source: S,
    slot: ArcSwapOption<Entry>,
    flight: Mutex<Option<Flight>>,
    schedule: Mutex<Schedule>,
    counters: Counters,
    policy: RefreshPolicy,
    clock: SharedClock,
    rng: SharedRandom,
    /// Wakes the background task: new schedule, or the cache was dropped.
    wake: Arc<Notify>,
    task_started: AtomicBool,
    task_marker: Mutex<Weak<()>>,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        // The task sleeps holding only a Weak; wake it so it sees we are gone.
        self.wake.notify_one();
    }
}

/// A refreshing credentials cache over one [`CredentialSource`].
///
/// Cloning is cheap and shares the cache.
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

/// Reports whether a cache's background task is still running.
#[derive(Debug, Clone)]
pub struct TaskWatch(Weak<()>);

impl TaskWatch {
    /// `true` while the background refresh task is alive.
    pub fn is_running(&self) -> bool {
        self.0.strong_count() > 0
    }
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
                task_started: AtomicBool::new(false),
                task_marker: Mutex::new(Weak::new()),
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
    #[inline]
    fn is_fresh(&self, entry: &Entry) -> bool {
        let clock = &self.inner.clock;
        clock.now_not_before() < entry.wait_from || clock.now() < entry.wait_from
    }

    /// Valid credentials that need no refresh, without waiting: the hot path.
    #[inline]
    pub fn cached(&self) -> Option<Credentials> {
        let guard = self.inner.slot.load();
        let entry = guard.as_ref()?;
        self.is_fresh(entry).then(|| entry.credentials.clone())
    }

    /// The hot path of [`SdkIdentityCache`](crate::identity_cache::SdkIdentityCache):
    /// the pre-built `Identity` of valid credentials that need no refresh.
    #[inline]
    pub(crate) fn cached_identity(&self) -> Option<Identity> {
        let guard = self.inner.slot.load();
        let entry = guard.as_ref()?;
        self.is_fresh(entry).then(|| entry.identity.clone())
    }

    /// Credentials, fetching only when there are none or they are inside the
    /// mandatory window. Must be called within a tokio runtime.
    pub async fn get(&self) -> Result<Credentials, RefreshError> {
        if let Some(c) = self.cached() {
            self.ensure_task();
            return Ok(c);
        }
        self.ensure_task();
        self.slow_path().await
    }

    async fn slow_path(&self) -> Result<Credentials, RefreshError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let current = inner.slot.load_full();
        if let Some(entry) = &current {
            // Inside the mandatory window but still valid, and a retry is
            // already scheduled after a failure: serve the cache rather than
            // hammering a failing agent once per caller.
            let sched = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
            if now < entry.expiration
                && sched.consecutive_failures > 0
                && sched.next_refresh.is_some_and(|t| now < t)
            {
                drop(sched);
                inner.counters.served_stale.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.credentials.clone());
            }
        }
        let flight = match self.join_flight() {
            Ok(flight) => flight,
            Err(fresh) => return Ok(fresh.credentials.clone()),
        };
        inner.counters.waits.fetch_add(1, Ordering::Relaxed);
        match flight.await {
            Ok(entry) => Ok(entry.credentials.clone()),
            Err(err) => {
                if let Some(entry) = inner.slot.load_full() {
                    if inner.clock.now() < entry.expiration {
                        inner.counters.served_stale.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            source = entry.label.as_str(),
                            expiration = %rfc3339::format(entry.expiration),
                            error_kind = err.kind().as_str(),
                            error = %err,
                            "credentials refresh failed; serving cached credentials until they expire"
                        );
                        return Ok(entry.credentials.clone());
                    }
                }
                Err(err)
            }
        }
    }

    /// Joins the in-flight fetch or starts one. `Err(entry)` means fresh
    /// credentials appeared meanwhile and no fetch is needed.
    fn join_flight(&self) -> Result<Flight, Arc<Entry>> {
        let inner = &self.inner;
        let mut slot = inner.flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = slot.as_ref() {
            return Ok(flight.clone());
        }
        // Re-check under the lock: a fetch may have completed between the
        // caller's read and here.
        if let Some(entry) = inner.slot.load_full() {
            if inner.clock.now() < entry.wait_from && !self.refresh_due() {
                return Err(entry);
            }
        }
        let this = self.clone();
        let name = inner.source.name();
        let handle = tokio::spawn(async move { this.run_fetch().await });
        let flight = async move {
            match handle.await {
                Ok(result) => result,
                Err(join) => Err(RefreshError::new(name, Aborted(join.to_string()))),
            }
        }
        .boxed()
        .shared();
        *slot = Some(flight.clone());
        Ok(flight)
    }

    fn refresh_due(&self) -> bool {
        let sched = self
            .inner
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sched
            .next_refresh
            .is_some_and(|t| self.inner.clock.now() >= t)
    }

    /// One fetch, run as its own task so it completes (and fills the cache)
    /// even if every waiter gives up.
    async fn run_fetch(self) -> Result<Arc<Entry>, RefreshError> {
        let inner = &self.inner;
        inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let name = inner.source.name();
        tracing::debug!(source = name, "credentials fetch started");
        let result = inner
            .source
            .fetch()
            .await
            .and_then(|fetched| self.accept(fetched));
        let now = inner.clock.now();
        let outcome = match result {
            Ok(entry) => {
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
                    s.next_refresh = Some(next);
                    s.consecutive_failures = 0;
                    s.last_refresh = Some(now);
                }
                tracing::info!(
                    source = entry.label.as_str(),
                    expiration = %rfc3339::format(entry.expiration),
                    next_refresh = %rfc3339::format(next),
                    "credentials refreshed"
                );
                Ok(entry)
            }
            Err(err) => {
                inner.counters.failures.fetch_add(1, Ordering::Relaxed);
                let current = inner.slot.load_full();
                let remaining = current
                    .as_ref()
                    .and_then(|e| e.expiration.duration_since(now).ok());
                let mut s = inner.schedule.lock().unwrap_or_else(|p| p.into_inner());
                s.consecutive_failures += 1;
                s.last_error_kind = Some(err.kind());
                // Keep retrying in the background once we have ever had
                // credentials, so the next caller finds fresh ones; a cache
                // that never succeeded is driven by callers alone.
                s.next_refresh = current.as_ref().map(|_| {
                    now + inner.policy.failure_backoff(
                        s.consecutive_failures,
                        remaining.unwrap_or(Duration::ZERO),
                        &*inner.rng,
                    )
                });
                tracing::warn!(
                    source = name,
                    error_kind = err.kind().as_str(),
                    error = %err,
                    consecutive_failures = s.consecutive_failures,
                    cached_valid_for_secs = remaining.map(|d| d.as_secs()),
                    "credentials fetch failed"
                );
                Err(err)
            }
        };
        // Clear the flight only after the slot is updated, so a caller that
        // finds no flight also finds the new credentials.
        *inner.flight.lock().unwrap_or_else(|p| p.into_inner()) = None;
        inner.wake.notify_one();
        outcome
    }

    fn accept(&self, fetched: Fetched) -> Result<Arc<Entry>, RefreshError> {
        let now = self.inner.clock.now();
        let window = self.inner.policy.mandatory_window;
        let remaining = fetched
            .expiration
            .duration_since(now)
            .unwrap_or(Duration::ZERO);
        if remaining <= window {
            return Err(RefreshError::new(
                self.inner.source.name(),
                ExpiresTooSoon::new(fetched.expiration, now, window),
            ));
        }
        let mandatory = self.inner.policy.mandatory_window_for(remaining);
        Ok(Arc::new(Entry {
            identity: Identity::from(fetched.credentials.clone()),
            credentials: fetched.credentials,
            expiration: fetched.expiration,
            wait_from: fetched.expiration - mandatory,
            label: fetched.label,
        }))
    }

    fn ensure_task(&self) {
        if self.inner.task_started.load(Ordering::Relaxed)
            || self.inner.task_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let marker = Arc::new(());
        *self
            .inner
            .task_marker
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&marker);
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(refresher(weak, wake, marker));
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

    /// A handle telling whether the background task is running.
    pub fn task_watch(&self) -> TaskWatch {
        TaskWatch(
            self.inner
                .task_marker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
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

/// The background refresher. Holds the cache only through `Weak`, and never
/// across a sleep, so dropping the last handle ends it.
async fn refresher<S: CredentialSource>(weak: Weak<Inner<S>>, wake: Arc<Notify>, _marker: Arc<()>) {
    loop {
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
        let Some(inner) = weak.upgrade() else { return };
        let cache = RefreshingCache { inner };
        if cache
            .next_wakeup()
            .is_some_and(|t| cache.inner.clock.now() >= t)
        {
            tracing::debug!(source = cache.inner.source.name(), "proactive refresh");
            if let Ok(flight) = cache.join_flight() {
                let _ = flight.await;
            }
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
