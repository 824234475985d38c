//! A 30-day soak in simulated time: many callers, a seeded schedule of
//! faults and outages, realistic credential lifetimes, and the provider's
//! invariants checked on every call.
//!
//! Time is tokio's paused clock (`TokioClock`), so 30 days take seconds and
//! every run is identical. Memory is measured with a counting global
//! allocator (this binary only).

use aws_credential_types::Credentials;
use eks_pod_identity_provider::context::{Clock, FastRandom, TokioClock};
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{Classify, ErrorKind, RefreshError, RefreshPolicy};
use eks_pod_identity_provider::{CredentialSource, Fetched};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SEED: u64 = 0x5eed_2026;
const DAY: Duration = Duration::from_secs(86_400);
const DAYS: u32 = 30;
const CALLERS: usize = 12;
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSOAKSECRET";

fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

#[derive(Debug, thiserror::Error)]
#[error("simulated fault ({0})")]
struct Fault(ErrorKind);

impl Classify for Fault {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// A window of simulated time in which every fetch fails.
#[derive(Debug, Clone)]
struct Outage {
    from: SystemTime,
    to: SystemTime,
    kind: ErrorKind,
    what: &'static str,
}

#[derive(Debug)]
struct Agent {
    clock: TokioClock,
    rng: Mutex<fastrand::Rng>,
    outages: Vec<Outage>,
    fetches: AtomicU64,
    faults: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// The latest expiry of any credentials ever handed out.
    max_issued: Mutex<Option<SystemTime>>,
}

#[derive(Debug, Clone)]
struct SoakSource(Arc<Agent>);

impl CredentialSource for SoakSource {
    fn name(&self) -> &'static str {
        "soak"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let a = &self.0;
        let n = a.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let now_in = a.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        a.max_in_flight.fetch_max(now_in, Ordering::SeqCst);
        let (latency, roll, kind_pick, lifetime) = {
            let mut r = a.rng.lock().unwrap();
            // Mostly fast; 1 % of fetches hang until the 12 s fetch deadline.
            let latency = if r.u32(0..100) == 0 {
                Duration::from_secs(12)
            } else {
                Duration::from_millis(r.u64(2..800))
            };
            (
                latency,
                r.u32(0..100),
                r.usize(0..5),
                Duration::from_secs(r.u64(3600..=6 * 3600)),
            )
        };
        tokio::time::sleep(latency).await;
        let now = a.clock.now();
        let outage = a.outages.iter().find(|o| o.from <= now && now < o.to);
        let result = if let Some(o) = outage {
            Err(o.kind)
        } else if latency >= Duration::from_secs(12) {
            Err(ErrorKind::Timeout)
        } else if roll < 20 {
            Err([
                ErrorKind::ServerError,
                ErrorKind::Throttled,
                ErrorKind::Connect,
                ErrorKind::InvalidResponse,
                ErrorKind::TokenExpired,
            ][kind_pick])
        } else {
            Ok(now + lifetime)
        };
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(expiration) => {
                let mut m = a.max_issued.lock().unwrap();
                *m = Some(m.map_or(expiration, |e| e.max(expiration)));
                Ok(Fetched {
                    credentials: Credentials::new(
                        format!("ASIASOAK{n:010}"),
                        SECRET,
                        Some("SOAKSESSION".to_owned()),
                        Some(expiration),
                        "soak",
                    ),
                    expiration,
                    label: "soak".into(),
                })
            }
            Err(kind) => {
                a.faults.fetch_add(1, Ordering::SeqCst);
                Err(RefreshError::new("soak", Fault(kind)))
            }
        }
    }
}

fn schedule(start: SystemTime, rng: &mut fastrand::Rng) -> Vec<Outage> {
    let mut v = vec![
        // A 30-minute agent outage on day 7 (refused connections).
        Outage {
            from: start + 7 * DAY + Duration::from_secs(rng.u64(0..86_400)),
            to: SystemTime::UNIX_EPOCH, // set below
            kind: ErrorKind::Connect,
            what: "30-minute outage",
        },
    ];
    v[0].to = v[0].from + Duration::from_secs(30 * 60);
    // An agent restart on day 15: refused for 90 s, then 503 while warming up.
    let restart = start + 15 * DAY + Duration::from_secs(rng.u64(0..86_400));
    v.push(Outage {
        from: restart,
        to: restart + Duration::from_secs(90),
        kind: ErrorKind::Connect,
        what: "agent restart (refused)",
    });
    v.push(Outage {
        from: restart + Duration::from_secs(90),
        to: restart + Duration::from_secs(150),
        kind: ErrorKind::ServerError,
        what: "agent restart (503 warming up)",
    });
    // Forty short random outages (1–10 min) of assorted kinds.
    for _ in 0..40 {
        let from = start + Duration::from_secs(rng.u64(DAY.as_secs()..DAYS as u64 * 86_400));
        v.push(Outage {
            from,
            to: from + Duration::from_secs(rng.u64(60..=600)),
            kind: [
                ErrorKind::ServerError,
                ErrorKind::Throttled,
                ErrorKind::Timeout,
                ErrorKind::Connect,
            ][rng.usize(0..4)],
            what: "short outage",
        });
    }
    v
}

#[derive(Debug, Default)]
struct Totals {
    calls: AtomicU64,
    failures: AtomicU64,
    violations: Mutex<Vec<String>>,
}

