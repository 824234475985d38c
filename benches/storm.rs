//! Storm: every pod on a node rolled out at once, so all their credentials
//! expire together; one Pod Identity Agent per node with its node-wide token
//! bucket (1000 requests/s, burst 500). Simulated time, both sides modelled
//! from their code:
//!
//! * **ours**: the real `RefreshingCache` on its default `RefreshPolicy`
//!   (background refresh at a random instant of `[exp − A, exp − A/2]`,
//!   single-flight, failure backoff), over a source that retries like our
//!   `AgentSource` on its default `RetryPolicy` (3 attempts, full jitter
//!   under `base · 2^(n−1)`, 429 retried);
//! * **aws-config**: the SDK's real lazy identity cache
//!   (`IdentityCache::lazy()`, unmodified, given a time source and sleep on
//!   tokio's paused clock): it loads on the first request that finds the
//!   credentials within its 10 s buffer minus up to 50 % jitter (5–10 s before
//!   expiry), requests arriving meanwhile wait, and after a failed load the
//!   next waiter loads again, one after another. Its loader models
//!   aws-config's `EcsCredentialsProvider` (`http_credential_provider.rs`):
//!   `RetryConfig::standard()` (3 attempts, backoff `rand · 1 s · 2^(n−1)`),
//!   retrying 500/502/503/504 and transport errors, *not* 429.
//!
//! The agent is in-process (a `CredentialSource` for ours, a
//! `ProvideCredentials` for aws-config): 5 ms latency, then a token from a
//! bucket with exactly the agent's parameters (`rate.NewLimiter(1000, 500)`,
//! refilled against tokio time) or 429. 110 pods per node (the Kubernetes
//! default maximum) and 250 (the largest EKS nodes), each pod one SDK config
//! sending one request every 5 s (random phase); 1 h credentials; 3 h
//! simulated. A *stall* is a request that waited for the agent (simulated
//! time moved during the call).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{ResolveCachedIdentity, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::SharedIdentityResolver;
use eks_pod_identity::context::{Clock, FastRandom, RandomSource, TokioClock};
use eks_pod_identity::RefreshingCache;
use eks_pod_identity::{AgentError, RefreshError, RefreshPolicy, RetryPolicy};
use eks_pod_identity::{CredentialSource, Fetched};
use tokio::time::Instant;

const LIFETIME: Duration = Duration::from_secs(3600);
const LATENCY: Duration = Duration::from_millis(5);
const RATE: f64 = 1000.0;
const BURST: f64 = 500.0;
const REQUEST_EVERY: Duration = Duration::from_secs(5);
const PODS: [usize; 2] = [110, 250];
const EPOCH: u64 = 1_700_000_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The agent: latency, then the node-wide token bucket.
struct Agent {
    start: Instant,
    bucket: Mutex<Bucket>,
    requests: AtomicU64,
    throttled: AtomicU64,
    per_second: Mutex<BTreeMap<u64, u64>>,
}

impl Agent {
    fn new() -> Self {
        Agent {
            start: Instant::now(),
            bucket: Mutex::new(Bucket {
                tokens: BURST,
                last: Instant::now(),
            }),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            per_second: Mutex::new(BTreeMap::new()),
        }
    }

    /// `Ok(expiration)` or `Err(429)`.
    async fn request(&self) -> Result<SystemTime, u16> {
        tokio::time::sleep(LATENCY).await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let since = Instant::now().duration_since(self.start);
        *self
            .per_second
            .lock()
            .unwrap()
            .entry(since.as_secs())
            .or_default() += 1;
        let ok = {
            let mut b = self.bucket.lock().unwrap();
            let now = Instant::now();
            b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * RATE).min(BURST);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                true
            } else {
                false
            }
        };
        if ok {
            Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH) + since + LIFETIME)
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            Err(429)
        }
    }
}

fn credentials(expiration: SystemTime) -> Credentials {
    Credentials::new(
        "ASIASIMULATED",
        "secret",
        Some("token".into()),
        Some(expiration),
        "sim",
    )
}

// ---------------------------------------------------------------- ours

/// Our agent source's retry loop over the simulated agent.
#[derive(Clone)]
struct OursSource {
    agent: Arc<Agent>,
    rng: Arc<FastRandom>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for OursSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OursSource")
    }
}

