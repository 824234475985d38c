//! The background refresher: started by the first caller, restarted on a
//! caller's runtime when the runtime that ran it shut down or is no longer
//! driven.

use super::flight::Join;
use super::state::{epoch_millis, Inner};
use super::task::TaskAlive;
use crate::source::CredentialSource;
use crate::support::time::sleep_until;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// The background task never retries sooner than this after an attempt.
const MIN_RETRY: Duration = Duration::from_millis(100);

/// Starts the background task if none is alive (the first call, or the
/// runtime that ran it has shut down), or restarts it here if it is
/// overdue at `now` (its runtime is alive but no longer driven). Two
/// atomic loads when it runs.
#[inline]
pub(crate) fn ensure_task<S: CredentialSource>(inner: &Arc<Inner<S>>, now: SystemTime) {
    if !inner.task.alive.load(Ordering::Acquire) {
        start_task(inner, false);
    } else if epoch_millis(now) > inner.task_overdue_at.load(Ordering::Relaxed) {
        restart_stalled_task(inner);
    }
}

/// A task that should have refreshed long ago lives on a runtime that is
/// no longer driven: start another one here. One caller restarts it per
/// overdue period.
#[cold]
pub(crate) fn restart_stalled_task<S: CredentialSource>(inner: &Arc<Inner<S>>) {
    let now = inner.clock.now();
    let overdue = inner
        .next_wakeup()
        .and_then(|due| now.duration_since(due).ok())
        .is_some_and(|late| late > inner.wait_limit());
    let idle = inner
        .flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_none();
    if !(overdue && idle && inner.task.alive.load(Ordering::Acquire)) {
        return;
    }
    // Push the mark forward before restarting, so that the callers that
    // saw it passed restart the task once, not once each.
    let mark = &inner.task_overdue_at;
    let seen = mark.load(Ordering::Acquire);
    let next_mark = epoch_millis(now + inner.wait_limit());
    if seen >= next_mark
        || mark
            .compare_exchange(seen, next_mark, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    tracing::warn!(
        source = inner.source.name(),
        "background refresh is overdue (its runtime is not running); restarting it on this runtime"
    );
    start_task(inner, true);
}

#[cold]
fn start_task<S: CredentialSource>(inner: &Arc<Inner<S>>, force: bool) {
    let Ok(handle) = Handle::try_current() else {
        return;
    };
    // The guard is built here and moved into the task, not built inside
    // it: a runtime that shuts down before it ever polls the task still
    // drops it, and the next caller restarts the task.
    let Some(alive) = inner.task.claim(force) else {
        return;
    };
    handle.spawn(refresher(Arc::downgrade(inner), inner.wake.clone(), alive));
}

/// The background refresher. Holds the cache only through `Weak` while it
/// sleeps, so dropping the last handle ends it; while it waits for a
/// refresh it holds a strong reference, for at most the fetch deadline plus
/// a margin. Every turn of its loop awaits a sleep, a wake-up or a fetch, so
/// it cannot spin.
async fn refresher<S: CredentialSource>(weak: Weak<Inner<S>>, wake: Arc<Notify>, alive: TaskAlive) {
    loop {
        if !alive.is_current() {
            return;
        }
        let (due, clock) = {
            let Some(inner) = weak.upgrade() else { return };
            (inner.next_wakeup(), inner.clock.clone())
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
        if !alive.is_current() {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        if !inner.refresh_due(inner.clock.now()) {
            continue;
        }
        tracing::debug!(source = inner.source.name(), "proactive refresh");
        if let Join::Wait(flight) = inner.join_flight(false) {
            let _ = inner.wait(&flight).await;
        }
        // Whatever happened, never loop straight back into a due refresh.
        let still_due = inner.refresh_due(inner.clock.now());
        drop(inner);
        if still_due {
            tokio::time::sleep(MIN_RETRY).await;
        }
    }
}
