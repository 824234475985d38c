//! Rotation: S3 `GetObject` latency through `aws-sdk-s3` while credentials rotate.
//!
//! A stub S3 on 127.0.0.1 answers every request with a fixed object; credentials
//! come from FakeAgents that add D = 200 ms latency to every fetch and hand out
//! short-lived credentials. Two identically configured agents, one per side, so
//! agent requests are counted per side:
//! * ours: `CredentialChain` (Pod Identity) plugged in with `credentials_provider`
//!   and its own cache as the SDK's identity cache (`.identity_cache(chain.identity_cache())`,
//!   the recommended wiring), refresh policy with a mandatory window scaled to
//!   the short lifetime;
//! * aws-config: its default credential chain, finding the agent through
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
//!
//! Both sides run concurrently in the same process (same CPU share), first with
//! 1 request loop each, then with 16. Every loop sends back-to-back requests.
//!
//! Full run: 40 s credentials, ≥ 3 rotations per side (110 s per phase).
//! `--quick`: 16 s credentials (the agent's floor is > 15 s), 24 s per phase (≥ 2
//! rotations per side; usually 3 for aws-config, 2–3 for ours).
//!
//! One untimed request per side first (the cold fetch is not a rotation).
//! A "rotation" is a new access key seen by the stub S3 on a signed request.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use eks_pod_identity::{CredentialChain, FallbackPolicy, PodIdentityProvider, RefreshPolicy};
use eks_pod_identity_testkit::FakeAgent;

const D: Duration = Duration::from_millis(200);

struct Side {
    latencies: Vec<Duration>,
    rotations: usize,
    agent_requests: u64,
    errors: u64,
}

impl Side {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.latencies.clone();
        v.sort();
        v
    }
}

async fn drive(
    client: aws_sdk_s3::Client,
    bucket: &'static str,
    loops: usize,
    until: Instant,
) -> (Vec<Duration>, u64) {
    let handles: Vec<_> = (0..loops)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(100_000);
                let mut errors = 0;
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = common::get_object(&client, bucket).await;
                    lat.push(t.elapsed());
                    if let Err(e) = r {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("{bucket}: {e}");
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.await.unwrap();
        all.extend(l);
        errors += e;
    }
    (all, errors)
}