impl CredentialSource for OursSource {
    fn name(&self) -> &'static str {
        "pod-identity"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let mut attempt = 1u32;
        loop {
            match self.agent.request().await {
                Ok(expiration) => {
                    return Ok(Fetched {
                        credentials: credentials(expiration),
                        expiration,
                        label: "pod-identity".into(),
                    })
                }
                Err(status) if attempt < self.retry.max_attempts => {
                    let _ = status;
                    // RetryPolicy's backoff: full jitter under base·2^(n−1), ≤ max.
                    let ceiling = self
                        .retry
                        .base_delay
                        .saturating_mul(1 << (attempt - 1))
                        .min(self.retry.max_delay);
                    tokio::time::sleep(ceiling.mul_f64(self.rng.unit())).await;
                    attempt += 1;
                }
                Err(status) => {
                    return Err(RefreshError::new(
                        "pod-identity",
                        AgentError::Status {
                            uri: "sim://agent/v1/credentials".into(),
                            status,
                            message: "Too Many Requests".into(),
                        },
                    ))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- aws-config

/// aws-config's `EcsCredentialsProvider` retry behaviour over the simulated
/// agent: `RetryConfig::standard()`, 429 not retried.
#[derive(Debug)]
struct AwsEcsModel {
    agent: Arc<AgentHandle>,
    rng: FastRandom,
}

struct AgentHandle(Arc<Agent>);
impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agent")
    }
}

impl ProvideCredentials for AwsEcsModel {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let mut attempt = 1u32;
            loop {
                match self.agent.0.request().await {
                    Ok(exp) => return Ok(credentials(exp)),
                    // 500/502/503/504 would be retried with
                    // rand · 1 s · 2^(attempt−1); the simulated agent only
                    // answers 429, which aws-config does not retry.
                    Err(status) if [500, 502, 503, 504].contains(&status) && attempt < 3 => {
                        let backoff =
                            Duration::from_secs(1 << (attempt - 1)).mul_f64(self.rng.unit());
                        tokio::time::sleep(backoff).await;
                        attempt += 1;
                    }
                    Err(status) => {
                        return Err(provider::error::CredentialsError::provider_error(format!(
                            "agent answered {status}"
                        )))
                    }
                }
            }
        })
    }
}

