//! [`FakeImds`]: an EC2 Instance Metadata Service (IMDSv2) stand-in.
//!
//! - `PUT /latest/api/token` needs `X-aws-ec2-metadata-token-ttl-seconds`
//!   (1..=[`MAX_TOKEN_TTL_SECS`], 400 otherwise) and answers a token plus the same TTL header (which can be
//!   omitted to emulate moto's broken IMDS).
//! - GETs need a valid, unexpired `X-aws-ec2-metadata-token` (401 otherwise) unless
//!   IMDSv1 is enabled (then a missing token is fine; a bad one is still 401).
//! - `GET /latest/meta-data/iam/security-credentials/` → the role name (404 in
//!   "no role" mode); `.../security-credentials/<role>` → the credentials JSON.
//! - Modes: [`ImdsMode::HangPut`] accepts the connection and never answers the PUT
//!   (what hop limit 1 looks like from a pod); [`ImdsMode::Disabled`] → 403.
//! - [`FakeImdsBuilder::hop_limit`] sets `IP_TTL` / `IPV6_UNICAST_HOPS` on the accepted
//!   socket just before answering the token PUT: inside network namespaces this is a
//!   real hop limit.
//!
//! Token expiry uses `tokio::time`, so paused-time tests work.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::creds::{self, Clock, MintRequest, Minter, ACCOUNT_ID};
use crate::fault::{Fault, FaultPlan};
use crate::server::{self, ConnInfo, Outcome};
use crate::timefmt;

/// Token path.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// Role-list path.
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
/// TTL request/response header.
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Token header.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// The longest token TTL IMDS grants (6 h); a longer (or zero) request is a 400.
pub const MAX_TOKEN_TTL_SECS: u64 = 21_600;
/// Default role name.
pub const DEFAULT_ROLE_NAME: &str = "node-role";
/// Default instance id (used as the STS session name).
pub const DEFAULT_INSTANCE_ID: &str = "i-0123456789abcdef0";
/// Default credential lifetime (6 h, like EC2 instance-profile credentials).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// How the metadata service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ImdsMode {
    /// Normal IMDSv2.
    #[default]
    Normal,
    /// Accept connections, never answer the token PUT (hop limit 1 seen from a pod).
    HangPut,
    /// `http_endpoint = disabled`: 403 on everything.
    Disabled,
}

/// One logged request (no token values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsRecord {
    /// Sequence number (1-based, in arrival order).
    pub id: u64,
    /// Arrival time (injected wall clock).
    pub at: SystemTime,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Whether an `X-aws-ec2-metadata-token` header was sent.
    pub had_token: bool,
    /// Status answered; `None` while pending or when hung/dropped.
    pub status: Option<u16>,
}

/// Counters and request log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImdsStats {
    /// All requests.
    pub total: u64,
    /// Token PUTs.
    pub token_puts: u64,
    /// Credential documents served.
    pub credentials_served: u64,
    /// Answers by status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests in progress (including hung ones).
    pub in_flight: u64,
    /// Every request in arrival order.
    pub log: Vec<ImdsRecord>,
    /// For each answered token PUT, the hop limit (`IP_TTL` / `IPV6_UNICAST_HOPS`)
    /// read back with `getsockopt` from the accepted socket just before the answer:
    /// what the answer's packets leave with (the kernel default, usually 64, when
    /// no [`FakeImdsBuilder::hop_limit`] is set).
    pub put_hop_limits: Vec<u32>,
}

impl ImdsStats {
    /// Count of answers with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct Role {
    name: String,
    arn: String,
}

#[derive(Debug)]
struct Settings {
    mode: ImdsMode,
    imdsv1: bool,
    role: Role,
    no_role: bool,
    omit_ttl_header: bool,
    token_ttl_override: Option<Duration>,
    hop_limit: Option<u32>,
    serve_expired: bool,
    lifetime: Duration,
    faults: FaultPlan,
    instance_id: String,
}

struct Shared {
    seq: std::sync::atomic::AtomicU64,
    settings: Mutex<Settings>,
    tokens: Mutex<HashMap<String, Instant>>,
    stats: Mutex<ImdsStats>,
    total_tx: watch::Sender<u64>,
    minter: Minter,
    clock: Clock,
}

/// Builder for [`FakeImds`].
pub struct FakeImdsBuilder {
    binds: Vec<SocketAddr>,
    settings: Settings,
    minter: Minter,
    clock: Clock,
}

impl std::fmt::Debug for FakeImdsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeImdsBuilder")
            .field("binds", &self.binds)
            .field("settings", &self.settings)
            .field("minter", &self.minter)
            .finish_non_exhaustive()
    }
}

