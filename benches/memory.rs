//! Memory: whole-process growth for N = 1, 10, 100 and 10,000 credential
//! providers, each with one S3 client, one fresh process per side and N.
//!
//! * ours: `PodIdentityProvider` on defaults + an S3 client wired as the
//!   provider documents it (`common::s3_ours`: the provider's `SdkIdentityCache` as the identity cache
//!   and its `credentials_provider()` as the credentials provider);
//! * aws-config: an S3 client from `aws_config::defaults().load()` (its
//!   default chain finds the container endpoint through
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI`; the SDK's lazy cache).
//!
//! Each instance is primed: one identity resolution on its S3 client's real
//! request path, so it fetched and caches credentials (800-character session
//! token, as real ones are about 1 KB) from a minimal in-process agent that
//! closes every connection.
//!
//! Growth is measured from a baseline taken after the runtime, the agent and
//! one plain S3 client with static credentials exist (what every process
//! with an S3 client has, whichever provider it uses), by a counting
//! `#[global_allocator]` (`stats_alloc`: net heap bytes) and by `VmRSS`.
//! "marginal" is the growth per further instance (from N = 1 to the largest
//! N); growth(1) − marginal is the fixed cost shared by every instance in the
//! process (ours: the process-wide HTTP client of the agent client), shown
//! on its own. The headline is N = 1: one provider per
//! process, the normal deployment.

#[path = "common/mod.rs"]
mod common;

use std::alloc::System;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BATCH: usize = 250;

fn sizes() -> Vec<usize> {
    if common::quick() {
        vec![1, 10, 100]
    } else {
        vec![1, 10, 100, 10_000]
    }
}

fn net(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

fn rss_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn mini_agent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |_req: Request<hyper::body::Incoming>| async {
                        let exp = time::OffsetDateTime::now_utc() + time::Duration::hours(6);
                        let exp = exp
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap();
                        let body = format!(
                        "{{\"AccessKeyId\":\"ASIAEXAMPLEEXAMPLE01\",\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\"Token\":\"{}\",\"AccountId\":\"123456789012\",\"Expiration\":\"{exp}\"}}",
                        "T".repeat(800)
                    );
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .header("connection", "close")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/v1/credentials")
}

/// One side, one N, in this (fresh) process: prints a `MEMORY` line.
fn child(side: &str, n: usize) {
    let (_dir, token) = common::token_env();
    let settle = if common::quick() {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    let rt = common::runtime();
    rt.block_on(async {
        let uri = mini_agent().await;
        std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri);
        let endpoint = "http://127.0.0.1:9"; // never contacted
                                             // What every process with an S3 client has: a client with static
                                             // credentials, one request path captured and resolved.
        let plain = common::s3_with_provider(
            endpoint,
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "static"),
            None,
        )
        .await;
        common::capture_identity_path(&plain).await.resolve().await;
        tokio::time::sleep(settle).await;

        let (rss0, region) = (rss_bytes(), Region::new(GLOBAL));
        let mut providers = Vec::with_capacity(n);
        let mut clients = Vec::with_capacity(n);
        let base = net(&region); // the two Vecs
        for chunk_start in (0..n).step_by(BATCH) {
            let chunk = chunk_start..(chunk_start + BATCH).min(n);
            let mut paths = Vec::new();
            for _ in chunk {
                let client = match side {
                    "ours" => {
                        let p = common::provider(&uri, &token);
                        let c = common::s3_ours(endpoint, &p).await;
                        providers.push(p);
                        c
                    }
                    _ => common::s3_with_aws_default_chain(endpoint).await,
                };
                paths.push(common::capture_identity_path(&client).await);
                clients.push(client);
            }
            futures_util::future::join_all(paths.iter().map(|p| p.resolve())).await;
            drop(paths);
        }
        tokio::time::sleep(settle).await;
        let growth = net(&region) - base;
        let rss = rss_bytes() - rss0;
        println!("MEMORY side={side} n={n} heap_growth={growth} rss_growth={rss}");
        drop(clients);
        drop(providers);
    });
    rt.shutdown_timeout(Duration::from_millis(100));
}

fn main() {
    common::exit_unless_cargo_bench("memory");
    if let Some(s) = common::scenario_arg() {
        let (side, n) = s.split_once('_').expect("side_n");
        child(side, n.parse().expect("n"));
        return;
    }
    let quiet = common::quiet::Quiet::begin("memory");
    // (side, n) -> (heap, rss)
    let mut got: BTreeMap<(String, usize), (f64, f64)> = BTreeMap::new();
    for n in sizes() {
        for side in ["ours", "aws"] {
            let out = common::fresh_process_output(&format!("{side}_{n}"), &[]);
            for line in out.lines().filter(|l| l.starts_with("MEMORY ")) {
                let field = |k: &str| -> f64 {
                    line.split_whitespace()
                        .find_map(|f| {
                            f.strip_prefix(&format!("{k}="))
                                .map(|v| v.parse().unwrap_or(f64::NAN))
                        })
                        .unwrap_or(f64::NAN)
                };
                got.insert(
                    (side.to_owned(), n),
                    (field("heap_growth"), field("rss_growth")),
                );
            }
        }
    }
    let g = |side: &str, n: usize| {
        got.get(&(side.to_owned(), n))
            .copied()
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let sizes = sizes();
    let big = *sizes.last().unwrap();
    println!("\nmemory: whole-process growth with N providers, each with one primed S3 client");
    println!(
        "{:>7} {:>16} {:>16} {:>14} {:>14}",
        "N", "ours heap B", "aws heap B", "ours RSS B", "aws RSS B"
    );
    for &n in &sizes {
        let (o, a) = (g("ours", n), g("aws", n));
        println!(
            "{n:>7} {:>16.0} {:>16.0} {:>14.0} {:>14.0}",
            o.0, a.0, o.1, a.1
        );
    }
    println!();
    for &n in &sizes {
        let (o, a) = (g("ours", n), g("aws", n));
        common::result(
            "memory",
            &format!("n{n}_heap_growth_bytes"),
            o.0,
            a.0,
            common::whole_number,
        );
        common::result(
            "memory",
            &format!("n{n}_heap_per_provider_bytes"),
            o.0 / n as f64,
            a.0 / n as f64,
            common::whole_number,
        );
        common::result(
            "memory",
            &format!("n{n}_rss_growth_bytes"),
            o.1,
            a.1,
            common::whole_number,
        );
    }
    // Marginal cost per further instance, from the largest N, and the fixed
    // cost shared by all instances of a process: growth(1) − marginal.
    let marginal = |side: &str| (g(side, big).0 - g(side, 1).0) / (big - 1) as f64;
    let (mo, ma) = (marginal("ours"), marginal("aws"));
    common::result(
        "memory",
        &format!("marginal_heap_per_provider_bytes_n1_to_n{big}"),
        mo,
        ma,
        common::whole_number,
    );
    common::result(
        "memory",
        "shared_fixed_heap_bytes",
        g("ours", 1).0 - mo,
        g("aws", 1).0 - ma,
        common::whole_number,
    );
    common::result(
        "memory",
        "one_provider_process_heap_growth_bytes",
        g("ours", 1).0,
        g("aws", 1).0,
        common::whole_number,
    );
    quiet.end();
}