/// aws-smithy's `TimeSource` on tokio's paused clock.
#[derive(Debug)]
struct SimTime(TokioClock);
impl aws_smithy_async::time::TimeSource for SimTime {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

// ---------------------------------------------------------------- simulation

#[derive(Default, Clone)]
struct Outcome {
    requests: u64,
    throttled: u64,
    peak_after_start: u64,
    /// First to last second with agent requests, per wave after the start.
    waves: Vec<(u64, u64, u64)>,
    calls: u64,
    stalls: u64,
    errors: u64,
}

fn outcome(agent: &Agent, calls: u64, stalls: u64, errors: u64) -> Outcome {
    let per_second = agent.per_second.lock().unwrap().clone();
    let mut waves: Vec<(u64, u64, u64)> = Vec::new();
    for (&s, &n) in &per_second {
        match waves.last_mut() {
            Some(w) if s <= w.1 + 60 => {
                w.1 = s;
                w.2 += n;
            }
            _ => waves.push((s, s, n)),
        }
    }
    let start_wave_end = waves.first().map_or(0, |w| w.1);
    Outcome {
        requests: agent.requests.load(Ordering::Relaxed),
        throttled: agent.throttled.load(Ordering::Relaxed),
        peak_after_start: per_second
            .iter()
            .filter(|(s, _)| **s > start_wave_end)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0),
        waves: waves.into_iter().skip(1).collect(),
        calls,
        stalls,
        errors,
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    stalls: AtomicU64,
    errors: AtomicU64,
}

impl Tally {
    /// `cold`: the pod's first call, which waits for its first credentials
    /// on either side and is not counted as a stall.
    fn record(&self, started: Instant, ok: bool, cold: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !cold && Instant::now() > started {
            self.stalls.fetch_add(1, Ordering::Relaxed);
        }
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Pod `i`'s request loop: one call every `REQUEST_EVERY`, the first at
/// t = 0 (the rollout), then at a random phase.
async fn pod_loop<F, Fut>(i: usize, until: Instant, tally: Arc<Tally>, call: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let rng = FastRandom::seeded(i as u64 + 1);
    let t = Instant::now();
    tally.record(t, call().await, true);
    tokio::time::sleep(REQUEST_EVERY.mul_f64(rng.unit())).await;
    let mut tick = tokio::time::interval(REQUEST_EVERY);
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let t = Instant::now();
        tally.record(t, call().await, false);
    }
}

fn simulate_ours(pods: usize, span: Duration) -> Outcome {
    paused_runtime().block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
            SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH),
        ));
        let agent = Arc::new(Agent::new());
        let tally = Arc::new(Tally::default());
        let until = Instant::now() + span;
        let tasks: Vec<_> = (0..pods)
            .map(|i| {
                let cache = RefreshingCache::new(
                    OursSource {
                        agent: agent.clone(),
                        rng: Arc::new(FastRandom::seeded(i as u64 + 1)),
                        retry: RetryPolicy::default(),
                    },
                    RefreshPolicy::default(),
                    clock.clone(),
                    Arc::new(FastRandom::seeded(!(i as u64))) as Arc<dyn RandomSource>,
                );
                let tally = tally.clone();
                tokio::spawn(async move {
                    pod_loop(i, until, tally, || {
                        let c = cache.clone();
                        async move { c.get().await.is_ok() }
                    })
                    .await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        outcome(
            &agent,
            tally.calls.load(Ordering::Relaxed),
            tally.stalls.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
        )
    })
}

fn simulate_aws(pods: usize, span: Duration) -> Outcome {
    paused_runtime().block_on(async move {
        let clock = TokioClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH));
        // The runtime components of a real S3 client whose time source and
        // sleep are tokio's (paused) clock.
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(common::REGION))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "capture"))
            .time_source(SimTime(clock))
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .load()
            .await;
        let template = Arc::new(
            common::capture_identity_path(&common::s3_from(&sdk, "http://127.0.0.1:9")).await,
        );
        let agent = Arc::new(Agent::new());
        let tally = Arc::new(Tally::default());
        let until = Instant::now() + span;
        let tasks: Vec<_> = (0..pods)
            .map(|i| {
                // One SDK config per pod: its own lazy cache and provider.
                let cache = aws_config::identity::IdentityCache::lazy().build();
                let resolver =
                    SharedIdentityResolver::new(SharedCredentialsProvider::new(AwsEcsModel {
                        agent: Arc::new(AgentHandle(agent.clone())),
                        rng: FastRandom::seeded(i as u64 + 7),
                    }));
                let (tally, template) = (tally.clone(), template.clone());
                tokio::spawn(async move {
                    pod_loop(i, until, tally, || {
                        let (cache, resolver, template) =
                            (cache.clone(), resolver.clone(), template.clone());
                        async move {
                            cache
                                .resolve_cached_identity(
                                    resolver,
                                    &template.components,
                                    &template.cfg,
                                )
                                .await
                                .is_ok()
                        }
                    })
                    .await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        outcome(
            &agent,
            tally.calls.load(Ordering::Relaxed),
            tally.stalls.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
        )
    })
}

fn main() {
    common::exit_unless_cargo_bench("storm");
    let quick = common::quick();
    let span = if quick { LIFETIME * 2 } else { LIFETIME * 3 };
    let quiet = common::quiet::Quiet::begin("storm");
    let started = std::time::Instant::now();
    let runs: Vec<(usize, Outcome, Outcome)> = PODS
        .iter()
        .map(|&n| (n, simulate_ours(n, span), simulate_aws(n, span)))
        .collect();
    println!(
        "\nstorm: pods rolled out at once on one node, one agent (bucket {RATE}/s burst {BURST}), \
         1 h credentials, one request per pod every {} s, {} h simulated (wall {:.1} s)",
        REQUEST_EVERY.as_secs(),
        span.as_secs() / 3600,
        started.elapsed().as_secs_f64()
    );
    let lifetimes = span.as_secs_f64() / LIFETIME.as_secs_f64();
    for (pods, ours, aws) in &runs {
        for (side, o) in [("ours", ours), ("aws-config", aws)] {
            println!(
                "  {pods} pods {side:<10}: {} agent requests, {} × 429, peak {}/s after the rollout, \
                 {} calls, {} stalled, {} failed",
                o.requests, o.throttled, o.peak_after_start, o.calls, o.stalls, o.errors
            );
            for (i, w) in o.waves.iter().enumerate() {
                println!(
                    "      refresh wave {}: t = {}..{} s ({} s), {} requests",
                    i + 1,
                    w.0,
                    w.1,
                    w.1 - w.0 + 1,
                    w.2
                );
            }
        }
    }
    println!();
    for (pods, ours, aws) in &runs {
        let r = |figure: &str, o: f64, a: f64, f: fn(f64) -> String| {
            common::result("storm", &format!("pods{pods}_{figure}"), o, a, f)
        };
        r(
            "peak_requests_per_s_after_rollout",
            ours.peak_after_start as f64,
            aws.peak_after_start as f64,
            common::whole_number,
        );
        r(
            "http_429",
            ours.throttled as f64,
            aws.throttled as f64,
            common::whole_number,
        );
        let span_s = |o: &Outcome| o.waves.first().map_or(0.0, |w| (w.1 - w.0 + 1) as f64);
        r(
            "first_refresh_wave_span_s",
            span_s(ours),
            span_s(aws),
            common::whole_number,
        );
        r(
            "stalled_requests",
            ours.stalls as f64,
            aws.stalls as f64,
            common::whole_number,
        );
        r(
            "failed_requests",
            ours.errors as f64,
            aws.errors as f64,
            common::whole_number,
        );
        // Refreshes only: the rollout's first fetch per pod is left out.
        let refreshes =
            |o: &Outcome| (o.requests as f64 - *pods as f64) / (*pods as f64 * lifetimes);
        r(
            "agent_requests_per_pod_per_lifetime_after_rollout",
            refreshes(ours),
            refreshes(aws),
            common::three_decimals,
        );
    }
    quiet.end();
}
