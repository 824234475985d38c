//! [`FakeAgent`]: an HTTP server that behaves like the EKS Pod Identity Agent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eks_pod_identity_testkit::{agent::FakeAgent, token};
//! let agent = FakeAgent::builder()
//!     .association("my-app-namespace", "my-app-sa", "arn:aws:iam::123456789012:role/my-app-pod-identity-role")
//!     .start()
//!     .await?;
//! // AWS_CONTAINER_CREDENTIALS_FULL_URI = agent.uri()
//! let _jwt = token::mint("my-app-namespace", "my-app-sa");
//! assert_eq!(agent.stats().total, 0);
//! # Ok(()) }
//! ```
//!
//! Behaviour (in request order): optional per-request latency; path other than
//! `/v1/credentials` → 404; optional `Host` check → 403; token bucket → 429; the next
//! scripted/random [`Fault`]; token validation (empty / unparseable / expired → 400
//! with the agent's texts; wrong audience → 400 `InvalidTokenException`); association
//! lookup (none → 404 `ResourceNotFoundException`); credential minting (see
//! [`Minter`]). Errors are `text/plain` with a trailing newline, upstream-style ones
//! shaped `[<requestId>]: (<Code>): <message>, fault: client|server`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::Request;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::creds::{self, Clock, MintRequest, MintedCredentials, Minter};
use crate::fault::{Fault, FaultPlan};
use crate::server::{self, ConnInfo, Outcome, Resp};
use crate::timefmt;
use crate::token::{self, POD_IDENTITY_AUDIENCE};

/// The path the agent serves.
pub const CREDENTIALS_PATH: &str = "/v1/credentials";

/// The `Host` values the real agent accepts (its two listen addresses, port 80).
pub const REAL_AGENT_HOSTS: [&str; 2] = ["169.254.170.23", "[fd00:ec2::23]"];

/// Default credential lifetime handed out by the fake (1 h).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The agent never hands out credentials with this little (or less) left.
pub const MIN_REMAINING: Duration = Duration::from_secs(15);

/// Error text: no token.
pub const MSG_EMPTY: &str = "Service account token cannot be empty";
/// Error text: token not decodable.
pub const MSG_PARSE: &str = "Service account token cannot be parsed";
/// Error text: token expired.
pub const MSG_EXPIRED: &str =
    "Service account token failed basic claim validations: token is expired";
/// Error text: too many requests.
pub const MSG_TOO_MANY: &str = "Too Many Requests";

/// A token bucket like the agent's (`rate.NewLimiter(1000, 500)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Refill rate, tokens per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 1000.0,
            burst: 500,
        }
    }
}

#[derive(Debug)]
struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One logged request. Never contains a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Sequence number (1-based, in arrival order; survives [`FakeAgent::reset_stats`]).
    pub id: u64,
    /// When it arrived (injected wall clock).
    pub at: SystemTime,
    /// HTTP method.
    pub method: String,
    /// Request path (query stripped).
    pub path: String,
    /// Status answered; `None` while pending, or when hung/dropped.
    pub status: Option<u16>,
    /// Name of the fault applied, if any ([`Fault::name`]).
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

#[derive(Debug)]
struct Settings {
    lifetime: Duration,
    associations: HashMap<(String, String), String>,
    host_check: Option<Vec<String>>,
    latency: Duration,
    faults: FaultPlan,
    cache: bool,
    audience: String,
}

/// A callback of the fake (see [`FakeAgentBuilder::on_expired_token`]).
pub type Hook = Arc<dyn Fn() + Send + Sync>;

struct Shared {
    seq: std::sync::atomic::AtomicU64,
    settings: Mutex<Settings>,
    limiter: Mutex<Option<TokenBucket>>,
    stats: Mutex<AgentStats>,
    cache: Mutex<HashMap<String, MintedCredentials>>,
    total_tx: watch::Sender<u64>,
    minter: Minter,
    clock: Clock,
    on_expired_token: Option<Hook>,
}

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

/// Why [`FakeAgentBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An address could not be bound.
    #[error("fake agent: {0}")]
    Bind(#[from] std::io::Error),
    /// The configuration is impossible.
    #[error("fake agent: invalid configuration: {0}")]
    Config(String),
}

