//! Hot path: one SDK request's identity resolution with valid cached credentials.
//!
//! The headline is like for like: both sides on the SDK's request path,
//! `identity_cache.resolve_cached_identity(resolver, components, cfg)`, with
//! the `RuntimeComponents` captured from a real `aws-sdk-s3` `GetObject`,
//! exactly what the orchestrator does before signing every request:
//! * `ours`: the S3 client wired as the provider documents it
//!   (`common::s3_ours`: the provider's `SdkIdentityCache` as the identity cache
//!   and its `credentials_provider()` as the credentials provider);
//! * `aws-config`: the S3 client of `aws_config::defaults().load()` (its
//!   default chain finds the container endpoint; the SDK's lazy cache).
//!
//! Each at 1 and 8 tasks, on a 2-worker multi-thread runtime (`mt`) and on a
//! current-thread runtime (`ct`); at 8 tasks also with each task on its own
//! S3 client (its own SDK config, identity cache and resolver) next to the
//! shared client.
//!
//! Also measured, ours only and labelled so: direct reads with no aws-config
//! equivalent (`provider.credentials()`, `provide_credentials`), and the
//! pieces of the SDK path, to show what does not scale with tasks:
//! * `floor`: `ArcSwap::load_full` in the same tasks;
//! * `sdk_clones`: the two `Arc` clones the orchestrator makes per request
//!   (`components.identity_cache()`, the resolver), which every cache pays;
//! * `identity_clone_shared`: cloning the one `Identity` our cache serves;
//! * `identity_clone_per_thread`: cloning an `Identity` built per thread from
//!   the same credentials (a prototype of the fix, not the provider's code).
//!
//! Figure: CPU ns per call = CPU time of all this process's threads over the
//! measurement (`CLOCK_PROCESS_CPUTIME_ID`) / calls; with perfect scaling
//! it stays flat from 1 to 8 tasks. Every cell is measured `REPEATS` times,
//! variants interleaved, and the median is taken here, in this process.

#[path = "common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::identity::Identity;
use eks_pod_identity_testkit::FakeAgent;

const TASKS: [usize; 2] = [1, 8];

fn repeats() -> usize {
    if common::quick() {
        3
    } else {
        5
    }
}

/// Target wall time of one measurement.
fn target() -> Duration {
    if common::quick() {
        Duration::from_millis(60)
    } else {
        Duration::from_millis(250)
    }
}

/// CPU time of every thread of this process, ns (`CLOCK_PROCESS_CPUTIME_ID`,
/// which, unlike `/proc/self/task/*/schedstat`, includes the running slice).
fn process_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

type TaskFut = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Builds the future of task `i` making `n` calls.
type MakeTask = Arc<dyn Fn(usize, u64) -> TaskFut + Send + Sync>;

/// Runs `tasks` tasks of `calls_per_task` calls each; CPU ns per call.
fn measure(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    calls_per_task: u64,
    make: &MakeTask,
) -> f64 {
    rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let fut = make(i, calls_per_task);
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    fut.await;
                })
            })
            .collect();
        // Read the clock before releasing the tasks: on a current-thread
        // runtime the last task through the barrier runs its whole loop
        // before this future is polled again.
        let c0 = process_cpu_ns();
        barrier.wait().await;
        for h in handles {
            h.await.unwrap();
        }
        let c1 = process_cpu_ns();
        (c1 - c0) as f64 / (tasks as u64 * calls_per_task) as f64
    })
}

/// Calls per task so that one measurement takes about `target()`.
fn calibrate(rt: &tokio::runtime::Runtime, tasks: usize, make: &MakeTask) -> u64 {
    let probe = 2_000u64;
    let t = Instant::now();
    measure(rt, tasks, probe, make);
    let per_call = t.elapsed().as_secs_f64() / (probe * tasks as u64) as f64;
    let total = (target().as_secs_f64() / per_call.max(1e-9)) as u64;
    (total / tasks as u64).clamp(1_000, 50_000_000)
}

