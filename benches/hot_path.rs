//! Hot path: one call with valid cached credentials.
//!
//! Variants (all measured in this one run, same machine, same runtime):
//! * `floor`          — a bare `ArcSwap<Credentials>` load + clone;
//! * `ours_provider`  — `PodIdentityProvider::provide_credentials` (primed from a FakeAgent);
//! * `ours_cache`     — `RefreshingCache::get` over an in-process source;
//! * `ours_sdk_nocache` — our provider behind `IdentityCache::no_cache()`, resolved
//!   through `ResolveCachedIdentity` exactly as the SDK does per request
//!   (our cache is then the only cache);
//! * `ours_sdk_ours`  — our provider with *our* cache as the SDK's identity cache
//!   (`.identity_cache(provider.identity_cache())`, the recommended wiring);
//! * `ours_sdk_lazy`  — our provider behind the SDK's default lazy cache;
//! * `aws_sdk_lazy`   — aws-config's `IdentityCache::lazy()` resolving a provider with
//!   the same long-lived credentials (the SDK default), via `ResolveCachedIdentity`.
//!
//! The SDK variants use the `RuntimeComponents` (identity cache + sigv4 identity
//! resolver) captured from a real `aws-sdk-s3` `GetObject`.
//!
//! Each variant runs with 1, 2 and 8 concurrent tasks on a 2-worker multi-thread
//! runtime. The reported time is CPU time per call: wall time × busy workers
//! (min(tasks, workers)) / total calls. With perfect scaling it stays flat.
//!
//! At the end it prints `RESULT hot_path ...` lines built from criterion's medians.

#[path = "common/mod.rs"]
mod common;

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use criterion::{BenchmarkId, Criterion};
use eks_pod_identity::cache::RefreshingCache;
use eks_pod_identity::source::{CredentialSource, Fetched};
use eks_pod_identity::time::{Clock, FastRandom, RandomSource, SystemClock};
use eks_pod_identity::{PodIdentityProvider, RefreshError, RefreshPolicy};
use eks_pod_identity_testkit::FakeAgent;

const WORKERS: usize = 2;
/// Calls per criterion iteration (amortizes the per-sample spawn/join cost;
/// criterion's `--quick` mode starts at 1 iteration, so it needs a larger K).
fn k() -> u64 {
    if common::quick() {
        20_000
    } else {
        1_000
    }
}
const TASKS: [usize; 3] = [1, 2, 8];

#[derive(Debug)]
struct StaticSource(Credentials);

impl CredentialSource for StaticSource {
    fn name(&self) -> &'static str {
        "static"
    }
    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        Ok(Fetched {
            credentials: self.0.clone(),
            expiration: SystemTime::now() + Duration::from_secs(6 * 3600),
            label: "static".into(),
        })
    }
}

/// Runs `task(iters)` in each of `tasks` tasks (each task loops `iters`
/// calls); returns CPU time per call × iters (criterion divides by iters).
fn run<G, Fut>(rt: &tokio::runtime::Runtime, tasks: usize, iters: u64, task: G) -> Duration
where
    G: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let fut = task(iters * k());
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    fut.await;
                })
            })
            .collect();
        barrier.wait().await;
        let start = Instant::now();
        for h in handles {
            h.await.unwrap();
        }
        let wall = start.elapsed();
        wall.mul_f64(tasks.min(WORKERS) as f64 / tasks as f64 / k() as f64)
    })
}

/// A per-task loop of `iters` calls of `$call` on a clone of `$x`.
macro_rules! looped {
    ($x:expr, |$v:ident| $call:expr) => {{
        let x = $x.clone();
        move |iters: u64| {
            let $v = x.clone();
            async move {
                for _ in 0..iters {
                    black_box($call);
                }
            }
        }
    }};
}

struct Setup {
    _agent: FakeAgent,
    _dir: tempfile::TempDir,
    floor: Arc<ArcSwap<Credentials>>,
    provider: PodIdentityProvider,
    cache: RefreshingCache<StaticSource>,
    ours_nocache: Arc<common::SdkIdentityPath>,
    ours_ours: Arc<common::SdkIdentityPath>,
    ours_lazy: Arc<common::SdkIdentityPath>,
    aws_lazy: Arc<common::SdkIdentityPath>,
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    rt.block_on(async {
        let agent = FakeAgent::builder()
            .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
            .lifetime(Duration::from_secs(6 * 3600))
            .start()
            .await
            .expect("fake agent");
        let dir = tempfile::tempdir().unwrap();
        let token = common::write_token(dir.path());
        let provider = PodIdentityProvider::builder()
            .endpoint(agent.uri())
            .token_file(&token)
            .build()
            .expect("provider");
        let creds = provider.credentials().await.expect("prime provider");

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rng: Arc<dyn RandomSource> = Arc::new(FastRandom::new());
        let cache = RefreshingCache::new(
            StaticSource(creds.clone()),
            RefreshPolicy::default(),
            clock,
            rng,
        );
        cache.get().await.expect("prime cache");

        // The SDK paths, captured from real S3 clients ("http://127.0.0.1:9" is never contacted).
        let endpoint = "http://127.0.0.1:9";
        let nocache = common::s3_with_provider(
            endpoint,
            provider.clone(),
            Some(aws_config::identity::IdentityCache::no_cache()),
        )
        .await;
        let ours_cache = common::s3_with_provider(
            endpoint,
            provider.clone(),
            Some(aws_sdk_s3::config::SharedIdentityCache::new(
                provider.identity_cache(),
            )),
        )
        .await;
        let lazy = common::s3_with_provider(endpoint, provider.clone(), None).await;
        // aws-config: the same long-lived credentials, as a plain provider behind
        // the SDK's default lazy identity cache.
        let aws = common::s3_with_provider(endpoint, creds.clone(), None).await;
        let ours_nocache = Arc::new(common::capture_identity_path(&nocache).await);
        let ours_ours = Arc::new(common::capture_identity_path(&ours_cache).await);
        let ours_lazy = Arc::new(common::capture_identity_path(&lazy).await);
        let aws_lazy = Arc::new(common::capture_identity_path(&aws).await);
        // Prime the lazy caches.
        ours_lazy.resolve().await;
        aws_lazy.resolve().await;
        ours_nocache.resolve().await;
        // The first resolution teaches our identity cache its partition.
        ours_ours.resolve().await;

        Setup {
            _agent: agent,
            _dir: dir,
            floor: Arc::new(ArcSwap::from_pointee(creds)),
            provider,
            cache,
            ours_nocache,
            ours_ours,
            ours_lazy,
            aws_lazy,
        }
    })
}