fn main() {
    common::exit_unless_cargo_bench("rotation");
    let quick = common::quick();
    let (lifetime, window, run_for) = if quick {
        (
            Duration::from_secs(16),
            Duration::from_secs(2),
            // 2 phases × 24 s: the whole --quick run stays under 60 s.
            Duration::from_secs(24),
        )
    } else {
        (
            Duration::from_secs(40),
            Duration::from_secs(5),
            Duration::from_secs(110),
        )
    };
    let (_dir, token) = common::token_env();

    let rt = common::runtime();
    let mut results = Vec::new();
    for loops in [1usize, 16] {
        let (ours, aws) = rt.block_on(async {
            let s3 = common::start_stub_s3().await;
            let ours_agent = start_agent(lifetime).await;
            let aws_agent = start_agent(lifetime).await;
            // aws-config reads the process environment when its chain is built.
            std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_agent.uri());
            let aws_client = common::s3_with_aws_default_chain(&s3.endpoint()).await;

            let chain = CredentialChain::builder()
                .fallback_policy(FallbackPolicy::Deny)
                .pod_identity(
                    PodIdentityProvider::builder()
                        .endpoint(ours_agent.uri())
                        .token_file(&token),
                )
                .refresh_policy(RefreshPolicy::default().with_mandatory_window(window))
                .build()
                .expect("chain");
            let ours_client = common::s3_with_provider(
                &s3.endpoint(),
                chain.clone(),
                Some(aws_sdk_s3::config::SharedIdentityCache::new(
                    chain.identity_cache(),
                )),
            )
            .await;

            // Cold start is not a rotation: one untimed request per side first
            // (both sides wait for the agent once here).
            common::get_object(&ours_client, "ours")
                .await
                .expect("ours: first request");
            common::get_object(&aws_client, "aws")
                .await
                .expect("aws-config: first request");
            let until = Instant::now() + run_for;
            let (o, a) = tokio::join!(
                drive(ours_client, "ours", loops, until),
                drive(aws_client, "aws", loops, until)
            );
            let side =
                |(lat, errors): (Vec<Duration>, u64), bucket: &str, agent: &FakeAgent| Side {
                    latencies: lat,
                    rotations: s3.keys(bucket).saturating_sub(1),
                    agent_requests: agent.stats().total,
                    errors,
                };
            let ours = side(o, "ours", &ours_agent);
            let aws = side(a, "aws", &aws_agent);
            let st = chain.status();
            eprintln!(
                "loops={loops}: ours status: fetches={} waits={} failures={}",
                st.fetches, st.waits, st.failures
            );
            (ours, aws)
        });
        results.push((loops, ours, aws));
    }

    let mode = if quick { "quick" } else { "full" };
    println!(
        "\nrotation ({mode}): D = {} ms per agent fetch, credentials live {} s, {} s per phase, \
         ours and aws-config concurrently",
        D.as_millis(),
        lifetime.as_secs(),
        run_for.as_secs()
    );
    println!(
        "{:<6} {:<11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>6}",
        "loops",
        "side",
        "requests",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        ">D/2",
        "rotations",
        "fetch/rot",
        "errors"
    );
    for (loops, ours, aws) in &results {
        for (name, s) in [("ours", ours), ("aws-config", aws)] {
            let v = s.sorted();
            println!(
                "{:<6} {:<11} {:>9} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>9} {:>8.2} {:>6}",
                loops,
                name,
                v.len(),
                common::ms(common::percentile(&v, 50.0)),
                common::ms(common::percentile(&v, 99.0)),
                common::ms(common::percentile(&v, 99.9)),
                common::ms(*v.last().unwrap_or(&Duration::ZERO)),
                v.iter().filter(|d| **d > D / 2).count(),
                s.rotations,
                fetches_per_rotation(s),
                s.errors
            );
        }
    }
    println!();
    for (loops, ours, aws) in &results {
        let (o, a) = (ours.sorted(), aws.sorted());
        let p = |v: &[Duration], q: f64| common::ms(common::percentile(v, q));
        let max = |v: &[Duration]| common::ms(*v.last().unwrap_or(&Duration::ZERO));
        let slow = |v: &[Duration]| v.iter().filter(|d| **d > D / 2).count() as f64;
        // The slowest request that did not stall on a refresh: the CPU /
        // scheduling tail both sides share, without the stalls that differ.
        let max_unstalled = |v: &[Duration]| {
            common::ms(
                v.iter()
                    .rev()
                    .find(|d| **d <= D / 2)
                    .copied()
                    .unwrap_or_default(),
            )
        };
        let b = "rotation";
        common::result(
            b,
            &format!("loops{loops}_p50_ms"),
            p(&o, 50.0),
            p(&a, 50.0),
            common::f3,
        );
        common::result(
            b,
            &format!("loops{loops}_p99_ms"),
            p(&o, 99.0),
            p(&a, 99.0),
            common::f3,
        );
        common::result(
            b,
            &format!("loops{loops}_p99.9_ms"),
            p(&o, 99.9),
            p(&a, 99.9),
            common::f3,
        );
        common::result(
            b,
            &format!("loops{loops}_max_ms"),
            max(&o),
            max(&a),
            common::f3,
        );
        common::result(
            b,
            &format!("loops{loops}_max_not_stalled_ms"),
            max_unstalled(&o),
            max_unstalled(&a),
            common::f3,
        );
        common::result(
            b,
            &format!("loops{loops}_slower_than_D/2"),
            slow(&o),
            slow(&a),
            common::f0,
        );
        common::result(
            b,
            &format!("loops{loops}_rotations"),
            ours.rotations as f64,
            aws.rotations as f64,
            common::f0,
        );
        common::result(
            b,
            &format!("loops{loops}_agent_fetches_per_rotation"),
            fetches_per_rotation(ours),
            fetches_per_rotation(aws),
            common::f2,
        );
        println!(
            "RESULT rotation loops{loops}_max_minus_p50_ms ours={:.3} aws-config={:.3} ratio={}",
            max(&o) - p(&o, 50.0),
            max(&a) - p(&a, 50.0),
            common::ratio(max(&o) - p(&o, 50.0), max(&a) - p(&a, 50.0))
        );
    }
}

async fn start_agent(lifetime: Duration) -> FakeAgent {
    FakeAgent::builder()
        .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
        .lifetime(lifetime)
        .latency(D)
        .start()
        .await
        .expect("fake agent")
}

/// Agent requests per credential set used (the first fetch counts as one).
fn fetches_per_rotation(s: &Side) -> f64 {
    s.agent_requests as f64 / (s.rotations + 1) as f64
}
