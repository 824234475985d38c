//! Helpers shared by the side-by-side benchmarks (included with `mod common;`).
//!
//! * a tiny stub S3 on 127.0.0.1 (hyper) that answers every `GET` with a fixed
//!   object and records which access key signed each request, per bucket;
//! * S3 clients for "ours" (our chain/provider plugged in with
//!   `credentials_provider`) and "aws-config" (its default chain, reading the
//!   process environment);
//! * capture of the `RuntimeComponents` an `aws-sdk-s3` operation really uses,
//!   so identity resolution can be driven exactly as the orchestrator does it
//!   (`identity_cache.resolve_cached_identity(resolver, components, cfg)`);
//! * percentile helpers, medians of repeats taken in this process, and
//!   `RESULT` line printing;
//! * [`quiet`]: the proof that the machine was quiet during the run;
//! * [`fresh_process`]: runs one scenario in a child process of its own.
#![allow(dead_code, missing_docs)]

pub mod quiet;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, Layer, RuntimeComponents};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub const REGION: &str = "us-east-1";
pub const NAMESPACE: &str = "bench-ns";
pub const SERVICE_ACCOUNT: &str = "bench-sa";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench-role";
pub const OBJECT: &[u8] = b"hello from the stub S3\n";

/// `cargo bench` passes `--bench` to every bench binary, `cargo test
/// --all-targets` runs them without it. These benches take minutes, so
/// outside `cargo bench` they only say how to run them.
pub fn exit_unless_cargo_bench(name: &str) {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "{name}: a benchmark, not a test; run it with `cargo bench --bench {name} -- --quick`"
        );
        std::process::exit(0);
    }
}

/// The runtime every socket bench uses: 2 workers, like the machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A service-account token file in a fresh directory (kept alive by the
/// returned guard), with the process environment isolated around it.
pub fn token_env() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path());
    isolate_process_env(&token);
    (dir, token)
}

/// `--quick` was passed (cargo bench --bench x -- --quick).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Points every AWS setting aws-config would read at harmless values, so that
/// its default chain finds nothing but the container provider. Must run
/// before any thread is started.
pub fn isolate_process_env(token_file: &std::path::Path) {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_ENDPOINT_URL",
        "KUBERNETES_SERVICE_HOST",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    );
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_REGION", REGION);
    std::env::set_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file);
}

/// Writes a fixture Pod Identity token for the bench association.
pub fn write_token(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("eks-pod-identity-token");
    std::fs::write(
        &path,
        eks_pod_identity_testkit::token::mint(NAMESPACE, SERVICE_ACCOUNT),
    )
    .expect("write token");
    path
}

// ---------------------------------------------------------------- stub S3

/// Per-bucket record of the access keys that signed requests, in order of
/// first use (a new key = one credential rotation observed by requests).
#[derive(Default, Debug)]
pub struct S3Log {
    pub keys: HashMap<String, Vec<String>>,
    pub requests: HashMap<String, u64>,
}