macro_rules! looped {
    ($x:expr, |$v:ident| $call:expr) => {{
        let x = $x.clone();
        let f: MakeTask = Arc::new(move |_i: usize, n: u64| -> TaskFut {
            let $v = x.clone();
            Box::pin(async move {
                for _ in 0..n {
                    black_box($call);
                }
            })
        });
        f
    }};
}

thread_local! {
    static PER_THREAD: RefCell<Option<Identity>> = const { RefCell::new(None) };
}

struct Setup {
    _agent: FakeAgent,
    variants: Vec<(&'static str, MakeTask)>,
}

/// Everything the variants need, built on `rt` (the provider's background
/// task and the SDK clients live on it).
fn setup(rt: &tokio::runtime::Runtime, token: &std::path::Path) -> Setup {
    rt.block_on(async {
        let agent = FakeAgent::builder()
            .association(common::NAMESPACE, common::SERVICE_ACCOUNT, common::ROLE_ARN)
            .lifetime(Duration::from_secs(6 * 3600))
            .start()
            .await
            .expect("fake agent");
        std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.uri());
        let provider = common::provider(&agent.uri(), token);
        let creds = provider.credentials().await.expect("prime provider");

        // S3 clients ("http://127.0.0.1:9" is never contacted: the captured
        // request is aborted before it is serialised).
        let endpoint = "http://127.0.0.1:9";
        let mut ours = Vec::new();
        let mut aws = Vec::new();
        for _ in 0..TASKS[TASKS.len() - 1] {
            let o = Arc::new(
                common::capture_identity_path(&common::s3_ours(endpoint, &provider).await).await,
            );
            let a = Arc::new(
                common::capture_identity_path(&common::s3_with_aws_default_chain(endpoint).await)
                    .await,
            );
            // Prime: aws-config's lazy cache loads from the agent; ours
            // learns its partition.
            o.resolve().await;
            a.resolve().await;
            ours.push(o);
            aws.push(a);
        }
        let ours: Arc<Vec<_>> = Arc::new(ours);
        let aws: Arc<Vec<_>> = Arc::new(aws);
        let served = ours[0].resolve().await;

        let shared_path = |paths: &Arc<Vec<Arc<common::SdkIdentityPath>>>| {
            let p = paths[0].clone();
            looped!(p, |p| p.resolve().await)
        };
        let own_paths = |paths: &Arc<Vec<Arc<common::SdkIdentityPath>>>| {
            let paths = paths.clone();
            let f: MakeTask = Arc::new(move |i: usize, n: u64| -> TaskFut {
                let p = paths[i % paths.len()].clone();
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(p.resolve().await);
                    }
                })
            });
            f
        };
        let floor = Arc::new(ArcSwap::from_pointee(creds.clone()));
        let sdk_clones = {
            let p = ours[0].clone();
            looped!(p, |p| (p.components.identity_cache(), p.resolver.clone()))
        };
        let shared_identity = Arc::new(served);
        let per_thread = {
            let creds = creds.clone();
            let f: MakeTask = Arc::new(move |_i: usize, n: u64| -> TaskFut {
                let creds = creds.clone();
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(PER_THREAD.with(|slot| {
                            slot.borrow_mut()
                                .get_or_insert_with(|| Identity::from(creds.clone()))
                                .clone()
                        }));
                    }
                })
            });
            f
        };
        let variants: Vec<(&'static str, MakeTask)> = vec![
            ("ours_sdk", shared_path(&ours)),
            ("aws_sdk", shared_path(&aws)),
            ("ours_sdk_own_clients", own_paths(&ours)),
            ("aws_sdk_own_clients", own_paths(&aws)),
            (
                "ours_credentials",
                looped!(provider, |p| p.credentials().await.unwrap()),
            ),
            (
                "ours_provide_credentials",
                looped!(provider, |p| p.provide_credentials().await.unwrap()),
            ),
            ("floor", looped!(floor, |f| f.load_full())),
            ("sdk_clones", sdk_clones),
            (
                "identity_clone_shared",
                looped!(shared_identity, |i| Identity::clone(&i)),
            ),
            ("identity_clone_per_thread", per_thread),
        ];
        Setup {
            _agent: agent,
            variants,
        }
    })
}

