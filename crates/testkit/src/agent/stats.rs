//! The fake's counters and request log.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// One logged request. Never contains a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Sequence number (1-based, in arrival order; survives [`FakeAgent::reset_stats`](super::FakeAgent::reset_stats)).
    pub id: u64,
    /// When it arrived (injected wall clock).
    pub at: SystemTime,
    /// HTTP method.
    pub method: String,
    /// Request path (query stripped).
    pub path: String,
    /// Status answered; `None` while pending, or when hung/dropped.
    pub status: Option<u16>,
    /// Name of the fault applied, if any ([`Fault::name`](crate::fault::Fault::name)).
    pub fault: Option<&'static str>,
    /// `Expiration` of the credentials answered (200 with a credentials
    /// document only). Not a secret: it lets a test tell which answer a client
    /// ended up using.
    pub expiration: Option<SystemTime>,
}

/// A snapshot of the agent's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Requests received (any path).
    pub total: u64,
    /// Answered requests by status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests currently being handled (including hung ones).
    pub in_flight: u64,
    /// Connections dropped on purpose.
    pub dropped: u64,
    /// Credentials minted (cache hits excluded).
    pub minted: u64,
    /// Every request, in arrival order.
    pub log: Vec<RequestRecord>,
}

impl AgentStats {
    /// Count of answers with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}
