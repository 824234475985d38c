//! The fault matrix: one table of faults, one runner. Shared by
//! `fault_matrix.rs` (behaviour) and `security.rs` (secret hygiene over the
//! same faults).
//!
//! Runtime cases follow one script:
//! 1. prime the provider with valid 1 h credentials from a healthy peer;
//! 2. inject the fault and move the injected clock 30 s before expiry
//!    (inside the 60 s mandatory window) so the next call must fetch from
//!    the faulty peer: it must still return the cached credentials and
//!    record the typed error kind in `status()` (or recover with new ones);
//! 3. move the clock past expiry: the call must fail with the same kind
//!    (expired credentials are never served).
//!
//! Peers are real sockets on 127.0.0.1/[::1] in real time; credential time
//! comes from an injected manual clock, so expiry is exact and no test sleeps.
//! Hangs end on short client deadlines.
//!
//! Include with `#[path = "common/matrix.rs"] mod matrix;` next to
//! `#[path = "common/peer.rs"] mod peer;`.
#![allow(dead_code)]

use crate::peer::{Peer, Reply, Req};
use aws_credential_types::Credentials;
use eks_pod_identity_provider::config::{vars, MapEnv};
use eks_pod_identity_provider::context::{Clock, HostResolver, RandomSource};
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{
    AgentError, BuildError, Classify, ErrorKind, ImdsError, PodIdentityProvider, ProviderContext,
    RefreshError, RefreshPolicy, RetryPolicy, Status,
};
use eks_pod_identity_provider::{ImdsOptions, ImdsSource};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYMATRIXSECRET";
pub const SESSION: &str = "FwoGZXIvYXdzEMATRIXSESSIONTOKENxyz";
pub const TOKEN_A: &str = "eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYWxwaGE.sigALPHA";
pub const TOKEN_B: &str = "eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO";
pub const IMDS_TOKEN_1: &str = "AQAEAimdsSessionTokenOne==";
pub const IMDS_TOKEN_2: &str = "AQAEAimdsSessionTokenTwo==";
/// Every secret a test hands to the provider or a peer.
pub const SECRETS: &[&str] = &[
    SECRET,
    SESSION,
    TOKEN_A,
    TOKEN_B,
    IMDS_TOKEN_1,
    IMDS_TOKEN_2,
];

const HOUR: Duration = Duration::from_secs(3600);
const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
const AGENT_PATH: &str = "/v1/credentials";

// ---- injected clock, randomness, resolver --------------------------------

/// A wall clock the test moves by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    pub fn new(at: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// Always the same draw: jitter at the top of its range, so background
/// retries after a failure come late (seconds) and never race a case.
#[derive(Debug)]
pub struct Fixed(pub f64);

impl RandomSource for Fixed {
    fn unit(&self) -> f64 {
        self.0
    }
}

/// A resolver whose answers the test changes between fetches.
#[derive(Debug, Clone, Default)]
pub struct MapResolver(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>);

impl MapResolver {
    pub fn set(&self, host: &str, addrs: &[&str]) {
        self.0.lock().unwrap().insert(
            host.to_owned(),
            addrs.iter().map(|a| a.parse().unwrap()).collect(),
        );
    }
}

impl HostResolver for MapResolver {
    fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let r = self
            .0
            .lock()
            .unwrap()
            .get(&host)
            .cloned()
            .ok_or_else(|| std::io::Error::other("unknown host"));
        Box::pin(async move { r })
    }
}

// ---- documents -------------------------------------------------------------

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn agent_doc(n: usize, expiration: &str) -> String {
    serde_json::json!({
        "AccessKeyId": format!("ASIAMATRIX{n:08}"),
        "SecretAccessKey": SECRET,
        "Token": SESSION,
        "AccountId": "123456789012",
        "Expiration": expiration,
    })
    .to_string()
}

fn fmt(t: SystemTime) -> String {
    eks_pod_identity_provider::test_util::parsers::rfc3339::format(t)
}

/// `t` in RFC 3339 with the given UTC offset in minutes (independent of
/// the provider's formatter).
fn with_offset(t: SystemTime, minutes: i32) -> String {
    let odt = time::OffsetDateTime::from(t)
        .to_offset(time::UtcOffset::from_whole_seconds(minutes * 60).unwrap());
    odt.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A body with every required field present except `drop`, or with
/// `replace` overriding one field's JSON value.
fn doc_with(n: usize, exp: SystemTime, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&agent_doc(n, &fmt(exp))).unwrap();
    edit(&mut v);
    v.to_string()
}

// ---- the table -------------------------------------------------------------

/// What the case expects.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The faulty fetch still yields new, valid credentials (optionally with
    /// this exact expiry).
    Recover(Option<SystemTime>),
    /// The fetch fails with this kind; cached credentials are served until
    /// expiry, then the same kind is returned.
    Fail(ErrorKind),
    /// Building fails with this kind (env cases).
    Build(ErrorKind),
    /// Building succeeds with this endpoint (env cases).
    BuildOk(&'static str),
}