fn flavor_runtime(flavor: &str) -> tokio::runtime::Runtime {
    match flavor {
        "mt" => common::runtime(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

fn main() {
    common::exit_unless_cargo_bench("hot_path");
    let (_dir, token) = common::token_env();
    let quiet = common::quiet::Quiet::begin("hot_path");
    // (flavor, variant, tasks) -> samples
    let mut samples: BTreeMap<(&str, &str, usize), Vec<f64>> = BTreeMap::new();
    let mut names = Vec::new();
    for flavor in ["mt", "ct"] {
        let rt = flavor_runtime(flavor);
        let s = setup(&rt, &token);
        names = s.variants.iter().map(|(n, _)| *n).collect();
        let calls: Vec<Vec<u64>> = s
            .variants
            .iter()
            .map(|(_, make)| TASKS.iter().map(|&t| calibrate(&rt, t, make)).collect())
            .collect();
        for _ in 0..repeats() {
            for (v, (name, make)) in s.variants.iter().enumerate() {
                for (ti, &t) in TASKS.iter().enumerate() {
                    let ns = measure(&rt, t, calls[v][ti], make);
                    samples.entry((flavor, name, t)).or_default().push(ns);
                }
            }
        }
        drop(s);
        rt.shutdown_timeout(Duration::from_millis(200));
    }

    println!(
        "\nhot_path: CPU ns per call, median of {} repeats (min..max), mt = 2-worker multi-thread, ct = current-thread",
        repeats()
    );
    for flavor in ["mt", "ct"] {
        for name in &names {
            let cells: Vec<String> = TASKS
                .iter()
                .map(|&t| {
                    let v = &samples[&(flavor, *name, t)];
                    format!(
                        "{:>8.1} [{}]",
                        common::median(v),
                        common::spread(v, common::one_decimal)
                    )
                })
                .collect();
            println!(
                "  {flavor} {name:<26} 1 task {}   8 tasks {}",
                cells[0], cells[1]
            );
        }
    }
    println!();
    let get = |f: &str, n: &str, t: usize| samples[&(f, n, t)].clone();
    for flavor in ["mt", "ct"] {
        for t in TASKS {
            common::result_rep(
                "hot_path",
                &format!("sdk_request_ns_{flavor}_tasks{t}"),
                &get(flavor, "ours_sdk", t),
                &get(flavor, "aws_sdk", t),
                common::one_decimal,
            );
        }
        common::result_rep(
            "hot_path",
            &format!("sdk_request_own_clients_ns_{flavor}_tasks8"),
            &get(flavor, "ours_sdk_own_clients", 8),
            &get(flavor, "aws_sdk_own_clients", 8),
            common::one_decimal,
        );
        for t in TASKS {
            for n in ["ours_credentials", "ours_provide_credentials"] {
                common::result_ours_only(
                    "hot_path",
                    &format!("{n}_ns_{flavor}_tasks{t}"),
                    &get(flavor, n, t),
                    common::one_decimal,
                );
            }
        }
        // Item 7: how each piece grows from 1 to 8 tasks.
        for n in [
            "floor",
            "sdk_clones",
            "identity_clone_shared",
            "identity_clone_per_thread",
            "ours_sdk",
            "ours_sdk_own_clients",
            "aws_sdk",
            "ours_provide_credentials",
        ] {
            let (a, b) = (
                common::median(&get(flavor, n, 1)),
                common::median(&get(flavor, n, 8)),
            );
            println!(
                "RESULT hot_path scaling_{flavor}_{n} tasks1_ns={a:.1} tasks8_ns={b:.1} tasks8_over_tasks1={:.2}",
                b / a
            );
        }
    }
    quiet.end();
}
