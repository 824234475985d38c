//! What the builder, the handle and the server tasks share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::rate_limit::TokenBucket;
use super::stats::AgentStats;
use crate::creds::{Clock, MintedCredentials, Minter};
use crate::fault::FaultPlan;

#[derive(Debug)]
pub(super) struct Settings {
    pub(super) lifetime: Duration,
    pub(super) associations: HashMap<(String, String), String>,
    pub(super) host_check: Option<Vec<String>>,
    pub(super) latency: Duration,
    pub(super) faults: FaultPlan,
    pub(super) cache: bool,
    pub(super) audience: String,
}

/// A callback of the fake (see [`FakeAgentBuilder::on_expired_token`](super::FakeAgentBuilder::on_expired_token)).
pub type Hook = Arc<dyn Fn() + Send + Sync>;

pub(super) struct Shared {
    pub(super) seq: std::sync::atomic::AtomicU64,
    pub(super) settings: Mutex<Settings>,
    pub(super) limiter: Mutex<Option<TokenBucket>>,
    pub(super) stats: Mutex<AgentStats>,
    pub(super) cache: Mutex<HashMap<String, MintedCredentials>>,
    pub(super) total_tx: watch::Sender<u64>,
    pub(super) minter: Minter,
    pub(super) clock: Clock,
    pub(super) on_expired_token: Option<Hook>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
