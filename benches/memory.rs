//! Memory: heap bytes per provider instance, 10,000 instances per side, counted
//! by a `#[global_allocator]` wrapper (`stats_alloc`: net bytes allocated minus
//! freed while the instances are alive).
//!
//! * ours: `PodIdentityProvider` (its refreshing cache, background task and
//!   agent client included);
//! * aws-config: `EcsCredentialsProvider` (what its default chain uses for
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI`) + the SDK's `IdentityCache::lazy()`
//!   (one cache per provider, as each SDK config has one).
//!
//! Two states per side: `built` (constructed, nothing fetched) and `primed`
//! (each instance has fetched and caches credentials; for aws-config through
//! `resolve_cached_identity` with the runtime components of a real S3 client,
//! given that instance's cache and resolver). `primed` counts everything the
//! process grew by, including what stays behind when the instances are gone
//! (the runtime's I/O and timer slabs grown by 250 concurrent fetches, the
//! agent's side of the connections); `owned` is what dropping the instances
//! gives back, i.e. what the instances themselves hold.
//!
//! The agent here is a minimal in-process HTTP server answering every request
//! with a valid credentials document and `Connection: close`, so no idle
//! pooled connection (which would expire after 90 s anyway) is counted and
//! 10,000 sockets never exist at once.

#[path = "common/mod.rs"]
mod common;

use std::alloc::System;
use std::convert::Infallible;
use std::time::Duration;

use aws_sdk_s3::config::{ResolveCachedIdentity, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::SharedIdentityResolver;
use bytes::Bytes;
use eks_pod_identity::PodIdentityProvider;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N_FULL: usize = 10_000;
const BATCH: usize = 250;

fn net(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
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

struct AwsInstance {
    _cache: aws_sdk_s3::config::SharedIdentityCache,
    _resolver: SharedIdentityResolver,
}

fn main() {
    common::exit_unless_cargo_bench("memory");
    let quick = common::quick();
    // --quick: 1,000 instances per side (10,000 connections per side are
    // slow to open and close on 2 cores; the per-instance figures agree).
    let n = if quick { N_FULL / 10 } else { N_FULL };
    let settle = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    let (_dir, token) = common::token_env();

    let rt = common::runtime();
    let (ours, aws) = rt.block_on(async {
        let uri = mini_agent().await;
        std::env::set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri);
        // A real S3 client's runtime components (for the aws-config priming path).
        let template = common::capture_identity_path(
            &common::s3_with_provider(
                "http://127.0.0.1:9",
                aws_credential_types::Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    None,
                    None,
                    "bench",
                ),
                None,
            )
            .await,
        )
        .await;
        // Warm-up: one instance of each, so one-time globals are not counted.
        {
            let p = PodIdentityProvider::builder()
                .endpoint(&uri)
                .token_file(&token)
                .build()
                .unwrap();
            p.credentials().await.unwrap();
            let _ = aws_instance(&template, true).await;
        }
        tokio::time::sleep(settle).await;

        // ---- ours
        let region = Region::new(GLOBAL);
        let mut ours = Vec::with_capacity(n);
        let vec_bytes = net(&region);
        for _ in 0..n {
            ours.push(
                PodIdentityProvider::builder()
                    .endpoint(&uri)
                    .token_file(&token)
                    .build()
                    .unwrap(),
            );
        }
        let ours_built = net(&region) - vec_bytes;
        for chunk in ours.chunks(BATCH) {
            let fetches = chunk.iter().map(|p| p.credentials());
            for r in futures_util::future::join_all(fetches).await {
                r.expect("prime ours");
            }
        }
        tokio::time::sleep(settle).await;
        let ours_primed = net(&region) - vec_bytes;
        drop(ours);
        tokio::time::sleep(settle).await;
        let ours_left = net(&region);
        let ours = Figures {
            built: ours_built,
            primed: ours_primed,
            owned: ours_primed - ours_left,
        };

        // ---- aws-config
        let region = Region::new(GLOBAL);
        let mut aws: Vec<AwsInstance> = Vec::with_capacity(n);
        let vec_bytes = net(&region);
        for _ in 0..n {
            aws.push(aws_instance(&template, false).await);
        }
        let aws_built = net(&region) - vec_bytes;
        for chunk in aws.chunks(BATCH) {
            let fetches = chunk.iter().map(|a| prime_aws(&template, a));
            futures_util::future::join_all(fetches).await;
        }
        tokio::time::sleep(settle).await;
        let aws_primed = net(&region) - vec_bytes;
        drop(aws);
        tokio::time::sleep(settle).await;
        let aws_left = net(&region);
        let aws = Figures {
            built: aws_built,
            primed: aws_primed,
            owned: aws_primed - aws_left,
        };
        (ours, aws)
    });

    let per = |b: i64| b as f64 / n as f64;
    println!(
        "\nmemory: heap bytes per instance, {n} instances per side (counting global allocator)"
    );
    for (side, f) in [("ours", &ours), ("aws-config", &aws)] {
        println!(
            "  {side:<10} built {:>8.0} B   primed {:>8.0} B   owned when primed {:>8.0} B",
            per(f.built),
            per(f.primed),
            per(f.owned)
        );
    }
    println!();
    for (figure, pick) in [
        (
            "bytes_per_instance_built",
            (|f: &Figures| f.built) as fn(&Figures) -> i64,
        ),
        ("bytes_per_instance_primed", |f: &Figures| f.primed),
        ("bytes_per_instance_owned", |f: &Figures| f.owned),
    ] {
        common::result(
            "memory",
            figure,
            per(pick(&ours)),
            per(pick(&aws)),
            common::f0,
        );
    }
}

/// Net heap bytes of one side (all instances together).
struct Figures {
    built: i64,
    primed: i64,
    /// Given back when the primed instances are dropped.
    owned: i64,
}

/// One aws-config provider + lazy cache, as `aws_config::defaults().load()`
/// would wire it for the container endpoint. `prime` fetches once.
async fn aws_instance(template: &common::SdkIdentityPath, prime: bool) -> AwsInstance {
    let provider = aws_config::ecs::EcsCredentialsProvider::builder().build();
    let resolver = SharedIdentityResolver::new(SharedCredentialsProvider::new(provider));
    let inst = AwsInstance {
        _cache: aws_config::identity::IdentityCache::lazy().build(),
        _resolver: resolver,
    };
    if prime {
        prime_aws(template, &inst).await;
    }
    inst
}

async fn prime_aws(template: &common::SdkIdentityPath, inst: &AwsInstance) {
    // The lazy cache takes the time source and sleep from the request's
    // runtime components (shared by every request of a client, not per
    // provider), and partitions by the resolver passed here.
    inst._cache
        .resolve_cached_identity(inst._resolver.clone(), &template.components, &template.cfg)
        .await
        .expect("prime aws-config");
}
