//! Storm: 10,000 providers whose credentials all expire at the same instant
//! (an agent restart or a rollout), against one agent with the real agent's
//! token bucket (1000 req/s, burst 500). Simulated time.
//!
//! Honest model, stated plainly:
//! * time is tokio's paused clock; every cache uses `TokioClock`, so the real
//!   `RefreshingCache` (background scheduler, jitter, single-flight, failure
//!   backoff) runs unmodified, only without real waiting;
//! * the agent is an in-process `CredentialSource` (10,000 real HTTP clients
//!   and sockets would measure the kernel, not the schedule): each request
//!   takes a token from a bucket with exactly the agent's parameters
//!   (`rate.NewLimiter(1000, 500)`, refilled against tokio time, same
//!   algorithm as the testkit's FakeAgent) and answers 429 when it is empty,
//!   after 5 ms of simulated latency;
//! * the source retries like our `AgentSource`: 3 attempts per fetch, full
//!   jitter under 100 ms · 2^(n−1) (max 1 s) between them, 429 retryable;
//! * all providers are primed at t = 0 with the bucket off, so they hold
//!   credentials (1 h lifetime) that expire at the same instant; then the
//!   bucket is switched on and 3 h are simulated.
//!
//! Figures: peak agent requests in any 1 s of simulated time (429s included),
//! mean rate over the span in which requests arrived (first to last request of
//! each refresh wave, per lifetime), number of 429s, fetches per provider per
//! lifetime. With jitter (default policy) and with `RefreshPolicy{jitter:false}`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use eks_pod_identity::cache::RefreshingCache;
use eks_pod_identity::source::{CredentialSource, Fetched};
use eks_pod_identity::time::{Clock, FastRandom, RandomSource, TokioClock};
use eks_pod_identity::{AgentError, RefreshError, RefreshPolicy};
use tokio::time::Instant;

const LIFETIME: Duration = Duration::from_secs(3600);
const LATENCY: Duration = Duration::from_millis(5);
const RATE: f64 = 1000.0;
const BURST: f64 = 500.0;

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Agent {
    start: Instant,
    enforce: AtomicBool,
    bucket: Mutex<Bucket>,
    requests: AtomicU64,
    throttled: AtomicU64,
    minted: AtomicU64,
    /// Requests per second of simulated time (429s included).
    per_second: Mutex<BTreeMap<u64, u64>>,
    clock: Arc<dyn Clock>,
}

impl Agent {
    async fn request(&self) -> Result<SystemTime, AgentError> {
        tokio::time::sleep(LATENCY).await;
        if self.enforce.load(Ordering::Relaxed) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sec = Instant::now().duration_since(self.start).as_secs();
            *self.per_second.lock().unwrap().entry(sec).or_default() += 1;
            if !self.bucket.lock().unwrap().try_take() {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                return Err(AgentError::Status {
                    uri: "sim://agent/v1/credentials".into(),
                    status: 429,
                    message: "Too Many Requests".into(),
                });
            }
            self.minted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.clock.now() + LIFETIME)
    }
}

#[derive(Clone)]
struct SimSource {
    agent: Arc<Agent>,
    rng: Arc<FastRandom>,
}

impl std::fmt::Debug for SimSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimSource")
    }
}

impl CredentialSource for SimSource {
    fn name(&self) -> &'static str {
        "pod-identity"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let mut attempt = 1u32;
        loop {
            match self.agent.request().await {
                Ok(expiration) => {
                    return Ok(Fetched {
                        credentials: aws_credential_types::Credentials::new(
                            "ASIASIMULATED",
                            "secret",
                            Some("token".into()),
                            Some(expiration),
                            "sim",
                        ),
                        expiration,
                        label: "pod-identity".into(),
                    })
                }
                Err(e) if attempt < 3 => {
                    let _ = e;
                    // Same as RetryPolicy::default(): full jitter under 100 ms·2^(n−1), ≤ 1 s.
                    let ceiling = Duration::from_millis(100 * (1 << (attempt - 1)))
                        .min(Duration::from_secs(1));
                    tokio::time::sleep(ceiling.mul_f64(self.rng.unit())).await;
                    attempt += 1;
                }
                Err(e) => return Err(RefreshError::new("pod-identity", e)),
            }
        }
    }
}

struct Outcome {
    peak: u64,
    mean_active: f64,
    throttled: u64,
    requests: u64,
    fetches_per_provider_per_lifetime: f64,
    requests_per_provider_per_lifetime: f64,
    waves: Vec<(u64, u64, u64, u64)>, // (first s, last s, requests, peak)
}

