//! The emulated EKS node on real packets: hop limit, REJECT/DROP, the agent's real
//! addresses and Host check, teardown. Needs root (skipped otherwise, except under
//! `CI=true`).
#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::time::Duration;

use eks_pod_identity_testkit::netns::{
    BlockMode, EksNode, Netns, AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6,
};
use eks_pod_identity_testkit::skip::{skip, Need};
use eks_pod_identity_testkit::stack::{DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT};
use eks_pod_identity_testkit::token;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What one raw HTTP exchange did.
#[derive(Debug)]
enum Exchange {
    /// Connect failed (refused, unreachable, …).
    ConnectError(std::io::ErrorKind, Option<i32>),
    /// Connect did not complete in time (SYN dropped).
    ConnectTimeout,
    /// Connected, sent the request, no answer in time.
    NoAnswer,
    /// An answer: status and body.
    Answer(u16, String),
}

/// One HTTP/1.1 request over a fresh connection, with a connect timeout and an
/// answer timeout, from whichever namespace this runs in.
async fn exchange(
    addr: SocketAddr,
    request: String,
    connect_within: Duration,
    answer_within: Duration,
) -> Exchange {
    let mut s = match timeout(connect_within, TcpStream::connect(addr)).await {
        Err(_) => return Exchange::ConnectTimeout,
        Ok(Err(e)) => return Exchange::ConnectError(e.kind(), e.raw_os_error()),
        Ok(Ok(s)) => s,
    };
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = timeout(answer_within, async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if complete(&buf) {
                break;
            }
        }
    })
    .await;
    if read.is_err() || buf.is_empty() {
        return Exchange::NoAnswer;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Exchange::Answer(status, body)
}

fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= len
}

fn token_put(host: &str) -> String {
    format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n"
    )
}

fn imds4() -> SocketAddr {
    SocketAddr::from((IMDS_V4, 80))
}

fn imds6() -> SocketAddr {
    SocketAddr::from((IMDS_V6, 80))
}

const SHORT: Duration = Duration::from_secs(2);

async fn put_from(node: &EksNode, ns: Netns, addr: SocketAddr) -> Exchange {
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    node.run_in(ns, exchange(addr, token_put(&host), SHORT, SHORT))
        .await
}

#[tokio::test]
async fn hop_limit_1_hangs_the_pods_put_but_answers_the_node() {
    let Some(node) = EksNode::builder()
        .hop_limit(1)
        .start_or_skip("hop_limit_1_hangs_the_pods_put_but_answers_the_node")
    else {
        return;
    };
    for addr in [imds4(), imds6()] {
        let pod = put_from(&node, Netns::Pod, addr).await;
        assert!(
            matches!(pod, Exchange::NoAnswer),
            "pod → {addr}: connect succeeds, the answer (TTL 1) dies at the node's forwarding: {pod:?}"
        );
        let host = put_from(&node, Netns::Node, addr).await;
        assert!(
            matches!(&host, Exchange::Answer(200, t) if t.len() > 20),
            "node (hostNetwork) → {addr}: one hop, gets the token: {host:?}"
        );
    }
    let st = node.imds().stats();
    assert_eq!(
        st.token_puts, 4,
        "IMDS answered every PUT (2 pod, 2 node): {st:?}"
    );
}

#[tokio::test]
async fn hop_limit_2_reaches_the_pod() {
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .start_or_skip("hop_limit_2_reaches_the_pod")
    else {
        return;
    };
    for addr in [imds4(), imds6()] {
        let pod = put_from(&node, Netns::Pod, addr).await;
        let Exchange::Answer(200, tok) = pod else {
            panic!("pod → {addr}: hop limit 2 must reach the pod: {pod:?}");
        };
        // The token works for the role list too: the node role is readable.
        let get = format!(
            "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token: {tok}\r\n\r\n"
        );
        let roles = node
            .run_in(Netns::Pod, exchange(addr, get, SHORT, SHORT))
            .await;
        assert!(
            matches!(&roles, Exchange::Answer(200, b) if b == "node-role"),
            "{roles:?}"
        );
    }
}