impl FakeImdsBuilder {
    /// Listen on this address (repeatable). Default `127.0.0.1:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.binds.push(addr);
        self
    }

    /// The instance-profile role: its name (served on the role list) and the ARN
    /// assumed by an STS minter. Default `node-role` in account 123456789012.
    pub fn role(mut self, name: impl Into<String>, arn: impl Into<String>) -> Self {
        self.settings.role = Role {
            name: name.into(),
            arn: arn.into(),
        };
        self
    }

    /// No instance profile: 404 on the role list.
    pub fn no_role(mut self, on: bool) -> Self {
        self.settings.no_role = on;
        self
    }

    /// Credential minting (default [`Minter::Static`]).
    pub fn minter(mut self, minter: Minter) -> Self {
        self.minter = minter;
        self
    }

    /// Accept GETs without a token (IMDSv1). Default off.
    pub fn imdsv1(mut self, on: bool) -> Self {
        self.settings.imdsv1 = on;
        self
    }

    /// Answering mode.
    pub fn mode(mut self, mode: ImdsMode) -> Self {
        self.settings.mode = mode;
        self
    }

    /// Omit the TTL header on the token response (moto's IMDS does).
    pub fn omit_ttl_header(mut self, on: bool) -> Self {
        self.settings.omit_ttl_header = on;
        self
    }

    /// Issue tokens with this TTL regardless of what the client asked for.
    pub fn token_ttl_override(mut self, ttl: Option<Duration>) -> Self {
        self.settings.token_ttl_override = ttl;
        self
    }

    /// Set the accepted socket's IP TTL / IPv6 unicast hops to this value just
    /// before answering a token PUT (the EC2 `http_put_response_hop_limit`).
    pub fn hop_limit(mut self, hops: Option<u32>) -> Self {
        self.settings.hop_limit = hops;
        self
    }

    /// Serve credentials that already expired.
    pub fn serve_expired(mut self, on: bool) -> Self {
        self.settings.serve_expired = on;
        self
    }

    /// Credential lifetime (default 6 h).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.lifetime = lifetime;
        self
    }

    /// Fault plan (applies to every request).
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.settings.faults = plan;
        self
    }

    /// Instance id (default [`DEFAULT_INSTANCE_ID`]).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.settings.instance_id = id.into();
        self
    }

    /// Wall clock for `LastUpdated` / `Expiration` (default `SystemTime::now`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Binds and starts serving.
    pub async fn start(self) -> std::io::Result<FakeImds> {
        let binds = if self.binds.is_empty() {
            vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]
        } else {
            self.binds
        };
        let (listeners, addrs) = server::bind_all(&binds).await?;
        let (total_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            seq: std::sync::atomic::AtomicU64::new(0),
            settings: Mutex::new(self.settings),
            tokens: Mutex::new(HashMap::new()),
            stats: Mutex::new(ImdsStats::default()),
            total_tx,
            minter: self.minter,
            clock: self.clock,
        });
        let s = shared.clone();
        let handler: server::Handler =
            Arc::new(move |req, conn| Box::pin(handle(s.clone(), req, conn)));
        Ok(FakeImds {
            _server: server::serve(listeners, handler),
            shared,
            addrs,
        })
    }
}

/// A running fake IMDS. Stops serving when dropped.
pub struct FakeImds {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    _server: server::Server,
}

