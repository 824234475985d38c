//! Failing agents, short-lived credentials: agent requests and caller outcomes.
//!
//! Every caller is one SDK request's identity resolution, driven exactly as
//! the orchestrator does it (`identity_cache.resolve_cached_identity(resolver,
//! ..)` with the runtime components captured from a real `aws-sdk-s3`
//! `GetObject`). Sides, each against its own identically configured
//! FakeAgent (so requests are counted per side), running at once:
//! * `ours`: `PodIdentityProvider` on defaults, wired as the provider
//!   documents it (`common::s3_ours`: the provider's `SdkIdentityCache` as the identity cache
//!   and its `credentials_provider()` as the credentials provider);
//! * `aws-config`: its default chain (container provider via
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI`) behind the SDK's lazy cache;
//! * `ours+sdk-lazy` (cold scenarios only, for reference): our provider
//!   behind the SDK's lazy cache, i.e. without the identity-cache line.
//!
//! Each scenario runs in a fresh process (this binary re-run with
//! `--scenario NAME`), so no connection, cache or timer outlives it:
//! * `cold_500`, `cold_hang`: no credentials yet, the agent answering 500 /
//!   never answering, 64 concurrent callers;
//! * `primed_expired`: both sides primed with 20 s credentials, then the
//!   agent answers 500 to everything; once the credentials have expired 64
//!   callers arrive. Every agent request from the fault's start counts,
//!   background retries included;
//! * `recovering`: no credentials, the agent answers 500 for 5 s and then
//!   recovers; 16 loops call every 50 ms. Time from the recovery until the
//!   first, and until every loop's, successful call; agent requests made;
//! * `fast_failing`: the agent answers 404 (no association) at once; 32 loops
//!   call every 10 ms for 10 s (5 s with `--quick`). Agent requests made;
//! * `short_lived_4s`, `short_lived_20s`: credentials living 4 s / 20 s; 16
//!   loops call every 10 ms for 40 s (12 s with `--quick`). Agent requests
//!   per call.
//!
//! Default timeouts and retries on every side. A side that has not answered
//! all callers within the cap (20 s with `--quick`, 60 s otherwise) is
//! reported as `>cap` with the count answered.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::ResolveCachedIdentity;
use eks_pod_identity_testkit::{FakeAgent, Fault, FaultPlan};

const SCENARIOS: [&str; 7] = [
    "cold_500",
    "cold_hang",
    "primed_expired",
    "recovering",
    "fast_failing",
    "short_lived_4s",
    "short_lived_20s",
];

fn cap() -> Duration {
    if common::quick() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(60)
    }
}

type Path = Arc<common::SdkIdentityPath>;

async fn resolve(path: &Path) -> Result<(), String> {
    path.components
        .identity_cache()
        .resolve_cached_identity(path.resolver.clone(), &path.components, &path.cfg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn always(fault: Fault) -> FaultPlan {
    FaultPlan::new().with_rate(1.0, [fault], 7)
}

fn not_found() -> Fault {
    Fault::Status(
        404,
        "[00000000-0000-0000-0000-000000000000]: (ResourceNotFoundException): no pod identity association, fault: client".into(),
    )
}

async fn agent(lifetime: Duration, plan: FaultPlan) -> FakeAgent {
    FakeAgent::builder()
        .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
        .lifetime(lifetime)
        .faults(plan)
        .start()
        .await
        .expect("fake agent")
}

const ENDPOINT: &str = "http://127.0.0.1:9"; // S3 itself is never contacted

async fn ours_path(agent: &FakeAgent, token: &std::path::Path) -> Path {
    let p = common::provider(&agent.uri(), token);
    Arc::new(common::capture_identity_path(&common::s3_ours(ENDPOINT, &p).await).await)
}

async fn ours_lazy_path(agent: &FakeAgent, token: &std::path::Path) -> Path {
    let p = common::provider(&agent.uri(), token);
    Arc::new(
        common::capture_identity_path(&common::s3_with_provider(ENDPOINT, p, None).await).await,
    )
}

async fn aws_path(agent: &FakeAgent) -> Path {
    std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.uri());
    Arc::new(
        common::capture_identity_path(&common::s3_with_aws_default_chain(ENDPOINT).await).await,
    )
}

// ---------------------------------------------------------------- burst of callers

struct Burst {
    answered: usize,
    ok: usize,
    last: Option<Duration>,
}

/// `n` concurrent callers, once each; waits at most `cap`.
async fn burst(path: Path, n: usize, cap: Duration) -> Burst {
    let start = Instant::now();
    let answered = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (path, answered, ok) = (path.clone(), answered.clone(), ok.clone());
            tokio::spawn(async move {
                if resolve(&path).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                answered.fetch_add(1, Ordering::Relaxed);
                start.elapsed()
            })
        })
        .collect();
    let last = tokio::time::timeout(cap, futures_util::future::join_all(handles))
        .await
        .ok()
        .and_then(|t| t.into_iter().map(|t| t.unwrap()).max());
    Burst {
        answered: answered.load(Ordering::Relaxed),
        ok: ok.load(Ordering::Relaxed),
        last,
    }
}

fn print_burst(scenario: &str, side: &str, b: &Burst, requests: u64, n: usize) {
    let last = match b.last {
        Some(d) => format!("{:.3} s", d.as_secs_f64()),
        None => format!(">{} s ({}/{n} answered)", cap().as_secs(), b.answered),
    };
    println!(
        "  {scenario:<15} {side:<14} agent requests {requests:>5}, last answer {last}, {} ok",
        b.ok
    );
}

fn burst_results(scenario: &str, ours: (&Burst, u64), aws: (&Burst, u64)) {
    common::result(
        "failing_agent",
        &format!("{scenario}_agent_requests"),
        ours.1 as f64,
        aws.1 as f64,
        common::whole_number,
    );
    let secs = |b: &Burst| b.last.map_or(cap().as_secs_f64(), |d| d.as_secs_f64());
    let mark = |b: &Burst| if b.last.is_none() { ">" } else { "" };
    println!(
        "RESULT failing_agent {scenario}_last_answer_s ours={}{:.3} aws-config={}{:.3} ratio={}{}",
        mark(ours.0),
        secs(ours.0),
        mark(aws.0),
        secs(aws.0),
        mark(aws.0),
        common::ratio(secs(ours.0), secs(aws.0))
    );
}

async fn cold(fault: Fault, scenario: &str, token: &std::path::Path) {
    let (oa, la, aa) = (
        agent(Duration::from_secs(3600), always(fault.clone())).await,
        agent(Duration::from_secs(3600), always(fault.clone())).await,
        agent(Duration::from_secs(3600), always(fault)).await,
    );
    let (o, l, a) = (
        ours_path(&oa, token).await,
        ours_lazy_path(&la, token).await,
        aws_path(&aa).await,
    );
    let (bo, bl, ba) = tokio::join!(
        burst(o, 64, cap()),
        burst(l, 64, cap()),
        burst(a, 64, cap())
    );
    let (ro, rl, ra) = (oa.stats().total, la.stats().total, aa.stats().total);
    print_burst(scenario, "ours", &bo, ro, 64);
    print_burst(scenario, "ours+sdk-lazy", &bl, rl, 64);
    print_burst(scenario, "aws-config", &ba, ra, 64);
    burst_results(scenario, (&bo, ro), (&ba, ra));
}

async fn primed_expired(token: &std::path::Path) {
    let lifetime = Duration::from_secs(20);
    let (oa, aa) = (
        agent(lifetime, FaultPlan::new()).await,
        agent(lifetime, FaultPlan::new()).await,
    );
    let (o, a) = (ours_path(&oa, token).await, aws_path(&aa).await);
    for (side, path) in [("ours", &o), ("aws-config", &a)] {
        if let Err(e) = resolve(path).await {
            println!("RESULT failing_agent primed_expired not_run: {side} could not be primed with 20 s credentials: {e}");
            return;
        }
    }
    let primed_at = Instant::now();
    // The fault starts now; count every agent request from here.
    let (o0, a0) = (oa.stats().total, aa.stats().total);
    oa.set_faults(always(Fault::internal_error()));
    aa.set_faults(always(Fault::internal_error()));
    // Until the credentials have expired (+1 s): ours refreshes in the
    // background meanwhile, aws-config does nothing until a request comes.
    tokio::time::sleep_until((primed_at + lifetime + Duration::from_secs(1)).into()).await;
    let (o1, a1) = (oa.stats().total, aa.stats().total);
    let (bo, ba) = tokio::join!(burst(o.clone(), 64, cap()), burst(a.clone(), 64, cap()));
    let (o2, a2) = (oa.stats().total, aa.stats().total);
    let s = "primed_expired";
    println!(
        "  {s:<15} ours           agent requests before expiry {:>3} (background), with the callers {:>3}",
        o1 - o0,
        o2 - o1
    );
    println!(
        "  {s:<15} aws-config     agent requests before expiry {:>3} (background), with the callers {:>3}",
        a1 - a0,
        a2 - a1
    );
    print_burst(s, "ours", &bo, o2 - o0, 64);
    print_burst(s, "aws-config", &ba, a2 - a0, 64);
    burst_results(s, (&bo, o2 - o0), (&ba, a2 - a0));
    common::result(
        "failing_agent",
        "primed_expired_agent_requests_before_expiry",
        (o1 - o0) as f64,
        (a1 - a0) as f64,
        common::whole_number,
    );
}

// ---------------------------------------------------------------- paced loops

struct Loops {
    calls: u64,
    errors: u64,
    /// Per loop: when (since the start) its first successful call after
    /// `succeed_after` returned.
    first_ok: Vec<Option<Duration>>,
}

/// `loops` loops, one call every `period`, for `run_for` (or, when
/// `stop_when_all_ok`, until every loop has succeeded once after
/// `succeed_after`, within `run_for`).
async fn paced(
    path: Path,
    loops: usize,
    period: Duration,
    run_for: Duration,
    succeed_after: Duration,
    stop_when_all_ok: bool,
) -> Loops {
    let start = Instant::now();
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..loops)
        .map(|i| {
            let (path, calls, errors) = (path.clone(), calls.clone(), errors.clone());
            tokio::spawn(async move {
                tokio::time::sleep(period.mul_f64(i as f64 / loops as f64)).await;
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut first_ok = None;
                loop {
                    tick.tick().await;
                    if start.elapsed() >= run_for {
                        break;
                    }
                    let r = resolve(&path).await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    match r {
                        Ok(()) => {
                            if first_ok.is_none() && start.elapsed() >= succeed_after {
                                first_ok = Some(start.elapsed());
                                if stop_when_all_ok {
                                    break;
                                }
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                first_ok
            })
        })
        .collect();
    let mut first_ok = Vec::new();
    for h in handles {
        first_ok.push(h.await.unwrap());
    }
    Loops {
        calls: calls.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_ok,
    }
}

async fn recovering(token: &std::path::Path) {
    let outage = Duration::from_secs(5);
    let (oa, aa) = (
        agent(Duration::from_secs(3600), always(Fault::internal_error())).await,
        agent(Duration::from_secs(3600), always(Fault::internal_error())).await,
    );
    let (o, a) = (ours_path(&oa, token).await, aws_path(&aa).await);
    let recover = async {
        tokio::time::sleep(outage).await;
        oa.set_faults(FaultPlan::new());
        aa.set_faults(FaultPlan::new());
    };
    let period = Duration::from_millis(50);
    let (lo, la, ()) = tokio::join!(
        paced(o, 16, period, outage + cap(), outage, true),
        paced(a, 16, period, outage + cap(), outage, true),
        recover
    );
    let (ro, ra) = (oa.stats().total, aa.stats().total);
    let after = |l: &Loops, all: bool| -> Option<f64> {
        let t: Vec<Duration> = l
            .first_ok
            .iter()
            .map(|t| t.unwrap_or(Duration::MAX))
            .collect();
        let x = if all { t.iter().max() } else { t.iter().min() }.copied()?;
        (x != Duration::MAX).then(|| (x - outage).as_secs_f64())
    };
    let s = "recovering";
    for (side, l, r) in [("ours", &lo, ro), ("aws-config", &la, ra)] {
        let f =
            |x: Option<f64>| x.map_or(format!(">{} s", cap().as_secs()), |v| format!("{v:.3} s"));
        println!(
            "  {s:<15} {side:<14} agent requests {r:>5}, {} calls ({} failed); after recovery: first success {}, every loop {}",
            l.calls,
            l.errors,
            f(after(l, false)),
            f(after(l, true))
        );
    }
    let capped = cap().as_secs_f64();
    common::result(
        "failing_agent",
        "recovering_s_until_first_success",
        after(&lo, false).unwrap_or(capped),
        after(&la, false).unwrap_or(capped),
        common::three_decimals,
    );
    common::result(
        "failing_agent",
        "recovering_s_until_every_caller_succeeds",
        after(&lo, true).unwrap_or(capped),
        after(&la, true).unwrap_or(capped),
        common::three_decimals,
    );
    common::result(
        "failing_agent",
        "recovering_agent_requests",
        ro as f64,
        ra as f64,
        common::whole_number,
    );
}

async fn fast_failing(token: &std::path::Path) {
    let run_for = if common::quick() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(10)
    };
    let (oa, aa) = (
        agent(Duration::from_secs(3600), always(not_found())).await,
        agent(Duration::from_secs(3600), always(not_found())).await,
    );
    let (o, a) = (ours_path(&oa, token).await, aws_path(&aa).await);
    let period = Duration::from_millis(10);
    let (lo, la) = tokio::join!(
        paced(o, 32, period, run_for, Duration::ZERO, false),
        paced(a, 32, period, run_for, Duration::ZERO, false)
    );
    let (ro, ra) = (oa.stats().total, aa.stats().total);
    let s = "fast_failing";
    for (side, l, r) in [("ours", &lo, ro), ("aws-config", &la, ra)] {
        println!(
            "  {s:<15} {side:<14} agent requests {r:>5} in {} s, {} calls ({} failed)",
            run_for.as_secs(),
            l.calls,
            l.errors
        );
    }
    common::result(
        "failing_agent",
        &format!("fast_failing_agent_requests_in_{}s", run_for.as_secs()),
        ro as f64,
        ra as f64,
        common::whole_number,
    );
    common::result(
        "failing_agent",
        "fast_failing_calls_made",
        lo.calls as f64,
        la.calls as f64,
        common::whole_number,
    );
}

async fn short_lived(lifetime: Duration, token: &std::path::Path) {
    let run_for = if common::quick() {
        Duration::from_secs(12)
    } else {
        Duration::from_secs(40)
    };
    // The agent never hands out credentials with <= 15 s left; shorter
    // lifetimes are injected as a fault on every answer.
    let (agent_lifetime, plan) = if lifetime <= Duration::from_secs(15) {
        (
            Duration::from_secs(3600),
            always(Fault::ExpiresIn(lifetime)),
        )
    } else {
        (lifetime, FaultPlan::new())
    };
    let (oa, aa) = (
        agent(agent_lifetime, plan.clone()).await,
        agent(agent_lifetime, plan).await,
    );
    let (o, a) = (ours_path(&oa, token).await, aws_path(&aa).await);
    let period = Duration::from_millis(10);
    let (lo, la) = tokio::join!(
        paced(o, 16, period, run_for, Duration::ZERO, false),
        paced(a, 16, period, run_for, Duration::ZERO, false)
    );
    let (ro, ra) = (oa.stats().total, aa.stats().total);
    let s = format!("short_lived_{}s", lifetime.as_secs());
    let lifetimes = run_for.as_secs_f64() / lifetime.as_secs_f64();
    for (side, l, r) in [("ours", &lo, ro), ("aws-config", &la, ra)] {
        println!(
            "  {s:<15} {side:<14} agent requests {r:>5} in {} s ({:.2} per lifetime), {} calls ({} failed)",
            run_for.as_secs(),
            r as f64 / lifetimes,
            l.calls,
            l.errors
        );
    }
    common::result(
        "failing_agent",
        &format!("{s}_agent_requests_per_call"),
        ro as f64 / lo.calls.max(1) as f64,
        ra as f64 / la.calls.max(1) as f64,
        common::four_decimals,
    );
    common::result(
        "failing_agent",
        &format!("{s}_agent_requests_per_lifetime"),
        ro as f64 / lifetimes,
        ra as f64 / lifetimes,
        common::two_decimals,
    );
    common::result(
        "failing_agent",
        &format!("{s}_failed_calls"),
        lo.errors as f64,
        la.errors as f64,
        common::whole_number,
    );
}

fn run_scenario(name: &str) {
    let (_dir, token) = common::token_env();
    let rt = common::runtime();
    rt.block_on(async {
        match name {
            "cold_500" => cold(Fault::internal_error(), name, &token).await,
            "cold_hang" => cold(Fault::Hang, name, &token).await,
            "primed_expired" => primed_expired(&token).await,
            "recovering" => recovering(&token).await,
            "fast_failing" => fast_failing(&token).await,
            "short_lived_4s" => short_lived(Duration::from_secs(4), &token).await,
            "short_lived_20s" => short_lived(Duration::from_secs(20), &token).await,
            other => panic!("unknown scenario {other}"),
        }
    });
    // Tasks left hanging (cold_hang) are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_millis(100));
}

fn main() {
    common::exit_unless_cargo_bench("failing_agent");
    if let Some(name) = common::scenario_arg() {
        run_scenario(&name);
        return;
    }
    let quiet = common::quiet::Quiet::begin("failing_agent");
    println!(
        "\nfailing_agent: each scenario in a fresh process, default settings, cap {} s",
        cap().as_secs()
    );
    for name in SCENARIOS {
        common::fresh_process(name, &[]);
    }
    quiet.end();
}
