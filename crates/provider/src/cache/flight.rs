//! One fetch in progress and, once it ends, its result.

use super::entry::Entry;
use crate::error::RefreshError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// One fetch in progress and, once it ends, its result.
///
/// The task running the fetch owns a guard (`FlightGuard`, in
/// [`state`](super::state)) that records a result however the task ends
/// (completion, panic, cancellation), so a flight never stays in the slot
/// with no one to finish it; waiters also bound their wait in case the task
/// is never polled again.
pub(crate) struct Flight {
    /// When the fetch started (injected clock).
    pub(crate) started: SystemTime,
    pub(crate) result: OnceLock<Result<Arc<Entry>, RefreshError>>,
    pub(crate) done: Notify,
}

impl Flight {
    /// A fetch starting at `started`.
    pub(crate) fn new(started: SystemTime) -> Self {
        Self {
            started,
            result: OnceLock::new(),
            done: Notify::new(),
        }
    }

    /// A fetch that outlived `limit` (its deadline and margin): the task
    /// running it is not being polled.
    pub(crate) fn is_stalled(&self, now: SystemTime, limit: Duration) -> bool {
        now.duration_since(self.started)
            .is_ok_and(|age| age > limit)
    }

    /// The result, once the fetch has ended, waiting at most `limit`
    /// (`None`: still running after `limit`).
    pub(crate) async fn result_within(
        &self,
        limit: Duration,
    ) -> Option<Result<Arc<Entry>, RefreshError>> {
        let wait = async {
            loop {
                let notified = self.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(result) = self.result.get() {
                    return result.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()
    }
}

/// What a caller does after looking at the cache under the flight lock.
pub(crate) enum Join {
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
