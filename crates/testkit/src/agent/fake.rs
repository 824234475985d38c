//! [`FakeAgent`]: a running fake agent — its addresses, counters, and the knobs
//! a test turns while it runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::error::{check_lifetime, StartError};
use super::protocol::CREDENTIALS_PATH;
use super::rate_limit::{RateLimit, TokenBucket};
use super::state::{lock, Shared};
use super::stats::AgentStats;
use crate::fault::{Fault, FaultPlan};
use crate::server;

/// A running fake Pod Identity Agent. Stops serving when dropped.
pub struct FakeAgent {
    pub(super) shared: Arc<Shared>,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) _server: server::Server,
}

impl std::fmt::Debug for FakeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAgent")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl FakeAgent {
    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every bound address, in `bind` order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The full credentials URI of the first address, e.g.
    /// `http://127.0.0.1:41234/v1/credentials`.
    pub fn uri(&self) -> String {
        Self::uri_for(self.addr())
    }

    /// The full credentials URI for `addr` (port 80 is omitted; IPv6 bracketed).
    pub fn uri_for(addr: SocketAddr) -> String {
        let auth = if addr.port() == 80 {
            match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        } else {
            server::authority(addr)
        };
        format!("http://{auth}{CREDENTIALS_PATH}")
    }

    /// A snapshot of the counters and the request log.
    pub fn stats(&self) -> AgentStats {
        lock(&self.shared.stats).clone()
    }

    /// Clears counters and the log (in-flight is kept).
    pub fn reset_stats(&self) {
        let mut s = lock(&self.shared.stats);
        let in_flight = s.in_flight;
        *s = AgentStats {
            in_flight,
            ..AgentStats::default()
        };
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        lock(&self.shared.settings).faults = plan;
    }

    /// Appends one fault to the current script.
    pub fn push_fault(&self, fault: Fault) {
        let mut s = lock(&self.shared.settings);
        let plan = std::mem::take(&mut s.faults);
        s.faults = plan.then(fault);
    }

    /// Changes the added latency.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.settings).latency = latency;
    }

    /// Changes the credential lifetime (must exceed 15 s).
    pub fn set_lifetime(&self, lifetime: Duration) -> Result<(), StartError> {
        check_lifetime(lifetime)?;
        lock(&self.shared.settings).lifetime = lifetime;
        Ok(())
    }

    /// Changes the `Host` check (`None` disables it).
    pub fn set_host_check(&self, hosts: Option<Vec<String>>) {
        lock(&self.shared.settings).host_check = hosts;
    }

    /// Changes the token bucket (`None` disables it); a new bucket starts full.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        *lock(&self.shared.limiter) = limit.map(TokenBucket::new);
    }

    /// Adds or replaces an association.
    pub fn add_association(&self, namespace: &str, service_account: &str, role_arn: &str) {
        lock(&self.shared.settings).associations.insert(
            (namespace.to_owned(), service_account.to_owned()),
            role_arn.to_owned(),
        );
    }

    /// Removes an association.
    pub fn remove_association(&self, namespace: &str, service_account: &str) {
        lock(&self.shared.settings)
            .associations
            .remove(&(namespace.to_owned(), service_account.to_owned()));
    }

    /// Empties the per-token credential cache.
    pub fn clear_cache(&self) {
        lock(&self.shared.cache).clear();
    }

    /// Waits until at least `n` requests have arrived since start (not affected by
    /// `reset_stats`); wrap it in a timeout.
    pub async fn wait_for_requests(&self, n: u64) {
        let mut rx = self.shared.total_tx.subscribe();
        let _ = rx.wait_for(|t| *t >= n).await;
    }

    /// Stops serving (same as dropping).
    pub fn shutdown(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            FakeAgent::uri_for("169.254.170.23:80".parse().unwrap()),
            "http://169.254.170.23/v1/credentials"
        );
        assert_eq!(
            FakeAgent::uri_for("[fd00:ec2::23]:80".parse().unwrap()),
            "http://[fd00:ec2::23]/v1/credentials"
        );
        assert_eq!(
            FakeAgent::uri_for("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/v1/credentials"
        );
    }
}