impl From<StartError> for std::io::Error {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Bind(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

fn check_lifetime(d: Duration) -> Result<(), StartError> {
    if d <= MIN_REMAINING {
        return Err(StartError::Config(format!(
            "lifetime {d:?} must exceed {MIN_REMAINING:?}: the real agent never hands out \
             credentials with <= 15 s left (use Fault::ExpiresIn to test that)"
        )));
    }
    Ok(())
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
    /// or without a `:port` suffix. See [`REAL_AGENT_HOSTS`]. Default: no check.
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

/// A running fake Pod Identity Agent. Stops serving when dropped.
pub struct FakeAgent {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    _server: server::Server,
}

impl std::fmt::Debug for FakeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAgent")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

struct InFlight<'a>(&'a Shared);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.0.stats).in_flight -= 1;
    }
}

/// The parts of a request the agent looks at (the body is ignored).
struct ReqInfo {
    path: String,
    host: Option<String>,
    authorization: Option<String>,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, _conn: Arc<ConnInfo>) -> Outcome {
    let info = ReqInfo {
        path: req.uri().path().to_owned(),
        host: req
            .headers()
            .get(hyper::header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned())),
        authorization: req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let method = req.method().to_string();
    drop(req);
    let id = shared
        .seq
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    {
        let mut st = lock(&shared.stats);
        st.total += 1;
        st.in_flight += 1;
        st.log.push(RequestRecord {
            id,
            at: (shared.clock)(),
            method,
            path: info.path.clone(),
            status: None,
            fault: None,
            expiration: None,
        });
        drop(st);
    }
    shared.total_tx.send_modify(|t| *t += 1);
    let _guard = InFlight(&shared);
    let (outcome, expiration) = match respond(&shared, &info, id).await {
        Answer::Plain(o) => (o, None),
        Answer::Credentials(o, exp) => (o, Some(exp)),
    };
    let mut st = lock(&shared.stats);
    match &outcome {
        Outcome::Respond(r) => {
            let code = r.status().as_u16();
            *st.by_status.entry(code).or_default() += 1;
            if let Some(rec) = st.log.iter_mut().rev().find(|r| r.id == id) {
                rec.status = Some(code);
                rec.expiration = expiration;
            }
        }
        Outcome::Drop => st.dropped += 1,
    }
    outcome
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        host == a
            || host.strip_prefix(a.as_str()).is_some_and(|rest| {
                rest.starts_with(':') && rest[1..].bytes().all(|b| b.is_ascii_digit())
            })
    })
}

fn upstream_error(status: u16, code: &str, message: &str, fault: &str) -> Resp {
    server::text(
        status,
        format!(
            "[{}]: ({code}): {message}, fault: {fault}",
            server::request_id()
        ),
    )
}

/// What [`respond`] produced: any answer, or a credentials document and its
/// `Expiration` (recorded in the request log).
enum Answer {
    Plain(Outcome),
    Credentials(Outcome, SystemTime),
}

impl From<Outcome> for Answer {
    fn from(o: Outcome) -> Self {
        Answer::Plain(o)
    }
}

fn plain(resp: Resp) -> Answer {
    Answer::Plain(Outcome::Respond(resp))
}

async fn respond(shared: &Shared, req: &ReqInfo, id: u64) -> Answer {
    let latency = lock(&shared.settings).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if req.path != CREDENTIALS_PATH {
        return plain(server::text(404, "404 page not found"));
    }
    let host_check = lock(&shared.settings).host_check.clone();
    if let Some(allowed) = host_check {
        let host = req.host.as_deref().unwrap_or("");
        if !host_allowed(host, &allowed) {
            return plain(server::text(403, "Forbidden: invalid Host header"));
        }
    }
    if let Some(bucket) = lock(&shared.limiter).as_mut() {
        if !bucket.try_take() {
            return plain(server::text(429, MSG_TOO_MANY));
        }
    }
    let fault = lock(&shared.settings).faults.next_fault();
    if let Some(f) = &fault {
        let mut st = lock(&shared.stats);
        if let Some(rec) = st.log.iter_mut().rev().find(|r| r.id == id) {
            rec.fault = Some(f.name());
        }
    }
    let mut expiry_override = None;
    match fault {
        None => {}
        Some(Fault::Status(code, body)) => return plain(server::text(code, body)),
        Some(Fault::TooManyRequests) => return plain(server::text(429, MSG_TOO_MANY)),
        Some(Fault::Hang) => return server::hang().await.into(),
        Some(Fault::Drop) => return Outcome::Drop.into(),
        Some(Fault::Malformed) => {
            return plain(server::raw(
                200,
                "application/json",
                "{\"AccessKeyId\": \"ASIA",
            ))
        }
        Some(Fault::Body(body)) => return plain(body.response()),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::ExpiredCredentials) => expiry_override = Some(None),
        Some(Fault::ExpiresIn(d)) => expiry_override = Some(Some(d)),
    }
    credentials(shared, req, expiry_override).await
}