pub struct StubS3 {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<S3Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StubS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StubS3 {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Distinct access keys seen for `bucket`.
    pub fn keys(&self, bucket: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .keys
            .get(bucket)
            .map_or(0, Vec::len)
    }
}

fn access_key(auth: &str) -> Option<&str> {
    let rest = &auth[auth.find("Credential=")? + "Credential=".len()..];
    rest.split('/').next()
}

pub async fn start_stub_s3() -> StubS3 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(S3Log::default()));
    let log2 = log.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let log = log2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let bucket = req
                            .uri()
                            .path()
                            .trim_start_matches('/')
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        let key = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(access_key)
                            .unwrap_or("-")
                            .to_owned();
                        {
                            let mut l = log.lock().unwrap();
                            *l.requests.entry(bucket.clone()).or_default() += 1;
                            let keys = l.keys.entry(bucket).or_default();
                            if keys.last() != Some(&key) && !keys.contains(&key) {
                                keys.push(key);
                            }
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(200)
                                .header("content-type", "application/octet-stream")
                                .header("content-length", OBJECT.len())
                                .header("etag", "\"0123456789abcdef\"")
                                .header("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")
                                .header("x-amz-request-id", "STUB")
                                .body(Full::new(Bytes::from_static(OBJECT)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    StubS3 { addr, log, task }
}

// ---------------------------------------------------------------- S3 clients

/// An S3 client on the stub, credentials from `provider` (ours), behind the
/// SDK's default (lazy) identity cache unless `identity_cache` is given.
pub async fn s3_with_provider(
    endpoint: &str,
    provider: impl ProvideCredentials + 'static,
    identity_cache: Option<aws_sdk_s3::config::SharedIdentityCache>,
) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .credentials_provider(provider);
    if let Some(cache) = identity_cache {
        loader = loader.identity_cache(cache);
    }
    let sdk = loader.load().await;
    s3_from(&sdk, endpoint)
}

/// An S3 client wired as the provider's documentation says: our cache as
/// the SDK's identity cache and, as the SDK's credentials provider, the very
/// provider that cache serves by construction
/// (`SdkIdentityCache::credentials_provider`). Every bench builds "ours"
/// through here, so the wiring is in one place.
pub async fn s3_ours(
    endpoint: &str,
    provider: &eks_pod_identity::PodIdentityProvider,
) -> aws_sdk_s3::Client {
    let ids = provider.identity_cache();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .load()
        .await
        .into_builder()
        .credentials_provider(ids.credentials_provider())
        .identity_cache(ids)
        .build();
    s3_from(&sdk, endpoint)
}

/// Our provider on default settings, for the agent at `uri`.
pub fn provider(uri: &str, token: &std::path::Path) -> eks_pod_identity::PodIdentityProvider {
    eks_pod_identity::PodIdentityProvider::builder()
        .endpoint(uri)
        .token_file(token)
        .build()
        .expect("provider")
}

/// An S3 client on the stub whose credentials come from aws-config's default
/// chain (environment: `AWS_CONTAINER_CREDENTIALS_FULL_URI` + token file).
pub async fn s3_with_aws_default_chain(endpoint: &str) -> aws_sdk_s3::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .load()
        .await;
    s3_from(&sdk, endpoint)
}

pub fn s3_from(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn get_object(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key("object.txt")
        .send()
        .await
        .map_err(|e| format!("{:#}", eks_pod_identity::report::ErrorReport(&e)))?;
    let body = out.body.collect().await.map_err(|e| e.to_string())?;
    assert_eq!(body.into_bytes().as_ref(), OBJECT);
    Ok(())
}

// ---------------------------------------------------------------- SDK identity path

/// What the orchestrator hands to the identity cache for one request.
pub struct SdkIdentityPath {
    pub components: RuntimeComponents,
    pub resolver: aws_smithy_runtime_api::client::identity::SharedIdentityResolver,
    pub cfg: ConfigBag,
}

impl SdkIdentityPath {
    /// One identity resolution, exactly as `orchestrator::auth` does it.
    #[inline]
    pub async fn resolve(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        use aws_sdk_s3::config::ResolveCachedIdentity;
        self.components
            .identity_cache()
            .resolve_cached_identity(self.resolver.clone(), &self.components, &self.cfg)
            .await
            .expect("identity")
    }
}

#[derive(Debug)]
struct Capture(Arc<Mutex<Option<(RuntimeComponents, Layer)>>>);

#[derive(Debug)]
struct Captured;
impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("captured runtime components (request aborted on purpose)")
    }
}
impl std::error::Error for Captured {}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "CaptureRuntimeComponents"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let mut layer = Layer::new("captured");
        if let Some(r) = cfg.load::<aws_sdk_s3::config::retry::RetryConfig>() {
            layer.store_put(r.clone());
        }
        if let Some(t) = cfg.load::<aws_sdk_s3::config::timeout::TimeoutConfig>() {
            layer.store_put(t.clone());
        }
        *self.0.lock().unwrap() = Some((rc.clone(), layer));
        Err(Box::new(Captured))
    }
}

/// Captures the runtime components of a real `GetObject` on `client`'s
/// config (no request is sent), plus a config bag holding the operation's
/// retry and timeout config (the lazy cache reads them per call) under three
/// more layers, like the orchestrator's bag.
pub async fn capture_identity_path(client: &aws_sdk_s3::Client) -> SdkIdentityPath {
    let slot = Arc::new(Mutex::new(None));
    let _ = client
        .get_object()
        .bucket("b")
        .key("k")
        .customize()
        .interceptor(Capture(slot.clone()))
        .send()
        .await;
    let (components, layer) = slot.lock().unwrap().take().expect("captured");
    use aws_smithy_runtime_api::client::runtime_components::GetIdentityResolver;
    let resolver = components
        .identity_resolver(aws_smithy_runtime_api::client::auth::AuthSchemeId::new(
            "sigv4",
        ))
        .expect("sigv4 identity resolver");
    let mut cfg = ConfigBag::of_layers(vec![layer, Layer::new("client"), Layer::new("operation")]);
    let _ = cfg.interceptor_state();
    SdkIdentityPath {
        components,
        resolver,
        cfg,
    }
}