fn simulate(providers: usize, lifetimes: u32, jitter: bool) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ));
        let agent = Arc::new(Agent {
            start: Instant::now(),
            enforce: AtomicBool::new(false),
            bucket: Mutex::new(Bucket {
                tokens: BURST,
                last: Instant::now(),
            }),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            minted: AtomicU64::new(0),
            per_second: Mutex::new(BTreeMap::new()),
            clock: clock.clone(),
        });
        let policy = RefreshPolicy::default().with_jitter(jitter);
        let caches: Vec<_> = (0..providers)
            .map(|i| {
                let rng = Arc::new(FastRandom::seeded(i as u64 + 1));
                let shared: Arc<dyn RandomSource> = Arc::new(FastRandom::seeded(!(i as u64)));
                RefreshingCache::new(
                    SimSource {
                        agent: agent.clone(),
                        rng,
                    },
                    policy.clone(),
                    clock.clone(),
                    shared,
                )
            })
            .collect();
        // Prime: everyone fetches at the same instant with the bucket off.
        let primes = caches.iter().map(|c| c.get());
        for r in futures_util::future::join_all(primes).await {
            r.expect("prime");
        }
        agent.enforce.store(true, Ordering::Relaxed);
        agent.bucket.lock().unwrap().last = Instant::now();
        tokio::time::sleep(LIFETIME * lifetimes).await;
        let fetches: u64 = caches.iter().map(|c| c.status().successes).sum::<u64>() - providers as u64;
        let failures: u64 = caches.iter().map(|c| c.status().failures).sum();
        let expired_gaps = caches
            .iter()
            .filter(|c| c.status().expiration.is_none_or(|e| e <= clock.now()))
            .count();
        if failures > 0 || expired_gaps > 0 {
            eprintln!(
                "  (jitter={jitter}: {failures} failed fetches (3 × 429) retried by the cache's failure backoff; {expired_gaps} providers without valid credentials at the end)"
            );
        }
        let per_second = agent.per_second.lock().unwrap().clone();
        // Split into waves (gaps of > 60 s with no request).
        let mut waves: Vec<(u64, u64, u64, u64)> = Vec::new();
        for (&s, &n) in &per_second {
            match waves.last_mut() {
                Some(w) if s <= w.1 + 60 => {
                    w.1 = s;
                    w.2 += n;
                    w.3 = w.3.max(n);
                }
                _ => waves.push((s, s, n, n)),
            }
        }
        let requests = agent.requests.load(Ordering::Relaxed);
        let active_secs: u64 = waves.iter().map(|w| w.1 - w.0 + 1).sum();
        Outcome {
            peak: per_second.values().copied().max().unwrap_or(0),
            mean_active: requests as f64 / active_secs.max(1) as f64,
            throttled: agent.throttled.load(Ordering::Relaxed),
            requests,
            fetches_per_provider_per_lifetime: fetches as f64 / (providers as f64 * lifetimes as f64),
            requests_per_provider_per_lifetime: requests as f64
                / (providers as f64 * lifetimes as f64),
            waves,
        }
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let providers = 10_000;
    let lifetimes = if quick { 2 } else { 3 };
    let started = std::time::Instant::now();
    let with = simulate(providers, lifetimes, true);
    let without = simulate(providers, lifetimes, false);
    println!(
        "\nstorm: {providers} providers, 1 h credentials all expiring at the same instant, \
         {lifetimes} h simulated, agent bucket {RATE}/s burst {BURST} (wall {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for (name, o) in [("jitter", &with), ("no-jitter", &without)] {
        println!(
            "  {name:<9}: {} agent requests, {} × 429, peak {}/s, mean {:.1}/s while requests arrive",
            o.requests, o.throttled, o.peak, o.mean_active
        );
        for (i, w) in o.waves.iter().enumerate() {
            println!(
                "    wave {}: t = {}..{} s, {} requests, peak {}/s, mean {:.1}/s",
                i + 1,
                w.0,
                w.1,
                w.2,
                w.3,
                w.2 as f64 / (w.1 - w.0 + 1) as f64
            );
        }
    }
    println!();
    let line = |figure: &str, a: String, b: String| {
        println!("RESULT storm {figure} jitter={a} no-jitter={b}")
    };
    line(
        "peak_requests_per_s",
        with.peak.to_string(),
        without.peak.to_string(),
    );
    line(
        "mean_requests_per_s_while_active",
        format!("{:.1}", with.mean_active),
        format!("{:.1}", without.mean_active),
    );
    line(
        "peak_over_mean",
        format!("{:.2}", with.peak as f64 / with.mean_active),
        format!("{:.2}", without.peak as f64 / without.mean_active),
    );
    let w1 = |o: &Outcome| {
        o.waves
            .first()
            .map_or(0.0, |w| w.3 as f64 / (w.2 as f64 / (w.1 - w.0 + 1) as f64))
    };
    line(
        "wave1_peak_over_mean",
        format!("{:.2}", w1(&with)),
        format!("{:.2}", w1(&without)),
    );
    line(
        "http_429",
        with.throttled.to_string(),
        without.throttled.to_string(),
    );
    line(
        "fetches_per_provider_per_lifetime",
        format!("{:.3}", with.fetches_per_provider_per_lifetime),
        format!("{:.3}", without.fetches_per_provider_per_lifetime),
    );
    line(
        "agent_requests_per_provider_per_lifetime",
        format!("{:.3}", with.requests_per_provider_per_lifetime),
        format!("{:.3}", without.requests_per_provider_per_lifetime),
    );
}
