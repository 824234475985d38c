//! Rotation: S3 `GetObject` latency through `aws-sdk-s3` while credentials
//! rotate, on default settings on both sides.
//!
//! A stub S3 on 127.0.0.1 answers every request with a fixed object;
//! credentials come from FakeAgents that add D = 200 ms to every fetch and
//! hand out short-lived credentials. One agent per side, so agent requests
//! are counted per side:
//! * ours: `PodIdentityProvider` on its defaults, wired as the provider
//!   documents it (`common::s3_ours`: the provider's `SdkIdentityCache` as the identity cache
//!   and its `credentials_provider()` as the credentials provider);
//! * aws-config: its default chain, finding the agent through
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
//!
//! Both sides run at once in this process (same CPU share). Each request
//! loop is *paced*: one request every 20 ms (50 requests/s per loop, loops
//! staggered), so the 2 vCPUs are far from saturated and a request slower
//! than D/2 = 100 ms can only have waited for the agent: that is a stall.
//! Phases of 1 and 16 loops; each phase repeated (fresh agents, clients and
//! stub each time) and the medians taken here.
//!
//! Full run: 40 s credentials (default windows: the advisory window is 20 s,
//! the mandatory one 10 s), 70 s per phase, 3 repeats. `--quick`: 20 s
//! credentials, 25 s per phase, 1 repeat.
//!
//! One untimed request per side first (the cold fetch is not a rotation).
//! A "rotation" is a new access key seen by the stub S3 on a signed request.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use eks_pod_identity_testkit::FakeAgent;

const D: Duration = Duration::from_millis(200);
const PERIOD: Duration = Duration::from_millis(20);