/// The faults.
#[derive(Debug, Clone)]
pub enum Fault {
    // -- agent peer --
    Refused,
    Blackhole,
    Reply(Reply),
    /// The first `n` requests get `reply`, then the peer is healthy again.
    ReplyThenOk(usize, Reply),
    /// A 200 document built from the fault-time clock.
    Body(fn(usize, SystemTime) -> String),
    /// A 200 document whose Expiration is this many seconds after "now"
    /// (negative: in the past).
    ValidFor(i64),
    /// Expiration = whole seconds + `digits` fractional digits.
    Fraction(usize),
    /// Expiration written with this UTC offset (minutes).
    Offset(i32),
    /// The agent answers 400 "token is expired" to TOKEN_A; with `rotate`
    /// the kubelet rotates the file to TOKEN_B meanwhile.
    TokenExpired {
        rotate: bool,
    },
    /// 307 to another path of the same peer.
    Redirect,
    // -- token file --
    TokenMissing,
    TokenContent(&'static [u8]),
    /// The file now holds TOKEN_B; the agent accepts only TOKEN_B.
    TokenRotated,
    /// The token path is now a directory (unreadable, even for root).
    TokenIsDirectory,
    TokenOversize,
    // -- env / resolution --
    /// The endpoint hostname now also resolves to a refused address.
    ResolvesToRefused,
    // -- IMDS peer --
    ImdsPutHang,
    ImdsPut403,
    /// Every GET with the old session token gets 401; a new PUT gives a new one.
    Imds401MidRun {
        recover: bool,
    },
    ImdsRoles404,
    ImdsRolesEmpty,
    ImdsRoleRenamed,
    ImdsTtlMissing,
    ImdsV1Only,
    Imds500,
    ImdsNotSuccess,
    ImdsExpired,
    ImdsStreamForever,
}

/// Where a runtime case's peer lives and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Agent,
    /// The agent on `[::1]` (an IPv6 literal endpoint).
    AgentV6,
    /// The agent behind hostname `agent.test`, resolved by an injected resolver.
    AgentByName,
    Imds,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub kind: CaseKind,
    pub expect: Expect,
    /// Requests the peer must receive during the faulty fetch.
    pub requests: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum CaseKind {
    Runtime(Target, Fault),
    /// Build from these environment variables.
    Env(Vec<(&'static str, String)>),
    /// Build with this endpoint, then fetch once with no cache (the https
    /// case: the token must never reach the wire in clear text).
    Cold(String),
}

fn rt(name: &'static str, fault: Fault, expect: Expect, requests: Option<usize>) -> Case {
    Case {
        name,
        kind: CaseKind::Runtime(Target::Agent, fault),
        expect,
        requests,
    }
}

fn on(target: Target, mut case: Case) -> Case {
    if let CaseKind::Runtime(_, f) = case.kind {
        case.kind = CaseKind::Runtime(target, f);
    }
    case
}

fn env(name: &'static str, pairs: &[(&'static str, &str)], expect: Expect) -> Case {
    Case {
        name,
        kind: CaseKind::Env(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()),
        expect,
        requests: Some(0),
    }
}

/// The whole matrix.
pub fn cases() -> Vec<Case> {
    use ErrorKind as K;
    use Expect::*;
    use Fault as F;
    let fail = Fail;
    let mut v = vec![
        // --- agent transport ---
        rt(
            "agent: connection refused",
            F::Refused,
            fail(K::Connect),
            Some(0),
        ),
        rt(
            "agent: connect timeout (SYN dropped, full accept queue)",
            F::Blackhole,
            fail(K::Timeout),
            Some(0),
        ),
        rt(
            "agent: slow headers (no answer)",
            F::Reply(Reply::Hang),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: slow headers (status line, then stall)",
            F::Reply(Reply::PartialHeaders),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: slow body (stalls mid-body)",
            F::Reply(Reply::SlowBody),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: truncated body, then close (a transport error, retried)",
            F::Reply(Reply::TruncatedBody),
            fail(K::Transport),
            Some(3),
        ),
        rt(
            "agent: closes without answering",
            F::Reply(Reply::Close),
            fail(K::Transport),
            Some(3),
        ),
        // --- agent statuses ---
        rt(
            "agent: 500",
            F::Reply(Reply::text(
                500,
                "[r-1]: (InternalServerException): boom, fault: server",
            )),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 503",
            F::Reply(Reply::text(
                503,
                "[r-2]: (ServiceUnavailableException): busy, fault: server",
            )),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 502 text/plain",
            F::Reply(Reply::text(502, "bad gateway")),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 429",
            F::Reply(Reply::text(429, "Too Many Requests")),
            fail(K::Throttled),
            Some(3),
        ),
        rt(
            "agent: 429 twice, then 200",
            F::ReplyThenOk(2, Reply::text(429, "Too Many Requests")),
            Recover(None),
            Some(3),
        ),
        rt(
            "agent: 500 once, then 200",
            F::ReplyThenOk(1, Reply::text(500, "boom")),
            Recover(None),
            Some(2),
        ),
        rt(
            "agent: 400 token empty",
            F::Reply(Reply::text(400, "Service account token cannot be empty")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 400 token unparseable",
            F::Reply(Reply::text(400, "Service account token cannot be parsed")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 400 token expired, rotated meanwhile (re-read, retry once)",
            F::TokenExpired { rotate: true },
            Recover(None),
            Some(2),
        ),
        rt(
            "agent: 400 token expired, not rotated (one retry only)",
            F::TokenExpired { rotate: false },
            fail(K::TokenExpired),
            Some(2),
        ),
        rt(
            "agent: 400 AccessDenied",
            F::Reply(Reply::text(
                400,
                "[r]: (AccessDeniedException): denied, fault: client",
            )),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 403 wrong Host",
            F::Reply(Reply::text(403, "Forbidden")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 404 path",
            F::Reply(Reply::text(404, "404 page not found")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 404 ResourceNotFound",
            F::Reply(Reply::text(
                404,
                "[r]: (ResourceNotFoundException): no association, fault: client",
            )),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 307 redirect not followed",
            F::Redirect,
            fail(K::ClientError),
            Some(1),
        ),
        // --- agent bodies ---
        rt(
            "agent: malformed JSON",
            F::Reply(Reply::json("{\"AccessKeyId\": \"ASIA")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: JSON array",
            F::Reply(Reply::json("[\"AccessKeyId\"]")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: empty 200 body",
            F::Reply(Reply::json("")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: text/plain 200 body",
            F::Reply(Reply::status(200, "text/plain", "ok\n")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing AccessKeyId",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("AccessKeyId");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing SecretAccessKey",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("SecretAccessKey");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing Token",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("Token");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing Expiration",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("Expiration");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing AccountId (optional)",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("AccountId");
                })
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: AccessKeyId is a number",
            F::Body(|n, t| doc_with(n, t, |v| v["AccessKeyId"] = 7.into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Token is an object",
            F::Body(|n, t| doc_with(n, t, |v| v["Token"] = serde_json::json!({"a": 1}))),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration is epoch seconds",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = 1_900_000_000u64.into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: SecretAccessKey empty",
            F::Body(|n, t| doc_with(n, t, |v| v["SecretAccessKey"] = "".into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: aliases and lower-case keys",
            F::Body(|n, t| {
                serde_json::json!({"accesskeyid": format!("ASIAMATRIX{n:08}"), "secretaccesskey": SECRET, "SessionToken": SESSION, "ExpiresAt": fmt(t)}).to_string()
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: body over the 64 KiB cap (Content-Length)",
            F::Reply(Reply::json(vec![b' '; 70 * 1024])),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: body streamed forever (chunked)",
            F::Reply(Reply::StreamForever),
            fail(K::InvalidResponse),
            Some(1),
        ),
        // --- Expiration ---
        rt(
            "agent: Expiration without zone",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v["Expiration"] = fmt(t).trim_end_matches('Z').into()
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration garbage",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = "tomorrow at noon".into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration with space separator (RFC 3339 5.6 note)",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = fmt(t).replace('T', " ").into())),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration with lower-case t and z",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v["Expiration"] = fmt(t).replace('T', "t").replace('Z', "z").into()
                })
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration date only",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = fmt(t)[..10].into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration offset +02:00",
            F::Offset(120),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration offset -04:30",
            F::Offset(-270),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration offset +00:00",
            F::Offset(0),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: already expired (refetched within the fetch, 3 attempts)",
            F::ValidFor(-60),
            fail(K::ExpiresTooSoon),
            Some(3),
        ),
        rt(
            "agent: expires now (refetched within the fetch, 3 attempts)",
            F::ValidFor(0),
            fail(K::ExpiresTooSoon),
            Some(3),
        ),
        rt(
            "agent: 30 s left (their own mandatory window is 7.5 s: accepted)",
            F::ValidFor(30),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: just outside the mandatory window (61 s left)",
            F::ValidFor(61),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: far future (9999-12-31)",
            F::Body(|n, _| agent_doc(n, "9999-12-31T23:59:59Z")),
            Recover(None),
            Some(1),
        ),
        // --- token file ---
        rt(
            "token: file missing",
            F::TokenMissing,
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: file empty",
            F::TokenContent(b""),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: only a newline",
            F::TokenContent(b"\n"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: trailing newline trimmed",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO\n"),
            Recover(None),
            Some(1),
        ),
        rt(
            "token: CRLF inside (header injection)",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9\r\nX-Injected: 1"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: trailing CRLF",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO\r\n"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: NUL byte",
            F::TokenContent(b"eyJhbGci\0OiJSUzI1NiJ9"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: rotated between fetches",
            F::TokenRotated,
            Recover(None),
            Some(1),
        ),
        rt(
            "token: unreadable (a directory)",
            F::TokenIsDirectory,
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: over the 16 KiB cap",
            F::TokenOversize,
            fail(K::Token),
            Some(0),
        ),
        // --- env ---
        env(
            "env: http to a disallowed IPv4 host",
            &[(vars::FULL_URI, "http://10.0.0.1/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to IMDS 169.254.169.254",
            &[(
                vars::FULL_URI,
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/node",
            )],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to another link-local address",
            &[(vars::FULL_URI, "http://169.254.170.24/v1/credentials")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to a disallowed IPv6 literal",
            &[(vars::FULL_URI, "http://[fd00:ec2::254]/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to an IPv4-mapped IPv6 disallowed host",
            &[(vars::FULL_URI, "http://[::ffff:10.0.0.1]/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: IPv6 agent literal with brackets",
            &[(vars::FULL_URI, "http://[fd00:ec2::23]/v1/credentials")],
            BuildOk("http://[fd00:ec2::23]/v1/credentials"),
        ),
        env(
            "env: IPv6 agent literal without brackets",
            &[(vars::FULL_URI, "http://fd00:ec2::23/v1/credentials")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: https to a remote host",
            &[(vars::FULL_URI, "https://creds.example.com/v1/credentials")],
            BuildOk("https://creds.example.com/v1/credentials"),
        ),
        env(
            "env: relative URI",
            &[(vars::RELATIVE_URI, "/v2/credentials/abc")],
            BuildOk("http://169.254.170.2/v2/credentials/abc"),
        ),
        env(
            "env: relative URI without leading slash",
            &[(vars::RELATIVE_URI, "v2/credentials/abc")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: both URIs set (relative wins, as in the SDKs)",
            &[
                (vars::RELATIVE_URI, "/v2/credentials/abc"),
                (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
            ],
            BuildOk("http://169.254.170.2/v2/credentials/abc"),
        ),
        env(
            "env: unsupported scheme",
            &[(vars::FULL_URI, "ftp://127.0.0.1/creds")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: not a URI",
            &[(vars::FULL_URI, "169.254.170.23/v1/credentials")],
            Build(K::InvalidConfiguration),
        ),
        env("env: nothing set", &[], Build(K::NotConfigured)),
        on(
            Target::AgentV6,
            rt(
                "env: IPv6 loopback literal [::1], agent then 503",
                F::Reply(Reply::text(503, "busy")),
                fail(K::ServerError),
                Some(3),
            ),
        ),
        on(
            Target::AgentByName,
            rt(
                "env: hostname now resolving to a refused address",
                F::ResolvesToRefused,
                fail(K::RefusedHost),
                Some(0),
            ),
        ),
        Case {
            name: "env: https endpoint answered by a plain-http peer (no clear-text token)",
            kind: CaseKind::Cold(String::new()),
            expect: Fail(K::Connect),
            requests: Some(0),
        },
        // --- IMDS ---
        on(
            Target::Imds,
            rt(
                "imds: token PUT hangs (hop limit 1)",
                F::ImdsPutHang,
                fail(K::Timeout),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: token PUT 403 (disabled)",
                F::ImdsPut403,
                fail(K::ImdsDisabled),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 401 mid-run, new token works",
                F::Imds401MidRun { recover: true },
                Recover(None),
                Some(4),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 401 mid-run, new token rejected too",
                F::Imds401MidRun { recover: false },
                fail(K::ClientError),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role list 404 (no instance profile)",
                F::ImdsRoles404,
                fail(K::NoInstanceProfile),
                Some(2),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role list empty",
                F::ImdsRolesEmpty,
                fail(K::NoInstanceProfile),
                Some(2),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role renamed",
                F::ImdsRoleRenamed,
                Recover(None),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: TTL header missing",
                F::ImdsTtlMissing,
                fail(K::InvalidResponse),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: v1-only server (PUT 405)",
                F::ImdsV1Only,
                fail(K::ClientError),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 500 on credentials",
                F::Imds500,
                fail(K::ServerError),
                Some(5),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: Code is not Success",
                F::ImdsNotSuccess,
                fail(K::InvalidResponse),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: already-expired credentials (no extension; refetched, 3 attempts)",
                F::ImdsExpired,
                fail(K::ExpiresTooSoon),
                Some(7),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: credentials body streamed forever",
                F::ImdsStreamForever,
                fail(K::InvalidResponse),
                Some(3),
            ),
        ),
    ];
    for digits in 0..=9 {
        v.push(rt(
            [
                "agent: Expiration with 0 fractional digits",
                "agent: Expiration with 1 fractional digit",
                "agent: Expiration with 2 fractional digits",
                "agent: Expiration with 3 fractional digits",
                "agent: Expiration with 4 fractional digits",
                "agent: Expiration with 5 fractional digits",
                "agent: Expiration with 6 fractional digits",
                "agent: Expiration with 7 fractional digits",
                "agent: Expiration with 8 fractional digits",
                "agent: Expiration with 9 fractional digits",
            ][digits],
            F::Fraction(digits),
            Recover(None),
            Some(1),
        ));
    }
    v
}

// ---- running ---------------------------------------------------------------

/// What a run produced: human-readable renderings of every public value and
/// error seen (for the secret-hygiene test) and a note per case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rendered: Vec<String>,
}

impl Outcome {
    fn show(&mut self, v: &(impl std::fmt::Debug + ?Sized)) {
        self.rendered.push(format!("{v:?}"));
    }
    fn show_err(&mut self, e: &RefreshError) {
        self.rendered.push(format!("{e}"));
        self.rendered.push(format!("{e:?}"));
        self.rendered.push(format!("{}", e.source_error()));
        self.rendered.push(format!("{:?}", e.source_error()));
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cur {
            self.rendered.push(c.to_string());
            cur = c.source();
        }
        if let Some(a) = e.source_error().downcast_ref::<AgentError>() {
            self.rendered.push(format!("{a} {a:?}"));
        }
        if let Some(i) = e.source_error().downcast_ref::<ImdsError>() {
            self.rendered.push(format!("{i} {i:?}"));
        }
        let sdk =
            aws_credential_types::provider::error::CredentialsError::provider_error(e.clone());
        self.rendered.push(format!("{sdk} {sdk:?}"));
    }
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

enum Subject {
    Agent(PodIdentityProvider),
    Imds(RefreshingCache<ImdsSource>),
}

impl Subject {
    async fn get(&self) -> Result<Credentials, RefreshError> {
        match self {
            Subject::Agent(p) => p.credentials().await,
            Subject::Imds(c) => c.get().await,
        }
    }
    fn status(&self) -> Status {
        match self {
            Subject::Agent(p) => p.status(),
            Subject::Imds(c) => c.status(),
        }
    }
    fn debug(&self) -> String {
        match self {
            Subject::Agent(p) => format!("{p:?} {:?}", p.endpoint()),
            Subject::Imds(c) => format!("{c:?}"),
        }
    }
}

fn ctx(clock: &ManualClock, resolver: &MapResolver) -> ProviderContext {
    ProviderContext::new()
        .with_env(MapEnv::default())
        .with_clock(clock.clone())
        .with_random(Fixed(0.999))
        .with_resolver(resolver.clone())
}

fn retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(4))
}

fn build_agent(
    endpoint: &str,
    token_path: &std::path::Path,
    clock: &ManualClock,
    resolver: &MapResolver,
) -> Result<PodIdentityProvider, BuildError> {
    PodIdentityProvider::builder()
        .context(ctx(clock, resolver))
        .endpoint(endpoint)
        .token_file(token_path)
        .retry_policy(retries())
        .connect_timeout(Duration::from_millis(200))
        .attempt_timeout(Duration::from_millis(300))
        .fetch_timeout(Duration::from_secs(3))
        .build()
}

fn healthy_agent(clock: ManualClock, n: Arc<AtomicUsize>) -> impl Fn(&Req) -> Reply {
    move |_req| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Reply::json(agent_doc(i, &fmt(clock.now() + HOUR)))
    }
}

#[derive(Clone)]
struct ImdsState {
    clock: ManualClock,
    n: Arc<AtomicUsize>,
    ttl: Option<&'static str>,
    token: &'static str,
    role: &'static str,
    valid_for: i64,
    code: &'static str,
}

fn imds_creds(s: &ImdsState) -> Reply {
    let i = s.n.fetch_add(1, Ordering::SeqCst);
    let now = s.clock.now();
    let exp = if s.valid_for >= 0 {
        now + Duration::from_secs(s.valid_for as u64)
    } else {
        now - Duration::from_secs((-s.valid_for) as u64)
    };
    Reply::json(
        serde_json::json!({
            "Code": s.code,
            "LastUpdated": fmt(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": format!("ASIAIMDS{i:08}"),
            "SecretAccessKey": SECRET,
            "Token": SESSION,
            "Expiration": fmt(exp),
        })
        .to_string(),
    )
}

fn imds_handler(s: ImdsState) -> impl Fn(&Req) -> Reply {
    move |req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            let r = Reply::status(200, "text/plain", s.token);
            match s.ttl {
                Some(ttl) => r.with_header("x-aws-ec2-metadata-token-ttl-seconds", ttl),
                None => r,
            }
        }
        ("GET", p) if req.header("x-aws-ec2-metadata-token") != Some(s.token) => {
            let _ = p;
            Reply::text(401, "")
        }
        ("GET", ROLES) => Reply::status(200, "text/plain", s.role),
        ("GET", p) if p == format!("{ROLES}{}", s.role) => imds_creds(&s),
        _ => Reply::text(404, "Not Found"),
    }
}

/// Runs one case; `Err` says what went wrong.
pub async fn run(case: &Case, out: &mut Outcome) -> Result<(), String> {
    match &case.kind {
        CaseKind::Runtime(target, fault) => run_runtime(case, *target, fault, out).await,
        CaseKind::Env(pairs) => run_env(case, pairs, out).await,
        CaseKind::Cold(_) => run_cold_https(case, out).await,
    }
}

async fn run_env(
    case: &Case,
    pairs: &[(&'static str, String)],
    out: &mut Outcome,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN_A).unwrap();
    let mut env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    env.push((vars::TOKEN_FILE.into(), token.display().to_string()));
    let clock = ManualClock::new(t0());
    let built = PodIdentityProvider::builder()
        .context(ctx(&clock, &MapResolver::default()).with_env(env.into_iter().collect::<MapEnv>()))
        .build();
    match (&case.expect, built) {
        (Expect::Build(kind), Err(e)) => {
            out.show(&e);
            out.rendered.push(e.to_string());
            let got = match &e {
                BuildError::NotConfigured => ErrorKind::NotConfigured,
                BuildError::Config(c) => c.kind(),
                other => return Err(format!("unexpected build error {other:?}")),
            };
            check!(got == *kind, "build error kind {got:?}, want {kind:?}: {e}");
            Ok(())
        }
        (Expect::BuildOk(uri), Ok(p)) => {
            out.show(&p);
            check!(
                p.endpoint().uri().as_str() == *uri,
                "endpoint {} want {uri}",
                p.endpoint()
            );
            // Nothing is fetched at build time.
            check!(p.status().fetches == 0, "fetched at build");
            Ok(())
        }
        (want, got) => Err(format!("want {want:?}, got {got:?}")),
    }
}

async fn run_cold_https(case: &Case, out: &mut Outcome) -> Result<(), String> {
    let peer = Peer::start(|_| Reply::text(500, "unreachable")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN_A).unwrap();
    let clock = ManualClock::new(t0());
    let p = build_agent(
        &format!("https://{}/v1/credentials", peer.addr()),
        &token,
        &clock,
        &MapResolver::default(),
    )
    .map_err(|e| format!("https must be accepted: {e}"))?;
    let err = p
        .credentials()
        .await
        .err()
        .ok_or("https to a plain peer succeeded")?;
    out.show_err(&err);
    let Expect::Fail(kind) = case.expect else {
        unreachable!()
    };
    check!(
        err.kind() == kind,
        "kind {:?} want {kind:?}: {err}",
        err.kind()
    );
    check!(
        peer.request_count() == 0,
        "an HTTP request arrived in clear text"
    );
    let raw = peer.raw_bytes();
    check!(!raw.is_empty(), "no TLS handshake reached the peer");
    check!(
        !raw.windows(TOKEN_A.len()).any(|w| w == TOKEN_A.as_bytes()),
        "the token crossed the wire in clear text"
    );
    Ok(())
}

async fn run_runtime(
    case: &Case,
    target: Target,
    fault: &Fault,
    out: &mut Outcome,
) -> Result<(), String> {
    let clock = ManualClock::new(t0());
    let resolver = MapResolver::default();
    let n = Arc::new(AtomicUsize::new(0));
    let dir = tempfile::tempdir().unwrap();
    let token_path: PathBuf = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_path, format!("{TOKEN_A}\n")).unwrap();
    let imds_state = ImdsState {
        clock: clock.clone(),
        n: n.clone(),
        // A 121 s TTL (1 s after the 120 s renewal margin) makes every fetch
        // PUT one new session token, so the faulty fetch exercises the PUT
        // (except in the 401 case, which needs a cached token).
        ttl: Some(if matches!(fault, Fault::Imds401MidRun { .. }) {
            "21600"
        } else {
            "121"
        }),
        token: IMDS_TOKEN_1,
        role: "node-role",
        valid_for: 3600,
        code: "Success",
    };

    let peer = match target {
        Target::Imds => Peer::start(imds_handler(imds_state.clone())).await,
        Target::AgentV6 => Peer::start_on("[::1]:0", healthy_agent(clock.clone(), n.clone())).await,
        _ => Peer::start(healthy_agent(clock.clone(), n.clone())).await,
    };
    let subject = match target {
        Target::Imds => {
            let options = ImdsOptions::default()
                .with_connect_timeout(Duration::from_millis(200))
                .with_read_timeout(Duration::from_millis(200))
                .with_retry(retries())
                .with_allow_imdsv1(false)
                .with_extend_stale_credentials(false);
            let src = ImdsSource::new(
                peer.url("").parse().unwrap(),
                ctx(&clock, &resolver),
                options,
            )
            .map_err(|e| e.to_string())?;
            Subject::Imds(RefreshingCache::new(
                src,
                RefreshPolicy::default(),
                Arc::new(clock.clone()),
                Arc::new(Fixed(0.999)),
            ))
        }
        Target::Agent | Target::AgentV6 => Subject::Agent(
            build_agent(&peer.url(AGENT_PATH), &token_path, &clock, &resolver)
                .map_err(|e| e.to_string())?,
        ),
        Target::AgentByName => {
            resolver.set("agent.test", &["127.0.0.1"]);
            Subject::Agent(
                build_agent(
                    &format!("http://agent.test:{}{AGENT_PATH}", peer.port()),
                    &token_path,
                    &clock,
                    &resolver,
                )
                .map_err(|e| e.to_string())?,
            )
        }
    };

    // 1. Prime.
    let primed = subject
        .get()
        .await
        .map_err(|e| format!("prime failed: {e}"))?;
    out.show(&primed);
    out.rendered.push(subject.debug());
    let exp = primed.expiry().ok_or("primed credentials without expiry")?;
    check!(exp == t0() + HOUR, "primed expiry {exp:?}");

    // 2. Fault, inside the mandatory window.
    let fault_at = exp - Duration::from_secs(30);
    clock.set(fault_at);
    let mut expected_expiry = None;
    let base = fault_at + 2 * HOUR;
    {
        let n = n.clone();
        let clock2 = clock.clone();
        match fault {
            Fault::Refused => peer.refuse().await,
            Fault::Blackhole => peer.blackhole().await,
            Fault::Reply(r) => {
                let r = r.clone();
                peer.set(move |_| r.clone())
            }
            Fault::ReplyThenOk(k, r) => {
                let r = r.clone();
                let k = *k;
                let seen = AtomicUsize::new(0);
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if seen.fetch_add(1, Ordering::SeqCst) < k {
                        r.clone()
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::Body(f) => {
                let f = *f;
                peer.set(move |_| Reply::json(f(n.fetch_add(1, Ordering::SeqCst), base)))
            }
            Fault::ValidFor(secs) => {
                let exp = if *secs >= 0 {
                    fault_at + Duration::from_secs(*secs as u64)
                } else {
                    fault_at - Duration::from_secs(secs.unsigned_abs())
                };
                if *secs > 60 {
                    expected_expiry = Some(exp);
                }
                peer.set(move |_| {
                    Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &fmt(exp)))
                })
            }
            Fault::Fraction(d) => {
                let digits = &"123456789"[..*d];
                let nanos: u64 = if *d == 0 {
                    0
                } else {
                    digits.parse::<u64>().unwrap() * 10u64.pow(9 - *d as u32)
                };
                let secs = base
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
                let text = fmt(whole).trim_end_matches('Z').to_owned();
                let text = if *d == 0 {
                    format!("{text}Z")
                } else {
                    format!("{text}.{digits}Z")
                };
                expected_expiry = Some(whole + Duration::from_nanos(nanos));
                peer.set(move |_| Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &text)))
            }
            Fault::Offset(minutes) => {
                let text = with_offset(base, *minutes);
                expected_expiry = Some(base);
                peer.set(move |_| Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &text)))
            }
            Fault::TokenExpired { rotate } => {
                let rotate = *rotate;
                let path = token_path.clone();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        return ok(q);
                    }
                    if rotate {
                        // The kubelet rotates the token while this request is answered.
                        std::fs::write(&path, format!("{TOKEN_B}\n")).unwrap();
                    }
                    Reply::text(
                        400,
                        "Service account token failed basic claim validations: token is expired",
                    )
                })
            }
            Fault::Redirect => {
                let to = peer.url("/steal");
                peer.set(move |_| Reply::text(307, "moved").with_header("Location", &to))
            }
            Fault::TokenMissing => std::fs::remove_file(&token_path).unwrap(),
            Fault::TokenContent(bytes) => {
                std::fs::write(&token_path, bytes).unwrap();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        ok(q)
                    } else {
                        Reply::text(400, "Service account token cannot be parsed")
                    }
                })
            }
            Fault::TokenRotated => {
                std::fs::write(&token_path, TOKEN_B).unwrap();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        ok(q)
                    } else {
                        Reply::text(400, "Service account token failed basic claim validations: token is expired")
                    }
                })
            }
            Fault::TokenIsDirectory => {
                std::fs::remove_file(&token_path).unwrap();
                std::fs::create_dir(&token_path).unwrap();
            }
            Fault::TokenOversize => std::fs::write(&token_path, "a".repeat(16 * 1024 + 1)).unwrap(),
            Fault::ResolvesToRefused => resolver.set("agent.test", &["127.0.0.1", "10.9.8.7"]),
            Fault::ImdsPutHang => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::Hang
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsPut403 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::text(403, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::Imds401MidRun { recover } => {
                let next = ImdsState {
                    token: if *recover { IMDS_TOKEN_2 } else { IMDS_TOKEN_1 },
                    ..imds_state.clone()
                };
                let recover = *recover;
                let inner = imds_handler(next);
                peer.set(move |q| {
                    if !recover && q.method == "GET" {
                        Reply::text(401, "")
                    } else {
                        inner(q)
                    }
                })
            }
            Fault::ImdsRoles404 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path == ROLES {
                        Reply::text(404, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsRolesEmpty => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path == ROLES {
                        Reply::status(200, "text/plain", "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsRoleRenamed => peer.set(imds_handler(ImdsState {
                role: "renamed-role",
                ..imds_state.clone()
            })),
            Fault::ImdsTtlMissing => peer.set(imds_handler(ImdsState {
                ttl: None,
                ..imds_state.clone()
            })),
            Fault::ImdsV1Only => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::text(405, "")
                    } else {
                        let mut q = q.clone();
                        q.headers
                            .push(("x-aws-ec2-metadata-token".into(), IMDS_TOKEN_1.into()));
                        ok(&q)
                    }
                })
            }
            Fault::Imds500 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path.len() > ROLES.len() {
                        Reply::text(500, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsNotSuccess => peer.set(imds_handler(ImdsState {
                code: "AssumeRoleUnauthorizedAccess",
                ..imds_state.clone()
            })),
            Fault::ImdsExpired => peer.set(imds_handler(ImdsState {
                valid_for: -600,
                ..imds_state.clone()
            })),
            Fault::ImdsStreamForever => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path.len() > ROLES.len() {
                        Reply::StreamForever
                    } else {
                        ok(q)
                    }
                })
            }
        }
    }
    let requests_before = peer.request_count();
    let connections_before = peer.connections();
    let got = subject.get().await;
    let status = subject.status();
    out.show(&status);
    out.rendered.push(subject.debug());
    let requests = peer.request_count() - requests_before;
    if let Some(want) = case.requests {
        check!(
            requests == want,
            "faulty fetch sent {requests} requests, want {want}"
        );
    }
    if matches!(
        fault,
        Fault::ResolvesToRefused | Fault::Refused | Fault::Blackhole
    ) {
        check!(
            peer.connections() == connections_before,
            "a refused/unreachable peer accepted a connection"
        );
    }
    check!(
        !peer.requests().iter().any(|r| r.path == "/steal"),
        "the redirect was followed"
    );
    match &case.expect {
        Expect::Recover(_) => {
            let c = got.map_err(|e| format!("want recovery, got {e}"))?;
            out.show(&c);
            check!(
                c.access_key_id() != primed.access_key_id(),
                "still the primed credentials"
            );
            let new_exp = c.expiry().ok_or("no expiry")?;
            // Accepted means outside their own mandatory window
            // min(60 s, L/4), which for any lifetime L means unexpired.
            check!(
                new_exp > clock.now(),
                "recovered credentials already expired"
            );
            if let Some(want) = expected_expiry {
                check!(new_exp == want, "expiry {new_exp:?}, want {want:?}");
            }
            check!(
                status.failures == 0 && status.consecutive_failures == 0,
                "recovery recorded a failure: {status:?}"
            );
            if matches!(fault, Fault::ImdsRoleRenamed) {
                check!(
                    status.source == "imds:renamed-role",
                    "label {}",
                    status.source
                );
            }
            Ok(())
        }
        Expect::Fail(kind) => {
            let c = got.map_err(|e| format!("cached credentials not served: {e}"))?;
            check!(
                c.access_key_id() == primed.access_key_id(),
                "served {} not the cached creds",
                c.access_key_id()
            );
            check!(
                status.last_error_kind == Some(*kind),
                "status kind {:?}, want {kind:?}",
                status.last_error_kind
            );
            check!(
                status.failures >= 1 && status.consecutive_failures >= 1,
                "{status:?}"
            );
            check!(status.served_cached_after_failure >= 1, "{status:?}");
            check!(status.expiration == Some(exp), "{status:?}");

            // 3. Past expiry: never the expired credentials.
            clock.set(exp + Duration::from_secs(1));
            let err = match subject.get().await {
                Ok(c) => return Err(format!("served credentials past expiry: {:?}", c.expiry())),
                Err(e) => e,
            };
            out.show_err(&err);
            out.show(&subject.status());
            check!(
                err.kind() == *kind,
                "past-expiry kind {:?}, want {kind:?}: {err}",
                err.kind()
            );
            if let Subject::Agent(p) = &subject {
                use aws_credential_types::provider::ProvideCredentials;
                let sdk = p.provide_credentials().await;
                check!(
                    sdk.is_err(),
                    "ProvideCredentials served expired credentials"
                );
                out.show(&sdk);
            }
            check!(
                subject.status().expiration.is_none_or(|e| e == exp),
                "slot changed"
            );
            Ok(())
        }
        other => Err(format!("runtime case with expectation {other:?}")),
    }
}
