//! The background task's liveness: whether one is running, and which one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The background task's liveness, shared with every [`TaskWatch`].
#[derive(Debug, Default)]
pub(crate) struct TaskState {
    pub(crate) alive: AtomicBool,
    /// Bumped for every task started; a task that is not the latest ends.
    pub(crate) generation: AtomicU64,
}

impl TaskState {
    /// Claims the right to start a task: `None` when one is alive and
    /// `force` is not set. The returned guard marks the task dead when it
    /// ends, unless a newer task replaced it.
    pub(crate) fn claim(self: &Arc<Self>, force: bool) -> Option<TaskAlive> {
        if force {
            self.alive.store(true, Ordering::Release);
        } else if self
            .alive
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Some(TaskAlive {
            task: self.clone(),
            generation,
        })
    }
}

/// Reports whether a cache's background task is running. Valid from the
/// moment the cache is built: it follows the task as it starts, ends with
/// a runtime, and restarts.
///
/// Cheap to clone; [`is_running`](Self::is_running) is one atomic load.
#[derive(Debug, Clone)]
pub struct TaskWatch(pub(crate) Arc<TaskState>);

impl TaskWatch {
    /// `true` while a background refresh task is alive. Lock-free.
    pub fn is_running(&self) -> bool {
        self.0.alive.load(Ordering::Acquire)
    }
}

/// Marks the task dead when it ends, however it ends (returned, or dropped
/// with its runtime), unless a newer task has replaced it.
pub(crate) struct TaskAlive {
    task: Arc<TaskState>,
    generation: u64,
}

impl TaskAlive {
    /// `false` once a newer task has been started: this one should end.
    pub(crate) fn is_current(&self) -> bool {
        self.task.generation.load(Ordering::Acquire) == self.generation
    }
}

impl Drop for TaskAlive {
    fn drop(&mut self) {
        if self.is_current() {
            self.task.alive.store(false, Ordering::Release);
        }
    }
}