impl std::fmt::Debug for FakeImds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeImds")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeImds {
    /// Defaults: 127.0.0.1:0, normal IMDSv2 only, role `node-role`, static minter.
    pub fn builder() -> FakeImdsBuilder {
        FakeImdsBuilder {
            binds: Vec::new(),
            settings: Settings {
                mode: ImdsMode::Normal,
                imdsv1: false,
                role: Role {
                    name: DEFAULT_ROLE_NAME.into(),
                    arn: format!("arn:aws:iam::{ACCOUNT_ID}:role/{DEFAULT_ROLE_NAME}"),
                },
                no_role: false,
                omit_ttl_header: false,
                token_ttl_override: None,
                hop_limit: None,
                serve_expired: false,
                lifetime: DEFAULT_LIFETIME,
                faults: FaultPlan::new(),
                instance_id: DEFAULT_INSTANCE_ID.into(),
            },
            minter: Minter::Static,
            clock: creds::system_clock(),
        }
    }

    /// First bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// All bound addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Endpoint URL of the first address, e.g. `http://127.0.0.1:41234` (port 80
    /// omitted), as `AWS_EC2_METADATA_SERVICE_ENDPOINT` expects.
    pub fn endpoint(&self) -> String {
        let a = self.addr();
        if a.port() == 80 {
            match a {
                SocketAddr::V4(a) => format!("http://{}", a.ip()),
                SocketAddr::V6(a) => format!("http://[{}]", a.ip()),
            }
        } else {
            format!("http://{}", server::authority(a))
        }
    }

    /// Snapshot of counters and the log.
    pub fn stats(&self) -> ImdsStats {
        lock(&self.shared.stats).clone()
    }

    /// Whether any request ever arrived.
    pub fn was_contacted(&self) -> bool {
        self.stats().total > 0
    }

    /// Waits until at least `n` requests have arrived since start; wrap it in a timeout.
    pub async fn wait_for_requests(&self, n: u64) {
        let mut rx = self.shared.total_tx.subscribe();
        let _ = rx.wait_for(|t| *t >= n).await;
    }

    /// Changes the mode.
    pub fn set_mode(&self, mode: ImdsMode) {
        lock(&self.shared.settings).mode = mode;
    }

    /// Toggles IMDSv1.
    pub fn set_imdsv1(&self, on: bool) {
        lock(&self.shared.settings).imdsv1 = on;
    }

    /// Renames the role (the ARN used for minting is unchanged).
    pub fn rename_role(&self, name: impl Into<String>) {
        lock(&self.shared.settings).role.name = name.into();
    }

    /// Toggles "no instance profile".
    pub fn set_no_role(&self, on: bool) {
        lock(&self.shared.settings).no_role = on;
    }

    /// Toggles serving expired credentials.
    pub fn set_serve_expired(&self, on: bool) {
        lock(&self.shared.settings).serve_expired = on;
    }

    /// Changes the token TTL override.
    pub fn set_token_ttl_override(&self, ttl: Option<Duration>) {
        lock(&self.shared.settings).token_ttl_override = ttl;
    }

    /// Toggles omitting the TTL response header.
    pub fn set_omit_ttl_header(&self, on: bool) {
        lock(&self.shared.settings).omit_ttl_header = on;
    }

    /// Changes the hop limit applied to token PUT answers.
    pub fn set_hop_limit(&self, hops: Option<u32>) {
        lock(&self.shared.settings).hop_limit = hops;
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        lock(&self.shared.settings).faults = plan;
    }

    /// Invalidates every issued token (the next GET with one gets 401).
    pub fn invalidate_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    /// Stops serving (same as dropping).
    pub fn shutdown(self) {}
}

struct ReqInfo {
    method: Method,
    path: String,
    ttl: Option<String>,
    token: Option<String>,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Outcome {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let info = ReqInfo {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        ttl: header(TTL_HEADER),
        token: header(TOKEN_HEADER),
    };
    drop(req);
    let (id, _in_flight) = server::arrive(&shared.seq, &shared.stats, &shared.total_tx, |id| {
        ImdsRecord {
            id,
            at: (shared.clock)(),
            method: info.method.to_string(),
            path: info.path.clone(),
            had_token: info.token.is_some(),
            status: None,
        }
    });
    let outcome = respond(&shared, &info, &conn).await;
    server::answered(&mut *lock(&shared.stats), id, &outcome);
    outcome
}

crate::server::impl_request_stats!(ImdsStats, ImdsRecord);

fn set_hops(sock: &std::net::TcpStream, hops: u32) {
    let v6 = sock.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
    let res = if v6 {
        socket2::SockRef::from(sock).set_unicast_hops_v6(hops)
    } else {
        sock.set_ttl(hops)
    };
    if let Err(e) = res {
        tracing::warn!(error = %e, hops, "fake IMDS: cannot set hop limit on socket");
    }
}

/// The socket's current hop limit, read back from the kernel.
fn hops_of(sock: &std::net::TcpStream) -> Option<u32> {
    let v6 = sock.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
    let res = if v6 {
        socket2::SockRef::from(sock).unicast_hops_v6()
    } else {
        sock.ttl()
    };
    res.map_err(|e| tracing::warn!(error = %e, "fake IMDS: cannot read the hop limit"))
        .ok()
}

fn token_value() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..56)
        .map(|_| A[fastrand::usize(..A.len())] as char)
        .collect()
}