// ---------------------------------------------------------------- stats

/// Sorted-sample percentile (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `y/x`, printed with 2 decimals (or `inf`).
pub fn ratio(ours: f64, aws: f64) -> String {
    if ours == 0.0 {
        if aws == 0.0 {
            "1.00".into()
        } else {
            "inf".into()
        }
    } else if aws / ours < 0.1 {
        format!("{:.4}", aws / ours)
    } else {
        format!("{:.2}", aws / ours)
    }
}

pub fn result(bench: &str, figure: &str, ours: f64, aws: f64, unit_fmt: fn(f64) -> String) {
    println!(
        "RESULT {bench} {figure} ours={} aws-config={} ratio={}",
        unit_fmt(ours),
        unit_fmt(aws),
        ratio(ours, aws)
    );
}

/// Number formats for `RESULT` lines (`result`'s `unit_fmt`), by decimals.
pub fn whole_number(x: f64) -> String {
    format!("{x:.0}")
}
pub fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}
pub fn two_decimals(x: f64) -> String {
    format!("{x:.2}")
}
pub fn three_decimals(x: f64) -> String {
    format!("{x:.3}")
}
pub fn four_decimals(x: f64) -> String {
    format!("{x:.4}")
}

// ---------------------------------------------------------------- repeats

/// Median of unsorted samples (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// `min..max (±x % of the median)` of repeated measurements.
pub fn spread(v: &[f64], unit_fmt: fn(f64) -> String) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v);
    let pct = if m != 0.0 {
        100.0 * (hi - lo) / 2.0 / m.abs()
    } else {
        0.0
    };
    format!("{}..{}(±{pct:.0}%)", unit_fmt(lo), unit_fmt(hi))
}

/// A `RESULT` line from repeated measurements: medians, their ratio, the
/// number of repeats and each side's spread.
pub fn result_rep(
    bench: &str,
    figure: &str,
    ours: &[f64],
    aws: &[f64],
    unit_fmt: fn(f64) -> String,
) {
    let (o, a) = (median(ours), median(aws));
    println!(
        "RESULT {bench} {figure} ours={} aws-config={} ratio={} repeats={} ours_spread={} aws_spread={}",
        unit_fmt(o),
        unit_fmt(a),
        ratio(o, a),
        ours.len().min(aws.len()),
        spread(ours, unit_fmt),
        spread(aws, unit_fmt)
    );
}

/// A `RESULT` line for a figure aws-config has no equivalent of.
pub fn result_ours_only(bench: &str, figure: &str, ours: &[f64], unit_fmt: fn(f64) -> String) {
    println!(
        "RESULT {bench} {figure} ours={} aws-config=none ratio=n/a repeats={} ours_spread={} \
         (no aws-config equivalent)",
        unit_fmt(median(ours)),
        ours.len(),
        spread(ours, unit_fmt)
    );
}

// ---------------------------------------------------------------- fresh processes

/// The scenario this process was asked to run (`--scenario NAME`), if any.
pub fn scenario_arg() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1).cloned())
}

fn scenario_command(name: &str, extra: &[&str]) -> std::process::Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--bench").arg("--scenario").arg(name).args(extra);
    if quick() {
        cmd.arg("--quick");
    }
    cmd
}

/// Runs this bench binary again as `--bench [--quick] --scenario NAME`,
/// one fresh process per scenario, in order; their output goes to ours.
pub fn fresh_process(name: &str, extra: &[&str]) {
    let status = scenario_command(name, extra)
        .status()
        .expect("spawn scenario");
    if !status.success() {
        println!("RESULT scenario {name} failed ({status})");
    }
}

/// Like [`fresh_process`], but returns the child's standard output (also
/// echoed to ours).
pub fn fresh_process_output(name: &str, extra: &[&str]) -> String {
    let out = scenario_command(name, extra)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("spawn scenario");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        println!("RESULT scenario {name} failed ({})", out.status);
    }
    text
}