#[tokio::test(start_paused = true)]
async fn thirty_simulated_days() {
    let wall = std::time::Instant::now();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = TokioClock::starting_at(start);
    let mut rng = fastrand::Rng::with_seed(SEED);
    let outages = schedule(start, &mut rng);
    let agent = Arc::new(Agent {
        clock,
        rng: Mutex::new(fastrand::Rng::with_seed(SEED ^ 1)),
        outages: outages.clone(),
        fetches: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        max_issued: Mutex::new(None),
    });
    let cache = RefreshingCache::new(
        SoakSource(agent.clone()),
        RefreshPolicy::default(),
        Arc::new(clock),
        Arc::new(FastRandom::seeded(SEED ^ 2)),
    );
    let end = start + DAYS * DAY;
    let totals = Arc::new(Totals::default());

    let mut callers = Vec::new();
    for i in 0..CALLERS {
        let cache = cache.clone();
        let agent = agent.clone();
        let totals = totals.clone();
        let mut r = fastrand::Rng::with_seed(SEED + 100 + i as u64);
        callers.push(tokio::spawn(async move {
            while clock.now() < end {
                // Bursty traffic: a request every 1 s to 20 min, each making
                // one to eight AWS calls. (Paused-time wake-ups cost ~80 µs in a
                // debug build; this keeps 30 days within a few seconds.)
                tokio::time::sleep(Duration::from_millis(r.u64(1_000..1_200_000))).await;
                for _ in 0..r.u32(1..=8) {
                    let now = clock.now();
                    totals.calls.fetch_add(1, Ordering::Relaxed);
                    match cache.get().await {
                        Ok(c) => {
                            let exp = c.expiry().expect("expiry");
                            let now = clock.now();
                            if exp <= now {
                                totals.violations.lock().unwrap().push(format!(
                                    "expired credentials returned at {now:?} (expiry {exp:?})"
                                ));
                            }
                        }
                        Err(e) => {
                            totals.failures.fetch_add(1, Ordering::Relaxed);
                            let issued = *agent.max_issued.lock().unwrap();
                            if issued.is_some_and(|exp| exp > now) {
                                totals.violations.lock().unwrap().push(format!(
                                    "caller failed ({e}) at {now:?} while credentials valid until {issued:?} existed"
                                ));
                            }
                        }
                    }
                }
            }
        }));
    }

    // The monitor: every five simulated minutes, check the background task and
    // the task count; sample memory after day 1 and at the end.
    let watch_cache = cache.clone();
    let monitor = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut checks = 0u64;
            let mut problems = Vec::new();
            let mut next_day = start + DAY;
            let handle = tokio::runtime::Handle::current();
            while clock.now() < end {
                tokio::time::sleep(Duration::from_secs(300)).await;
                checks += 1;
                let watch = watch_cache.task_watch();
                if watch_cache.status().fetches > 0 && !watch.is_running() {
                    problems.push(format!("background task not running at {:?}", clock.now()));
                }
                // callers + this monitor + the refresher + at most one fetch task.
                let alive = handle.metrics().num_alive_tasks();
                let running_callers = CALLERS;
                let extra = alive.saturating_sub(running_callers + 1);
                if clock.now() + Duration::from_secs(300) < end && !(1..=2).contains(&extra) {
                    problems.push(format!(
                        "{alive} tasks alive at {:?}: {extra} besides callers and monitor (want the refresher and at most one fetch)",
                        clock.now()
                    ));
                }
                if agent.in_flight.load(Ordering::SeqCst) > 1 {
                    problems.push("more than one fetch in flight".into());
                }
                if clock.now() >= next_day && agent.in_flight.load(Ordering::SeqCst) == 0 {
                    samples.push(live_bytes());
                    next_day += DAY;
                }
            }
            (samples, checks, problems)
        })
    };

    for c in callers {
        c.await.unwrap();
    }
    let (samples, checks, problems) = monitor.await.unwrap();
    let status = cache.status();
    let watch = cache.task_watch();
    assert!(watch.is_running());
    drop(cache);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !watch.is_running(),
        "the background task outlived the cache"
    );

    let violations = totals.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        agent.max_in_flight.load(Ordering::SeqCst),
        1,
        "at most one fetch in flight"
    );
    assert!(
        samples.len() >= DAYS as usize - 2,
        "{} memory samples",
        samples.len()
    );
    let day1 = samples[0];
    let day30 = *samples.last().unwrap();
    let growth = day30 - day1;
    assert!(
        growth.abs() <= 64 * 1024,
        "live heap grew by {growth} bytes between day 1 ({day1}) and day {DAYS} ({day30}); samples {samples:?}"
    );
    let calls = totals.calls.load(Ordering::Relaxed);
    let failures = totals.failures.load(Ordering::Relaxed);
    let fetches = agent.fetches.load(Ordering::SeqCst);
    let faults = agent.faults.load(Ordering::SeqCst);
    assert_eq!(status.fetches, fetches);
    assert!(
        faults > 50,
        "the schedule injected too few faults ({faults})"
    );
    println!(
        "soak: {DAYS} simulated days, {CALLERS} callers, {calls} calls, {fetches} fetches ({} ok), {faults} faults injected ({} outage windows incl. a 30-min outage and an agent restart), {failures} caller failures (all while no valid credentials existed), {} waits, {} served cached after failure, {checks} monitor checks, live heap day 1 → day {DAYS}: {day1} → {day30} bytes ({growth:+}), {:.1} s wall",
        status.successes,
        outages.len(),
        status.waits,
        status.served_cached_after_failure,
        wall.elapsed().as_secs_f64()
    );
    assert!(outages.iter().any(|o| o.what == "30-minute outage"
        && o.to.duration_since(o.from).unwrap() == Duration::from_secs(1800)));
    assert!(outages.iter().any(|o| o.what.starts_with("agent restart")));
}