async fn respond(shared: &Shared, req: &ReqInfo, conn: &ConnInfo) -> Outcome {
    let (mode, fault) = {
        let mut s = lock(&shared.settings);
        (s.mode, s.faults.next_fault())
    };
    if mode == ImdsMode::Disabled {
        return Outcome::Respond(server::text(403, "Forbidden"));
    }
    let mut expired_override = None;
    match fault {
        None => {}
        Some(Fault::Status(code, body)) => return Outcome::Respond(server::text(code, body)),
        Some(Fault::TooManyRequests) => {
            return Outcome::Respond(server::text(429, "Too Many Requests"))
        }
        Some(Fault::Hang) => return server::hang().await,
        Some(Fault::Drop) => return Outcome::Drop,
        Some(Fault::Malformed) => {
            return Outcome::Respond(server::raw(200, "text/plain", "{\"Code\": \"Succ"))
        }
        Some(Fault::Body(body)) => return Outcome::Respond(body.response()),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::ExpiredCredentials) => expired_override = Some(None),
        Some(Fault::ExpiresIn(d)) => expired_override = Some(Some(d)),
    }

    if req.path == TOKEN_PATH {
        if req.method != Method::PUT {
            return Outcome::Respond(server::text(405, "Method Not Allowed"));
        }
        if mode == ImdsMode::HangPut {
            return server::hang().await;
        }
        let requested = req
            .ttl
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| (1..=MAX_TOKEN_TTL_SECS).contains(v));
        let Some(requested) = requested else {
            return Outcome::Respond(server::text(400, "Bad Request"));
        };
        let (ttl, omit, hops) = {
            let s = lock(&shared.settings);
            (
                s.token_ttl_override
                    .unwrap_or(Duration::from_secs(requested)),
                s.omit_ttl_header,
                s.hop_limit,
            )
        };
        let token = token_value();
        lock(&shared.tokens).insert(token.clone(), Instant::now() + ttl);
        if let Some(h) = hops {
            set_hops(&conn.socket, h);
        }
        {
            let mut st = lock(&shared.stats);
            st.token_puts += 1;
            st.put_hop_limits.extend(hops_of(&conn.socket));
        }
        let mut resp = server::raw(200, "text/plain", token);
        if !omit {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&ttl.as_secs().to_string()) {
                resp.headers_mut().insert(TTL_HEADER, v);
            }
        }
        return Outcome::Respond(resp);
    }

    if req.method != Method::GET && req.method != Method::HEAD {
        return Outcome::Respond(server::text(405, "Method Not Allowed"));
    }
    let imdsv1 = lock(&shared.settings).imdsv1;
    match &req.token {
        Some(t) => {
            let valid = lock(&shared.tokens)
                .get(t.trim())
                .is_some_and(|exp| Instant::now() < *exp);
            if !valid {
                return Outcome::Respond(server::text(401, "Unauthorized"));
            }
        }
        None if imdsv1 => {}
        None => return Outcome::Respond(server::text(401, "Unauthorized")),
    }
    get(shared, &req.path, expired_override).await
}

async fn get(shared: &Shared, path: &str, expired_override: Option<Option<Duration>>) -> Outcome {
    let (role, no_role, lifetime, serve_expired, instance_id) = {
        let s = lock(&shared.settings);
        (
            s.role.clone(),
            s.no_role,
            s.lifetime,
            s.serve_expired,
            s.instance_id.clone(),
        )
    };
    let not_found = || Outcome::Respond(server::text(404, "Not Found"));
    match path {
        "/latest/meta-data/" | "/latest/meta-data" => Outcome::Respond(server::raw(
            200,
            "text/plain",
            "ami-id\niam/\ninstance-id\nplacement/",
        )),
        "/latest/meta-data/instance-id" => {
            Outcome::Respond(server::raw(200, "text/plain", instance_id))
        }
        "/latest/meta-data/iam/security-credentials/"
        | "/latest/meta-data/iam/security-credentials" => {
            if no_role {
                not_found()
            } else {
                Outcome::Respond(server::raw(200, "text/plain", role.name))
            }
        }
        "/latest/meta-data/iam/info" => {
            if no_role {
                return not_found();
            }
            let now = (shared.clock)();
            let profile = role.arn.replace(":role/", ":instance-profile/");
            let body = serde_json::json!({
                "Code": "Success",
                "LastUpdated": timefmt::imds(now),
                "InstanceProfileArn": profile,
                "InstanceProfileId": "AIPAEXAMPLEINSTANCEPROFILE",
            });
            Outcome::Respond(server::raw(200, "text/plain", body.to_string()))
        }
        p => {
            let Some(name) = p.strip_prefix(CREDENTIALS_PATH) else {
                return not_found();
            };
            if no_role || name != role.name {
                return not_found();
            }
            let now = (shared.clock)();
            let req = MintRequest {
                role_arn: &role.arn,
                session_name: creds::session_name(&instance_id),
                lifetime,
                tags: Vec::new(),
            };
            let mut c = match shared.minter.mint(req, now).await {
                Ok(c) => c,
                Err(e) => return Outcome::Respond(server::text(500, e.to_string())),
            };
            match expired_override {
                Some(None) => c.expiration = now - Duration::from_secs(3600),
                Some(Some(d)) => c.expiration = now + d,
                None if serve_expired => c.expiration = now - Duration::from_secs(3600),
                None => {}
            }
            lock(&shared.stats).credentials_served += 1;
            let body = serde_json::json!({
                "Code": "Success",
                "LastUpdated": timefmt::imds(now),
                "Type": "AWS-HMAC",
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key,
                "Token": c.session_token,
                "Expiration": timefmt::imds(c.expiration),
            });
            Outcome::Respond(server::raw(200, "text/plain", body.to_string()))
        }
    }
}