/// A figure's name, how to compute it from one side's run, how to print it.
type Figure = (&'static str, Box<dyn Fn(&Side) -> f64>, fn(f64) -> String);

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
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                // Stagger the loops over one period.
                tokio::time::sleep(PERIOD.mul_f64(i as f64 / loops as f64)).await;
                let mut tick = tokio::time::interval(PERIOD);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut lat = Vec::with_capacity(10_000);
                let mut errors = 0;
                loop {
                    tick.tick().await;
                    if Instant::now() >= until {
                        break;
                    }
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

async fn start_agent(lifetime: Duration) -> FakeAgent {
    FakeAgent::builder()
        .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
        .lifetime(lifetime)
        .latency(D)
        .start()
        .await
        .expect("fake agent")
}

/// One phase: `loops` paced loops per side for `run_for`.
fn phase(
    rt: &tokio::runtime::Runtime,
    token: &std::path::Path,
    loops: usize,
    lifetime: Duration,
    run_for: Duration,
) -> (Side, Side) {
    rt.block_on(async {
        let s3 = common::start_stub_s3().await;
        let ours_agent = start_agent(lifetime).await;
        let aws_agent = start_agent(lifetime).await;
        // aws-config reads the process environment when its chain is built.
        std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_agent.uri());
        let aws_client = common::s3_with_aws_default_chain(&s3.endpoint()).await;
        let provider = common::provider(&ours_agent.uri(), token);
        let ours_client = common::s3_ours(&s3.endpoint(), &provider).await;

        // A failure here shows as errors in the table, not as a panic.
        for (client, bucket) in [(&ours_client, "ours"), (&aws_client, "aws")] {
            if let Err(e) = common::get_object(client, bucket).await {
                eprintln!("{bucket}: first request failed: {e}");
            }
        }
        let until = Instant::now() + run_for;
        let (o, a) = tokio::join!(
            drive(ours_client, "ours", loops, until),
            drive(aws_client, "aws", loops, until)
        );
        let side = |(lat, errors): (Vec<Duration>, u64), bucket: &str, agent: &FakeAgent| Side {
            latencies: lat,
            rotations: s3.keys(bucket).saturating_sub(1),
            agent_requests: agent.stats().total,
            errors,
        };
        let st = provider.status();
        eprintln!(
            "loops={loops}: ours status: fetches={} waits={} failures={}",
            st.fetches, st.waits, st.failures
        );
        (side(o, "ours", &ours_agent), side(a, "aws", &aws_agent))
    })
}

fn main() {
    common::exit_unless_cargo_bench("rotation");
    let quick = common::quick();
    let (lifetime, run_for, repeats) = if quick {
        (Duration::from_secs(20), Duration::from_secs(25), 1)
    } else {
        (Duration::from_secs(40), Duration::from_secs(70), 3)
    };
    let (_dir, token) = common::token_env();
    let quiet = common::quiet::Quiet::begin("rotation");
    let rt = common::runtime();
    let mut runs: Vec<(usize, Side, Side)> = Vec::new();
    for _ in 0..repeats {
        for loops in [1usize, 16] {
            let (o, a) = phase(&rt, &token, loops, lifetime, run_for);
            runs.push((loops, o, a));
        }
    }

    let mode = if quick { "quick" } else { "full" };
    println!(
        "\nrotation ({mode}): D = {} ms per agent fetch, credentials live {} s, {} s per phase, \
         paced at {} requests/s per loop, {repeats} repeat(s), default settings on both sides",
        D.as_millis(),
        lifetime.as_secs(),
        run_for.as_secs(),
        1000 / PERIOD.as_millis()
    );
    println!(
        "{:<6} {:<11} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>9} {:>6}",
        "loops",
        "side",
        "requests",
        "p50 ms",
        "p99 ms",
        "max ms",
        "max-ns ms",
        "stalls",
        "rotations",
        "fetch/rot",
        "errors"
    );
    for (loops, ours, aws) in &runs {
        for (name, s) in [("ours", ours), ("aws-config", aws)] {
            let v = s.sorted();
            println!(
                "{:<6} {:<11} {:>9} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>7} {:>9} {:>9.2} {:>6}",
                loops,
                name,
                v.len(),
                p(&v, 50.0),
                p(&v, 99.0),
                max(&v),
                max_not_stalled(&v),
                stalls(&v),
                s.rotations,
                fetches_per_rotation(s),
                s.errors
            );
        }
    }
    println!();
    for loops in [1usize, 16] {
        let pick = |f: &dyn Fn(&Side) -> f64| -> (Vec<f64>, Vec<f64>) {
            runs.iter()
                .filter(|r| r.0 == loops)
                .map(|(_, o, a)| (f(o), f(a)))
                .unzip()
        };
        let b = "rotation";
        let figures: [Figure; 8] = [
            (
                "stalled_requests",
                Box::new(|s: &Side| stalls(&s.sorted())),
                common::whole_number,
            ),
            (
                "p50_ms",
                Box::new(|s: &Side| p(&s.sorted(), 50.0)),
                common::three_decimals,
            ),
            (
                "p99_ms",
                Box::new(|s: &Side| p(&s.sorted(), 99.0)),
                common::three_decimals,
            ),
            (
                "max_ms",
                Box::new(|s: &Side| max(&s.sorted())),
                common::three_decimals,
            ),
            (
                "max_not_stalled_ms",
                Box::new(|s: &Side| max_not_stalled(&s.sorted())),
                common::three_decimals,
            ),
            (
                "rotations",
                Box::new(|s: &Side| s.rotations as f64),
                common::whole_number,
            ),
            (
                "agent_fetches_per_rotation",
                Box::new(fetches_per_rotation),
                common::two_decimals,
            ),
            (
                "errors",
                Box::new(|s: &Side| s.errors as f64),
                common::whole_number,
            ),
        ];
        for (name, f, fmt) in figures {
            let (o, a) = pick(&f);
            common::result_rep(b, &format!("loops{loops}_{name}"), &o, &a, fmt);
        }
    }
    quiet.end();
}

fn p(v: &[Duration], q: f64) -> f64 {
    common::ms(common::percentile(v, q))
}

fn max(v: &[Duration]) -> f64 {
    common::ms(*v.last().unwrap_or(&Duration::ZERO))
}

/// Requests that waited for the agent (slower than D/2, on a machine far
/// from saturated).
fn stalls(v: &[Duration]) -> f64 {
    v.iter().filter(|d| **d > D / 2).count() as f64
}

/// The slowest request that did not stall: the scheduling tail both sides share.
fn max_not_stalled(v: &[Duration]) -> f64 {
    common::ms(
        v.iter()
            .rev()
            .find(|d| **d <= D / 2)
            .copied()
            .unwrap_or_default(),
    )
}

/// Agent requests per credential set used (the first fetch counts as one).
fn fetches_per_rotation(s: &Side) -> f64 {
    s.agent_requests as f64 / (s.rotations + 1) as f64
}