#[tokio::test]
async fn reject_refuses_the_pod_at_once_and_spares_the_node() {
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .block(BlockMode::Reject)
        .start_or_skip("reject_refuses_the_pod_at_once_and_spares_the_node")
    else {
        return;
    };
    for addr in [imds4(), imds6()] {
        let started = std::time::Instant::now();
        let pod = put_from(&node, Netns::Pod, addr).await;
        assert!(
            matches!(
                pod,
                Exchange::ConnectError(std::io::ErrorKind::ConnectionRefused, _)
            ),
            "pod → {addr}: {pod:?}"
        );
        assert!(started.elapsed() < SHORT, "refused at once");
        let host = put_from(&node, Netns::Node, addr).await;
        assert!(
            matches!(host, Exchange::Answer(200, _)),
            "node → {addr} is not blocked: {host:?}"
        );
    }
    assert_eq!(
        node.imds().stats().token_puts,
        2,
        "only the node's PUTs arrived"
    );
}

#[tokio::test]
async fn drop_times_out_the_pods_connect() {
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .block(BlockMode::Drop)
        .start_or_skip("drop_times_out_the_pods_connect")
    else {
        return;
    };
    for addr in [imds4(), imds6()] {
        let pod = put_from(&node, Netns::Pod, addr).await;
        assert!(
            matches!(pod, Exchange::ConnectTimeout),
            "pod → {addr}: {pod:?}"
        );
        let host = put_from(&node, Netns::Node, addr).await;
        assert!(matches!(host, Exchange::Answer(200, _)), "{host:?}");
    }
    assert_eq!(node.imds().stats().token_puts, 2);
}

#[tokio::test]
async fn prohibit_is_an_icmp_unreachable() {
    let Some(node) = EksNode::builder()
        .block(BlockMode::Prohibit)
        .start_or_skip("prohibit_is_an_icmp_unreachable")
    else {
        return;
    };
    let pod = put_from(&node, Netns::Pod, imds4()).await;
    // EHOSTUNREACH (113): "No route to host".
    assert!(
        matches!(pod, Exchange::ConnectError(_, Some(113))),
        "{pod:?}"
    );
    let pod6 = put_from(&node, Netns::Pod, imds6()).await;
    assert!(matches!(pod6, Exchange::ConnectError(..)), "{pod6:?}");
    assert!(!node.imds().was_contacted());
}

#[tokio::test]
async fn imds_modes_reach_the_pod() {
    let Some(node) = EksNode::builder()
        .hop_limit(1)
        .imdsv1(true)
        .start_or_skip("imds_modes_reach_the_pod")
    else {
        return;
    };
    // IMDSv1: a plain GET leaks the role at hop limit 1.
    let get = "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = node
        .run_in(Netns::Pod, exchange(imds4(), get.into(), SHORT, SHORT))
        .await;
    assert!(
        matches!(&r, Exchange::Answer(200, b) if b == "node-role"),
        "{r:?}"
    );
    drop(node);

    let Some(node) = EksNode::builder()
        .imds_disabled(true)
        .start_or_skip("imds_modes_reach_the_pod")
    else {
        return;
    };
    let r = put_from(&node, Netns::Pod, imds4()).await;
    assert!(matches!(r, Exchange::Answer(403, _)), "{r:?}");
}

fn agent_get(host: &str, jwt: &str) -> String {
    format!("GET /v1/credentials HTTP/1.1\r\nHost: {host}\r\nAuthorization: {jwt}\r\n\r\n")
}

