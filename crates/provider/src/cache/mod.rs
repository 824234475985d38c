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
//!
//! Files, from the bottom up: [`schedule`] (when to refresh, pure),
//! [`entry`] (what is cached), [`flight`] (one fetch in progress),
//! [`task`] (the background task's liveness), [`state`] (what every handle
//! shares, and how a fetch updates it), [`background`] (the refresher task),
//! [`refreshing`] (the public handle) and [`sdk_identity`] (the handle as
//! the SDK's identity cache). This module depends only on the source trait,
//! the clock and randomness seams, the error types and `Status`.

pub(crate) mod background;
pub(crate) mod entry;
pub(crate) mod flight;
pub(crate) mod refreshing;
pub(crate) mod schedule;
pub(crate) mod sdk_identity;
pub(crate) mod state;
pub(crate) mod task;