const VARIANTS: [&str; 7] = [
    "floor",
    "ours_provider",
    "ours_cache",
    "ours_sdk_ours",
    "ours_sdk_nocache",
    "ours_sdk_lazy",
    "aws_sdk_lazy",
];

fn benches(c: &mut Criterion, rt: &tokio::runtime::Runtime, s: &Setup) {
    let mut g = c.benchmark_group("hot_path");
    for tasks in TASKS {
        let floor = looped!(s.floor, |f| Credentials::clone(&f.load()));
        g.bench_with_input(BenchmarkId::new("floor", tasks), &tasks, |b, &n| {
            b.iter_custom(|iters| run(rt, n, iters, &floor))
        });
        let provider = looped!(s.provider, |p| p.provide_credentials().await.unwrap());
        g.bench_with_input(BenchmarkId::new("ours_provider", tasks), &tasks, |b, &n| {
            b.iter_custom(|iters| run(rt, n, iters, &provider))
        });
        let cache = looped!(s.cache, |c| c.get().await.unwrap());
        g.bench_with_input(BenchmarkId::new("ours_cache", tasks), &tasks, |b, &n| {
            b.iter_custom(|iters| run(rt, n, iters, &cache))
        });
        for (name, path) in [
            ("ours_sdk_ours", &s.ours_ours),
            ("ours_sdk_nocache", &s.ours_nocache),
            ("ours_sdk_lazy", &s.ours_lazy),
            ("aws_sdk_lazy", &s.aws_lazy),
        ] {
            let resolve = looped!(path, |p| p.resolve().await);
            g.bench_with_input(BenchmarkId::new(name, tasks), &tasks, |b, &n| {
                b.iter_custom(|iters| run(rt, n, iters, &resolve))
            });
        }
    }
    g.finish();
}

fn criterion_dir() -> std::path::PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(Into::into)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|d| std::path::PathBuf::from(d).join("criterion"))
        })
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
        })
}

/// Median (ns) from criterion's estimates for `hot_path/<variant>/<tasks>`.
fn median_ns(dir: &std::path::Path, variant: &str, tasks: usize) -> Option<f64> {
    let path = dir
        .join("hot_path")
        .join(variant)
        .join(tasks.to_string())
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let s = setup(&rt);
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    benches(&mut c, &rt, &s);
    c.final_summary();
    // Under `cargo test` criterion runs each variant once and records no
    // estimates: a summary would print stale figures from an earlier run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }

    // Final step: one table and the RESULT lines, from criterion's medians.
    let m = |v: &str, t: usize| median_ns(&dir, v, t);
    println!();
    println!("hot_path medians, ns of CPU per call (tasks = 1 / 2 / 8, {WORKERS} workers):");
    for v in VARIANTS {
        let cells: Vec<String> = TASKS
            .iter()
            .map(|&t| m(v, t).map_or("-".into(), |x| format!("{x:.1}")))
            .collect();
        println!("  {v:<18} {}", cells.join(" / "));
    }
    for t in TASKS {
        let (
            Some(ours),
            Some(ours_cache),
            Some(ours_sdk),
            Some(nocache),
            Some(ours_lazy),
            Some(aws),
            Some(floor),
        ) = (
            m("ours_provider", t),
            m("ours_cache", t),
            m("ours_sdk_ours", t),
            m("ours_sdk_nocache", t),
            m("ours_sdk_lazy", t),
            m("aws_sdk_lazy", t),
            m("floor", t),
        )
        else {
            println!("RESULT hot_path tasks={t} missing (filtered out?)");
            continue;
        };
        common::result(
            "hot_path",
            &format!("provider_ns_tasks{t}"),
            ours,
            aws,
            common::f1,
        );
        common::result(
            "hot_path",
            &format!("cache_ns_tasks{t}"),
            ours_cache,
            aws,
            common::f1,
        );
        common::result(
            "hot_path",
            &format!("sdk_ours_ns_tasks{t}"),
            ours_sdk,
            aws,
            common::f1,
        );
        common::result(
            "hot_path",
            &format!("sdk_nocache_ns_tasks{t}"),
            nocache,
            aws,
            common::f1,
        );
        common::result(
            "hot_path",
            &format!("sdk_lazy_ns_tasks{t}"),
            ours_lazy,
            aws,
            common::f1,
        );
        println!(
            "RESULT hot_path floor_ns_tasks{t} floor={floor:.1} ours={ours:.1} ours/floor={:.2}",
            ours / floor
        );
    }
    if let (Some(o1), Some(o8), Some(f1), Some(f8)) = (
        m("ours_provider", 1),
        m("ours_provider", 8),
        m("floor", 1),
        m("floor", 8),
    ) {
        println!(
            "RESULT hot_path scaling_8v1 ours={:.2} floor={:.2}",
            o8 / o1,
            f8 / f1
        );
    }
}
