//! [`RefreshingCache`], the public handle: the hot path, the waiting path
//! and the snapshot.

use super::background::{ensure_task, restart_stalled_task};
use super::entry::Entry;
use super::flight::Join;
use super::schedule::RefreshPolicy;
use super::state::{is_cancelled, Inner};
use super::task::TaskWatch;
use crate::context::{SharedClock, SharedRandom};
use crate::error::{FetchAborted, RefreshError};
use crate::source::CredentialSource;
use crate::status::Status;
use crate::support::rfc3339;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future::ProvideCredentials as ProvideCredentialsFuture;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::runtime::Handle;

/// A refreshing credentials cache over one [`CredentialSource`].
///
/// Cloning is cheap and shares the cache. It may be used from any number of
/// tokio runtimes, one after the other or at once: the background refresh
/// runs on the runtime of a caller and is restarted on the next caller's
/// runtime when that runtime shuts down, or when it is alive but no longer
/// driven (the refresh is then overdue). See the
/// [crate documentation on guarantees](crate::docs::guarantees).
pub struct RefreshingCache<S> {
    pub(crate) inner: Arc<Inner<S>>,
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

impl<S: CredentialSource> RefreshingCache<S> {
    /// A cache over `source`. Nothing is fetched until the first call.
    ///
    /// `clock` and `rng` are the time and jitter seams (see
    /// [`context`](crate::context)), e.g. `Arc::new(SystemClock)` and
    /// `Arc::new(FastRandom::new())`; the providers of this crate pass those
    /// of their [`ProviderContext`](crate::ProviderContext).
    pub fn new(source: S, policy: RefreshPolicy, clock: SharedClock, rng: SharedRandom) -> Self {
        Self {
            inner: Arc::new(Inner::new(source, policy, clock, rng)),
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
    /// [`ensure_task`]) with the reading already taken.
    #[inline]
    fn is_fresh(&self, entry: &Entry) -> bool {
        let clock = &self.inner.clock;
        let t = clock.now_not_before();
        let fresh = t < entry.wait_from || clock.now() < entry.wait_from;
        if fresh {
            ensure_task(&self.inner, t);
        }
        fresh
    }

    /// Valid credentials that need no refresh, without waiting: the hot path.
    ///
    /// Lock-free and never waits: one atomic load, a clock reading and a
    /// clone. Inside a tokio runtime it also restarts the background refresh
    /// if the runtime that ran it has shut down.
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

    /// The hot path of [`SdkIdentityCache`](crate::SdkIdentityCache): the
    /// pre-built `Identity` of valid credentials that need no refresh.
    #[inline]
    pub(crate) fn cached_identity(&self) -> Option<Identity> {
        let guard = self.inner.slot.load();
        let entry = guard.as_ref()?;
        if self.is_fresh(entry) {
            Some(entry.identity())
        } else {
            None
        }
    }

    /// Credentials, fetching only when there are none or they are inside the
    /// mandatory window.
    ///
    /// Never waits unless no valid credentials are cached or they are inside
    /// the mandatory window; then it waits for the one fetch every caller
    /// shares, at most the source's fetch deadline plus a second. Works on
    /// any tokio runtime, current-thread or multi-thread. Outside a runtime
    /// it still returns valid cached credentials, and fails with
    /// [`ErrorKind::NoRuntime`](crate::ErrorKind::NoRuntime) when a fetch
    /// would be needed.
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

    async fn slow_path(&self) -> Result<Credentials, RefreshError> {
        let inner = &self.inner;
        if Handle::try_current().is_err() {
            let err = RefreshError::new(inner.source.name(), FetchAborted::NoRuntime);
            return match inner.valid_entry(inner.clock.now()) {
                Some(entry) => Ok(inner.serve_cached_after_failure(&entry, &err)),
                None => Err(err),
            };
        }
        ensure_task(inner, inner.clock.now());
        restart_stalled_task(inner);
        let mut waited = false;
        let mut rejoined = false;
        loop {
            let flight = match inner.join_flight(true) {
                Join::Fresh(entry) => return Ok(entry.credentials.clone()),
                Join::ServeCached(entry) => {
                    inner
                        .counters
                        .served_cached_after_failure
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(entry.credentials.clone());
                }
                Join::SharedError(err) => return Err(err),
                Join::Wait(flight) => flight,
            };
            if !waited {
                waited = true;
                inner.counters.waits.fetch_add(1, Ordering::Relaxed);
            }
            let err = match inner.wait(&flight).await {
                Ok(entry) => return Ok(entry.credentials.clone()),
                Err(err) => err,
            };
            // A fetch cancelled under us (its runtime shut down) says nothing
            // about the source: start one on this caller's runtime, once.
            if !rejoined && is_cancelled(&err) {
                rejoined = true;
                continue;
            }
            return match inner.valid_entry(inner.clock.now()) {
                Some(entry) => Ok(inner.serve_cached_after_failure(&entry, &err)),
                None => Err(err),
            };
        }
    }

    /// The SDK-facing future: ready at once on the hot path, boxed only when
    /// a fetch is needed. Shared by every public provider type.
    #[inline]
    pub(crate) fn provide(&self) -> ProvideCredentialsFuture<'_> {
        match self.cached() {
            Some(creds) => ProvideCredentialsFuture::ready(Ok(creds)),
            None => ProvideCredentialsFuture::new(async move {
                self.get().await.map_err(CredentialsError::from)
            }),
        }
    }

    /// A handle telling whether the background task is running. It may be
    /// taken at any time, before the first fetch included. Lock-free.
    pub fn task_watch(&self) -> TaskWatch {
        TaskWatch(self.inner.task.clone())
    }

    /// A snapshot of the cache's state. Takes the cache's schedule lock
    /// briefly (never held across an `await`); never waits for a fetch.
    pub fn status(&self) -> Status {
        self.inner.status()
    }
}

/// A cache over any source is a credentials provider, so custom sources get
/// the same refresh behaviour when plugged into an SDK.
impl<S: CredentialSource> aws_credential_types::provider::ProvideCredentials
    for RefreshingCache<S>
{
    fn provide_credentials<'a>(&'a self) -> ProvideCredentialsFuture<'a>
    where
        Self: 'a,
    {
        self.provide()
    }
}