#[tokio::test]
async fn agent_answers_the_pod_at_its_real_addresses_with_the_host_check() {
    let Some(node) = EksNode::builder()
        .start_or_skip("agent_answers_the_pod_at_its_real_addresses_with_the_host_check")
    else {
        return;
    };
    assert_eq!(node.agent_uri(), "http://169.254.170.23/v1/credentials");
    assert_eq!(node.agent_uri_v6(), "http://[fd00:ec2::23]/v1/credentials");
    let jwt = std::fs::read_to_string(node.token_file()).unwrap();
    assert_eq!(
        token::decode(&jwt).unwrap().namespace(),
        Some(DEFAULT_NAMESPACE)
    );
    let _ = DEFAULT_SERVICE_ACCOUNT;
    for (addr, host) in [
        (SocketAddr::from((AGENT_V4, 80)), "169.254.170.23"),
        (SocketAddr::from((AGENT_V6, 80)), "[fd00:ec2::23]"),
    ] {
        let ok = node
            .run_in(
                Netns::Pod,
                exchange(addr, agent_get(host, &jwt), SHORT, SHORT),
            )
            .await;
        assert!(
            matches!(&ok, Exchange::Answer(200, b) if b.contains("\"AccessKeyId\"")),
            "pod → agent {addr}: {ok:?}"
        );
        let wrong = node
            .run_in(
                Netns::Pod,
                exchange(addr, agent_get("localhost", &jwt), SHORT, SHORT),
            )
            .await;
        assert!(
            matches!(wrong, Exchange::Answer(403, _)),
            "wrong Host → 403: {wrong:?}"
        );
    }
    let st = node.agent().stats();
    assert_eq!((st.status(200), st.status(403)), (2, 2), "{st:?}");
}

#[tokio::test]
async fn agent_faults_are_scripted() {
    use eks_pod_identity_testkit::fault::{Fault, FaultPlan};
    let Some(node) = EksNode::builder()
        .agent_faults(FaultPlan::new().then(Fault::internal_error()))
        .start_or_skip("agent_faults_are_scripted")
    else {
        return;
    };
    let jwt = std::fs::read_to_string(node.token_file()).unwrap();
    let addr = SocketAddr::from((AGENT_V4, 80));
    let mut codes = Vec::new();
    for _ in 0..2 {
        match node
            .run_in(
                Netns::Pod,
                exchange(addr, agent_get("169.254.170.23", &jwt), SHORT, SHORT),
            )
            .await
        {
            Exchange::Answer(code, _) => codes.push(code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes, [500, 200]);
}

#[test]
fn processes_run_in_the_pod_and_teardown_leaves_nothing() {
    let Some(node) = EksNode::builder()
        .block(BlockMode::Reject)
        .start_or_skip("processes_run_in_the_pod_and_teardown_leaves_nothing")
    else {
        return;
    };
    let names = node.namespace_names();
    assert_eq!(names.len(), 4, "pod, node, imds and the REJECT sink");
    // `ip netns exec` puts a process in the pod: it sees the pod's address only.
    let out = node
        .run_in_pod(&["ip", "-o", "addr", "show", "dev", "eth0"], SHORT * 5)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("169.254.10.2/30"), "{text}");
    let out = node
        .run_in_node(&["ip", "-o", "addr", "show", "dev", "lo"], SHORT * 5)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("169.254.170.23/32") && text.contains("fd00:ec2::23/128"),
        "{text}"
    );
    // The production env, for the pod.
    let env: std::collections::HashMap<_, _> = node.pod_env().into_iter().collect();
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        "http://169.254.170.23/v1/credentials"
    );
    assert!(std::path::Path::new(&env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).is_file());
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));
    // A sync test can use block_in too.
    let r = node.block_in(
        Netns::Node,
        exchange(imds4(), token_put("169.254.169.254"), SHORT, SHORT),
    );
    assert!(matches!(r, Exchange::Answer(200, _)), "{r:?}");

    let token_file = node.token_file();
    drop(node);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "{n} left behind: {list}"
        );
    }
    assert!(!token_file.exists());
}

#[test]
fn teardown_runs_on_panic() {
    if let Some(why) = eks_pod_identity_testkit::netns::skip_reason() {
        skip("teardown_runs_on_panic", Need::Root, &why);
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let node = EksNode::builder().start().expect("node");
        *names.lock().unwrap() = node.namespace_names();
        panic!("test failure while the node lives");
    });
    assert!(r.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 3);
    for n in names {
        assert!(
            !std::path::Path::new("/var/run/netns").join(&n).exists(),
            "{n} left behind"
        );
    }
}