/// `expiry_override`: `Some(None)` = already expired, `Some(Some(d))` = expires in `d`.
async fn credentials(
    shared: &Shared,
    req: &ReqInfo,
    expiry_override: Option<Option<Duration>>,
) -> Answer {
    let token = req
        .authorization
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if token.is_empty() {
        return plain(server::text(400, MSG_EMPTY));
    }
    let claims = match token::decode(&token) {
        Ok(c) if c.namespace().is_some() => c,
        _ => return plain(server::text(400, MSG_PARSE)),
    };
    let now = (shared.clock)();
    if claims.is_expired_at(now) {
        if let Some(hook) = &shared.on_expired_token {
            hook();
        }
        return plain(server::text(400, MSG_EXPIRED));
    }
    let (lifetime, audience, role, cache_on) = {
        let s = lock(&shared.settings);
        let key = (
            claims.namespace().unwrap_or_default().to_owned(),
            claims.service_account().unwrap_or_default().to_owned(),
        );
        (
            s.lifetime,
            s.audience.clone(),
            s.associations.get(&key).cloned(),
            s.cache,
        )
    };
    if !claims.has_audience(&audience) {
        return plain(upstream_error(
            400,
            "InvalidTokenException",
            &format!("The service account token audience is invalid: expected {audience}"),
            "client",
        ));
    }
    let ns = claims.namespace().unwrap_or_default();
    let sa = claims.service_account().unwrap_or_default();
    let Some(role_arn) = role else {
        return plain(upstream_error(
            404,
            "ResourceNotFoundException",
            &format!(
                "No Pod Identity Association found for service account {sa} in namespace {ns}"
            ),
            "client",
        ));
    };
    let use_cache = cache_on && expiry_override.is_none();
    if use_cache {
        if let Some(c) = lock(&shared.cache).get(&token) {
            if c.expiration
                .duration_since(now)
                .is_ok_and(|left| left > MIN_REMAINING)
            {
                return Answer::Credentials(Outcome::Respond(json_response(c)), c.expiration);
            }
        }
    }
    let mint = MintRequest {
        role_arn: &role_arn,
        session_name: creds::session_name(&format!("eks-{ns}-{sa}-{}", fastrand::u32(..))),
        lifetime,
        tags: vec![
            ("kubernetes-namespace".into(), ns.to_owned()),
            ("kubernetes-service-account".into(), sa.to_owned()),
        ],
    };
    let mut minted = match shared.minter.mint(mint, now).await {
        Ok(c) => c,
        Err(e) => return plain(upstream_error(e.status, &e.code, &e.message, e.fault)),
    };
    lock(&shared.stats).minted += 1;
    match expiry_override {
        Some(None) => minted.expiration = now - Duration::from_secs(60),
        Some(Some(d)) => minted.expiration = now + d,
        None => {}
    }
    if use_cache {
        lock(&shared.cache).insert(token, minted.clone());
    }
    Answer::Credentials(Outcome::Respond(json_response(&minted)), minted.expiration)
}

fn json_response(c: &MintedCredentials) -> Resp {
    let body = serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.session_token,
        "AccountId": c.account_id,
        "Expiration": timefmt::rfc3339_nano(c.expiration),
    });
    server::raw(200, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn token_bucket_refills_with_tokio_time() {
        let mut b = TokenBucket::new(RateLimit::default());
        for _ in 0..500 {
            assert!(b.try_take());
        }
        assert!(!b.try_take(), "burst of 500 exhausted");
        tokio::time::advance(Duration::from_millis(10)).await;
        for _ in 0..10 {
            assert!(b.try_take(), "1000/s refills 10 tokens in 10 ms");
        }
        assert!(!b.try_take());
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..500 {
            assert!(b.try_take());
        }
        assert!(!b.try_take(), "never more than the burst");
    }

    #[test]
    fn host_matching() {
        let allowed: Vec<String> = REAL_AGENT_HOSTS.iter().map(|s| s.to_string()).collect();
        assert!(host_allowed("169.254.170.23", &allowed));
        assert!(host_allowed("169.254.170.23:80", &allowed));
        assert!(host_allowed("[fd00:ec2::23]", &allowed));
        assert!(!host_allowed("127.0.0.1:80", &allowed));
        assert!(!host_allowed("169.254.170.230", &allowed));
        assert!(!host_allowed("169.254.170.23:x", &allowed));
    }

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
