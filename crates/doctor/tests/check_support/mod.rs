//! Shared helpers for the `check_*` integration tests: an injected env,
//! loopback-only endpoints, and probe budgets that cannot turn a stall into a
//! false PROTECTED.
//!
//! Budgets: [`options`] gives every probe a wide margin (10 s per probe, 20 s in
//! all): a fake that answers is never cut off by a slow machine, and a test that
//! expects an answer costs no more than the answer takes. A test whose subject is
//! an *unanswered* request uses [`hang_options`] (700 ms) and also asserts that
//! the request really reached the fake ([`Held::requests`],
//! `FakeImds::stats().log`): a probe that stalled before sending would otherwise
//! look exactly like a hop limit of 1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eks_pod_identity_doctor::check::{run_check, CheckOptions};
use eks_pod_identity_doctor::report::{Finding, ProbeResult, Report};
use eks_pod_identity_provider::MapEnv;
pub use eks_pod_identity_testkit::port::ClosedPort;

/// Options with an injected env, wide budgets, no STS, no IPv6 and the IPv4
/// IMDS pointed at `imds` (loopback).
pub fn options(env: &[(&str, &str)], imds: &str) -> CheckOptions {
    CheckOptions {
        env: Arc::new(env.iter().copied().collect::<MapEnv>()),
        timeout: Duration::from_secs(20),
        probe_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        imds_endpoint: Some(imds.to_owned()),
        imds_ipv6_endpoint: None,
        ipv6: false,
        sts: false,
        sts_endpoint: None,
        pod_ip_env: "POD_IP".into(),
        host_ip_env: "HOST_IP".into(),
    }
}

/// [`options`] with a short probe budget (700 ms, 4 s in all), for tests in which
/// a fake never answers. Pair it with an assertion that the request reached the fake.
pub fn hang_options(env: &[(&str, &str)], imds: &str) -> CheckOptions {
    CheckOptions {
        timeout: Duration::from_secs(4),
        probe_timeout: Duration::from_millis(700),
        connect_timeout: Duration::from_millis(300),
        ..options(env, imds)
    }
}

/// Runs a check.
pub async fn check(opts: &CheckOptions) -> Report {
    run_check(opts).await.expect("check runs")
}

/// A loopback port nothing listens on (connection refused), reserved until the
/// guard is dropped; derefs to its `http://127.0.0.1:PORT` URL.
pub fn closed_port() -> ClosedPort {
    ClosedPort::v4().expect("reserve a loopback port")
}

/// Rule ids of the findings at `probe`.
pub fn ids_at(report: &Report, probe: &str) -> Vec<String> {
    report
        .findings()
        .iter()
        .filter(|f| f.location.group() == probe)
        .map(|f| f.rule_id.clone())
        .collect()
}

/// The finding with `rule_id` (panics with the report when missing).
pub fn finding<'a>(report: &'a Report, rule_id: &str) -> &'a Finding {
    report
        .findings()
        .iter()
        .find(|f| f.rule_id == rule_id)
        .unwrap_or_else(|| panic!("no {rule_id} in {:#?}", report.findings()))
}

/// The probe result named `name`.
pub fn probe<'a>(report: &'a Report, name: &str) -> &'a ProbeResult {
    report
        .probes()
        .iter()
        .find(|p| p.probe == name)
        .unwrap_or_else(|| panic!("no probe {name} in {:#?}", report.probes()))
}

/// A listener that reads each request head and never answers (what hop limit 1
/// looks like from a pod: the handshake completes, the PUT answer never comes).
pub struct Held {
    /// Where it listens.
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Held {
    /// The request lines received so far (`PUT /latest/api/token HTTP/1.1`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts a [`Held`] listener.
pub async fn accept_and_hold() -> Held {
    use tokio::io::AsyncReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let line = text.lines().next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(line);
                // Hold the connection open, never answering.
                let _ = s.read(&mut buf).await;
                std::future::pending::<()>().await;
            });
        }
    });
    Held {
        addr,
        lines,
        _task: task,
    }
}

/// A listener that answers every connection with `raw` (after reading the request head).
pub async fn answer_with(raw: impl Into<String>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let raw: Arc<str> = raw.into().into();
    answer_by(move |_| raw.to_string()).await
}

/// A listener that answers each connection with `answer(request head)`.
pub async fn answer_by<F>(answer: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(&str) -> String + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = Arc::new(answer);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let raw = answer(&String::from_utf8_lossy(&head));
                let _ = s.write_all(raw.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// An error answer as the real agent writes it: Go's `http.Error(resp, msg, code)`
/// (`pkg/handlers/eks_credential_handler.go` in github.com/aws/eks-pod-identity-agent):
/// `text/plain; charset=utf-8`, `X-Content-Type-Options: nosniff`, the message and a newline.
pub fn go_http_error(status: u16, reason: &str, msg: &str) -> String {
    let body = format!("{msg}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The value of header `name` in a raw request head.
pub fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A token shaped like a real EKS Pod Identity token, not like the testkit's
/// fixtures: a projected service-account JWT signed RS256 by the cluster's OIDC
/// issuer (a `kid` header, a 256-byte signature), with the `kubernetes.io`
/// claims the kubelet projects. Claims layout: the projected-volume token claims
/// quoted in github.com/SovereignCloudStack/standards issue 34; the audience is
/// EKS Pod Identity's. About 1.1 KB, like the real ones. The signature is random
/// bytes: nothing here verifies it (the real agent parses the token unverified
/// too, `internal/validation/request.go` in aws/eks-pod-identity-agent).
pub fn real_shaped_token(namespace: &str, sa: &str, exp_in_secs: i64) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = serde_json::json!({
        "alg": "RS256",
        "kid": "5c7e4ba9b9a3f4d26e0a7c1f3d8b2e9a6f1c0d47"
    });
    let claims = serde_json::json!({
        "aud": ["pods.eks.amazonaws.com"],
        "exp": now + exp_in_secs,
        "iat": now - 60,
        "iss": "https://oidc.eks.us-west-2.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9",
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "ip-192-168-12-34.us-west-2.compute.internal", "uid": "8b6c1a52-3f0e-4c7d-9a21-5e4f6d7c8b90"},
            "pod": {"name": format!("{sa}-7d9f8b6c5d-x2k4q"), "uid": "d3f1a2b4-5c6d-4e7f-8091-a2b3c4d5e6f7"},
            "serviceaccount": {"name": sa, "uid": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"}
        },
        "nbf": now - 60,
        "sub": format!("system:serviceaccount:{namespace}:{sa}")
    });
    let sig: Vec<u8> = (0..256).map(|_| fastrand_byte()).collect();
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string()),
        b64.encode(sig)
    )
}

fn fastrand_byte() -> u8 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    // xorshift: varied bytes, no extra dependency.
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 24) as u8
}
