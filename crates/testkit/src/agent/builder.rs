//! [`FakeAgentBuilder`]: the fake's settings and its start-up.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::error::{check_lifetime, StartError};
use super::fake::FakeAgent;
use super::protocol::DEFAULT_LIFETIME;
use super::rate_limit::{RateLimit, TokenBucket};
use super::respond::handle;
use super::state::{Hook, Settings, Shared};
use super::stats::AgentStats;
use crate::creds::{self, Clock, Minter};
use crate::fault::FaultPlan;
use crate::server;
use crate::token::POD_IDENTITY_AUDIENCE;

/// Builder for [`FakeAgent`].
pub struct FakeAgentBuilder {
    binds: Vec<SocketAddr>,
    settings: Settings,
    rate_limit: Option<RateLimit>,
    minter: Minter,
    clock: Clock,
    on_expired_token: Option<Hook>,
}

impl std::fmt::Debug for FakeAgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAgentBuilder")
            .field("binds", &self.binds)
            .field("settings", &self.settings)
            .field("rate_limit", &self.rate_limit)
            .field("minter", &self.minter)
            .finish_non_exhaustive()
    }
}

impl FakeAgentBuilder {
    /// Listen on this address (may be called several times, e.g. v4 + v6).
    /// Default: `127.0.0.1:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.binds.push(addr);
        self
    }

    /// Credential lifetime (default [`DEFAULT_LIFETIME`]); must exceed 15 s.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.lifetime = lifetime;
        self
    }

    /// Associates `namespace`/`service_account` with `role_arn`.
    pub fn association(
        mut self,
        namespace: impl Into<String>,
        service_account: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        self.settings
            .associations
            .insert((namespace.into(), service_account.into()), role_arn.into());
        self
    }

    /// How credentials are minted (default [`Minter::Static`]).
    pub fn minter(mut self, minter: Minter) -> Self {
        self.minter = minter;
        self
    }

    /// Only accept these `Host` header values (403 otherwise); a value matches with
    /// or without a `:port` suffix. See [`REAL_AGENT_HOSTS`](super::REAL_AGENT_HOSTS). Default: no check.
    pub fn host_check<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.host_check = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Token bucket; `None` disables it. Default: [`RateLimit::default`] (1000/s, burst 500).
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Added latency before every answer (`tokio::time`, so paused time works).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.settings.latency = latency;
        self
    }

    /// Initial fault plan.
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.settings.faults = plan;
        self
    }

    /// Wall clock used for token expiry checks and `Expiration` (default `SystemTime::now`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Cache credentials per token like the real agent (refreshed when ≤ 15 s
    /// are left). Default: off, so every fetch mints.
    pub fn cache(mut self, on: bool) -> Self {
        self.settings.cache = on;
        self
    }

    /// The audience the token must carry (default `pods.eks.amazonaws.com`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audience = audience.into();
        self
    }

    /// Calls `hook` each time a token is rejected as expired, before the `400`
    /// is sent. A test can play the kubelet here: swap in a fresh token file at
    /// the very moment the old one is refused, so the client's immediate
    /// re-read must find it.
    pub fn on_expired_token(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_expired_token = Some(Arc::new(hook));
        self
    }

    /// Binds and starts serving. Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<FakeAgent, StartError> {
        check_lifetime(self.settings.lifetime)?;
        let binds = if self.binds.is_empty() {
            vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]
        } else {
            self.binds
        };
        let (listeners, addrs) = server::bind_all(&binds).await?;
        let (total_tx, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            seq: std::sync::atomic::AtomicU64::new(0),
            settings: Mutex::new(self.settings),
            limiter: Mutex::new(self.rate_limit.map(TokenBucket::new)),
            stats: Mutex::new(AgentStats::default()),
            cache: Mutex::new(HashMap::new()),
            total_tx,
            minter: self.minter,
            clock: self.clock,
            on_expired_token: self.on_expired_token,
        });
        let s = shared.clone();
        let handler: server::Handler =
            Arc::new(move |req, conn| Box::pin(handle(s.clone(), req, conn)));
        let server = server::serve(listeners, handler);
        Ok(FakeAgent {
            shared,
            addrs,
            _server: server,
        })
    }
}

impl FakeAgent {
    /// A builder with the defaults (127.0.0.1:0, 1 h lifetime, static minter, no
    /// associations, no host check, the agent's token bucket, no latency or faults).
    pub fn builder() -> FakeAgentBuilder {
        FakeAgentBuilder {
            binds: Vec::new(),
            settings: Settings {
                lifetime: DEFAULT_LIFETIME,
                associations: HashMap::new(),
                host_check: None,
                latency: Duration::ZERO,
                faults: FaultPlan::new(),
                cache: false,
                audience: POD_IDENTITY_AUDIENCE.to_owned(),
            },
            rate_limit: Some(RateLimit::default()),
            minter: Minter::Static,
            clock: creds::system_clock(),
            on_expired_token: None,
        }
    }
}
