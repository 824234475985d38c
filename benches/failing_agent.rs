//! Failing agent: no valid credentials, the agent failing, 64 concurrent callers.
//!
//! Each caller is one SDK request's identity resolution, driven exactly as the
//! orchestrator does it (`identity_cache.resolve_cached_identity(resolver, ..)`
//! with the runtime components captured from a real `aws-sdk-s3` `GetObject`).
//! The provider starts with no credentials: for both implementations this is
//! the same request path as credentials that have expired (aws-config's lazy
//! cache clears an expired entry and loads; our cache never serves expired
//! credentials and joins/starts one fetch).
//!
//! Sides, each against its own identically configured FakeAgent (so requests
//! are counted per side), all running concurrently:
//! * `ours`: `PodIdentityProvider` with its own cache as the SDK's identity cache
//!   (`.identity_cache(provider.identity_cache())`, the recommended wiring);
//! * `ours+lazy`: `PodIdentityProvider` behind the SDK's default lazy cache
//!   (printed for reference, not part of the RESULT ratio);
//! * `aws-config`: its default chain (container provider via
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI`) behind the SDK's default lazy cache.
//!
//! Faults: every request answered 500 (EKS Auth InternalServerException), and
//! every request hanging (never answered). Default timeouts and retries on
//! every side. A side that has not answered all callers within the cap
//! (20 s with `--quick`, 180 s otherwise) is reported as `>cap` with the count
//! answered; agent requests are counted until then.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use eks_pod_identity::PodIdentityProvider;
use eks_pod_identity_testkit::{FakeAgent, Fault, FaultPlan};

const CALLERS: usize = 64;

struct Run {
    answered: usize,
    last: Option<Duration>,
    agent_requests: u64,
}

async fn run_side(path: Arc<common::SdkIdentityPath>, agent: &FakeAgent, cap: Duration) -> Run {
    let start = Instant::now();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let path = path.clone();
            let answered = answered.clone();
            tokio::spawn(async move {
                use aws_sdk_s3::config::ResolveCachedIdentity;
                let r = path
                    .components
                    .identity_cache()
                    .resolve_cached_identity(path.resolver.clone(), &path.components, &path.cfg)
                    .await;
                assert!(r.is_err(), "the agent only fails");
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                start.elapsed()
            })
        })
        .collect();
    let all = futures_util::future::join_all(handles);
    let last = match tokio::time::timeout(cap, all).await {
        Ok(times) => times.into_iter().map(|t| t.unwrap()).max(),
        Err(_) => None, // the tasks are aborted when the runtime shuts down
    };
    Run {
        answered: answered.load(std::sync::atomic::Ordering::Relaxed),
        last,
        agent_requests: agent.stats().total,
    }
}

async fn failing_agent(fault: &Fault) -> FakeAgent {
    FakeAgent::builder()
        .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
        .faults(FaultPlan::new().with_rate(1.0, [fault.clone()], 7))
        .start()
        .await
        .expect("fake agent")
}

fn main() {
    common::exit_unless_cargo_bench("failing_agent");
    let quick = common::quick();
    let cap = if quick {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(180)
    };
    let (_dir, token) = common::token_env();

    let mut rows = Vec::new();
    for (name, fault) in [("500", Fault::internal_error()), ("hang", Fault::Hang)] {
        // A fresh runtime per scenario: tasks left hanging are dropped with it.
        let rt = common::runtime();
        let (ours, ours_lazy, aws) = rt.block_on(async {
            let ours_agent = failing_agent(&fault).await;
            let lazy_agent = failing_agent(&fault).await;
            let aws_agent = failing_agent(&fault).await;
            let endpoint = "http://127.0.0.1:9"; // S3 itself is never contacted
            let ours = PodIdentityProvider::builder()
                .endpoint(ours_agent.uri())
                .token_file(&token)
                .build()
                .unwrap();
            let ours_lazy = PodIdentityProvider::builder()
                .endpoint(lazy_agent.uri())
                .token_file(&token)
                .build()
                .unwrap();
            std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_agent.uri());
            let ours_path = Arc::new(
                common::capture_identity_path(
                    &common::s3_with_provider(
                        endpoint,
                        ours.clone(),
                        Some(aws_sdk_s3::config::SharedIdentityCache::new(
                            ours.identity_cache(),
                        )),
                    )
                    .await,
                )
                .await,
            );
            let lazy_path = Arc::new(
                common::capture_identity_path(
                    &common::s3_with_provider(endpoint, ours_lazy, None).await,
                )
                .await,
            );
            let aws_path = Arc::new(
                common::capture_identity_path(&common::s3_with_aws_default_chain(endpoint).await)
                    .await,
            );
            tokio::join!(
                run_side(ours_path, &ours_agent, cap),
                run_side(lazy_path, &lazy_agent, cap),
                run_side(aws_path, &aws_agent, cap),
            )
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        rows.push((name, ours, ours_lazy, aws));
    }

    let fmt_last = |r: &Run| match r.last {
        Some(d) => format!("{:.3} s", d.as_secs_f64()),
        None => format!(">{} s ({}/{CALLERS} answered)", cap.as_secs(), r.answered),
    };
    println!(
        "\nfailing_agent: {CALLERS} concurrent callers, no valid credentials, agent always failing (cap {} s)",
        cap.as_secs()
    );
    for (name, ours, lazy, aws) in &rows {
        for (side, r) in [("ours", ours), ("ours+sdk-lazy", lazy), ("aws-config", aws)] {
            println!(
                "  {name:<4} {side:<14} agent requests {:>4}, last answer {}",
                r.agent_requests,
                fmt_last(r)
            );
        }
    }
    println!();
    for (name, ours, _, aws) in &rows {
        common::result(
            "failing_agent",
            &format!("{name}_agent_requests"),
            ours.agent_requests as f64,
            aws.agent_requests as f64,
            common::f0,
        );
        let secs = |r: &Run| r.last.map_or(cap.as_secs_f64(), |d| d.as_secs_f64());
        let mark = |r: &Run| if r.last.is_none() { ">" } else { "" };
        let (o, a) = (secs(ours), secs(aws));
        println!(
            "RESULT failing_agent {name}_last_answer_s ours={}{o:.3} aws-config={}{a:.3} ratio={}{}",
            mark(ours),
            mark(aws),
            if aws.last.is_none() { ">" } else { "" },
            common::ratio(o, a)
        );
    }
}
