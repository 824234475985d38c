//! Shared helpers for the `check_*` integration tests: an injected env, short
//! budgets, loopback-only endpoints.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eks_pod_identity_doctor::check::{run_check, CheckOptions};
use eks_pod_identity_doctor::report::{Finding, ProbeResult, Report};
use eks_pod_identity_provider::config::MapEnv;

/// Options with an injected env, short budgets, no STS, no IPv6 and the IPv4
/// IMDS pointed at `imds` (loopback).
pub fn options(env: &[(&str, &str)], imds: &str) -> CheckOptions {
    CheckOptions {
        env: Arc::new(env.iter().copied().collect::<MapEnv>()),
        timeout: Duration::from_secs(4),
        probe_timeout: Duration::from_millis(700),
        connect_timeout: Duration::from_millis(300),
        imds_endpoint: Some(imds.to_owned()),
        imds_ipv6_endpoint: None,
        ipv6: false,
        sts: false,
        sts_endpoint: None,
        pod_ip_env: "POD_IP".into(),
        host_ip_env: "HOST_IP".into(),
    }
}

/// Runs a check.
pub async fn check(opts: &CheckOptions) -> Report {
    run_check(opts).await.expect("check runs")
}

/// A loopback port nothing listens on (connection refused).
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}")
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

/// A listener that accepts connections and never answers (what hop limit 1
/// looks like from a pod: the handshake completes, the PUT answer never comes).
pub async fn accept_and_hold() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

/// A listener that answers every connection with `raw` (after reading the request head).
pub async fn answer_with(raw: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(raw.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}
