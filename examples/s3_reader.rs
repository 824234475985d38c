//! `s3_reader`: the pod app of the scenario in `deploy/` (`s3-reader` in
//! `my-app-namespace`), in Rust. Lists or reads an S3 bucket with
//! credentials from [`eks_pod_identity::DefaultChain`]: the AWS SDK's default
//! chain (environment keys, profile, IRSA) with our Pod Identity provider and
//! the pod-aware IMDS guard, so the same binary runs in a pod and on a laptop.
//!
//! ```text
//! s3_reader ls  s3://my-app-bucket[/prefix]
//! s3_reader get s3://my-app-bucket/hello.txt
//! s3_reader --whoami
//! s3_reader --watch 60 --interval-ms 250 ls s3://my-app-bucket
//! ```
//!
//! Exit codes: 0 ok, 1 an S3/STS call failed (the error code and the
//! credential source are printed), 2 no link of the credential chain could
//! provide credentials (each link is printed with its reason).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use clap::{Parser, Subcommand, ValueEnum};
use eks_pod_identity::report::ErrorReport;
use eks_pod_identity::{DefaultChain, FallbackPolicy, NoCredentials};
use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "List or read an S3 bucket with EKS Pod Identity credentials")]
struct Args {
    /// S3/STS endpoint (e.g. a local moto server).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Print the caller identity (STS GetCallerIdentity) first.
    #[arg(long)]
    whoami: bool,
    /// Repeat the operation for this many seconds.
    #[arg(long, value_name = "SECS")]
    watch: Option<u64>,
    /// Pause between repeated operations.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    interval_ms: u64,
    /// Whether IMDS may be used when no other source is configured
    /// (default: deny inside Kubernetes, allow elsewhere).
    #[arg(long, value_enum)]
    fallback: Option<Fallback>,
    /// IMDS endpoint override.
    #[arg(long)]
    imds_endpoint: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    /// List objects under s3://bucket[/prefix].
    Ls { url: String },
    /// Write the object at s3://bucket/key to stdout.
    Get { url: String },
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Fallback {
    Deny,
    Warn,
    Allow,
}

fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?} has no bucket"));
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

struct App {
    s3: aws_sdk_s3::Client,
    sts: aws_sdk_sts::Client,
    chain: DefaultChain,
}

/// An S3/STS failure: the service's error code and message, or
/// `RequestFailed` and the error with its causes.
struct CallError {
    code: String,
    /// The message, each cause on its own line (for people).
    message: String,
    /// The same on one line, causes separated by `: ` (for JSON lines).
    one_line: String,
    /// No link of the chain could provide credentials.
    no_credentials: bool,
}

impl App {
    fn source(&self) -> String {
        self.chain.status().source.unwrap_or_else(|| "none".into())
    }

    fn fail<E>(&self, err: aws_sdk_s3::error::SdkError<E>) -> CallError
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        match (err.code(), err.message()) {
            (Some(code), message) => CallError {
                code: code.to_owned(),
                message: message.unwrap_or("").to_owned(),
                one_line: message.unwrap_or("").to_owned(),
                no_credentials: false,
            },
            _ => CallError {
                code: "RequestFailed".into(),
                message: ErrorReport(&err).to_string(),
                one_line: ErrorReport(&err).one_line().to_string(),
                no_credentials: caused_by::<NoCredentials>(&err),
            },
        }
    }

    async fn run(&self, cmd: &Command, out: &mut impl Write) -> Result<(), CallError> {
        match cmd {
            Command::Ls { url } => {
                let (bucket, prefix) = parse_s3_url(url).map_err(usage)?;
                let mut req = self.s3.list_objects_v2().bucket(&bucket);
                if !prefix.is_empty() {
                    req = req.prefix(&prefix);
                }
                let resp = req.send().await.map_err(|e| self.fail(e))?;
                for obj in resp.contents() {
                    let _ = writeln!(
                        out,
                        "{:>10}  s3://{bucket}/{}",
                        obj.size().unwrap_or(0),
                        obj.key().unwrap_or("")
                    );
                }
            }
            Command::Get { url } => {
                let (bucket, key) = parse_s3_url(url).map_err(usage)?;
                let resp = self
                    .s3
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| self.fail(e))?;
                let body = resp.body.collect().await.map_err(|e| CallError {
                    code: "ReadFailed".into(),
                    message: ErrorReport(&e).to_string(),
                    one_line: ErrorReport(&e).one_line().to_string(),
                    no_credentials: false,
                })?;
                let _ = out.write_all(&body.into_bytes());
            }
        }
        Ok(())
    }

    async fn whoami(&self) -> Result<String, CallError> {
        let id = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.fail(e))?;
        Ok(id.arn().unwrap_or("").to_owned())
    }
}

fn usage(message: String) -> CallError {
    CallError {
        code: "InvalidArgument".into(),
        one_line: message.clone(),
        message,
        no_credentials: false,
    }
}

/// Whether `err` or one of its causes is a `T`.
fn caused_by<T: Error + 'static>(err: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<T>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("S3_READER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut chain = DefaultChain::builder();
    if let Some(f) = args.fallback {
        chain = chain.fallback_policy(match f {
            Fallback::Deny => FallbackPolicy::Deny,
            Fallback::Warn => FallbackPolicy::Warn,
            Fallback::Allow => FallbackPolicy::Allow,
        });
    }
    if let Some(uri) = &args.imds_endpoint {
        chain = chain.imds_endpoint(uri);
    }
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(args.region.clone()));
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // The SDK's default chain with our Pod Identity link, and the identity
    // cache that goes with it (`eks_pod_identity::load_defaults` in one line).
    let (config, chain) = chain.load(loader).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let app = App {
        s3,
        sts: aws_sdk_sts::Client::new(&config),
        chain,
    };

    if args.whoami {
        match app.whoami().await {
            Ok(arn) => {
                println!("{arn}");
                eprintln!("credentials: {}", app.source());
            }
            Err(e) => return report(&app, &e),
        }
    }
    let Some(cmd) = args.command.clone() else {
        return ExitCode::SUCCESS;
    };
    match args.watch {
        None => {
            let mut out = std::io::stdout().lock();
            match app.run(&cmd, &mut out).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => report(&app, &e),
            }
        }
        Some(secs) => watch(&app, &cmd, Duration::from_secs(secs), args.interval_ms).await,
    }
}

/// Prints the failure once: the service's code and message, or the error
/// with each distinct cause on its own line; never a `Debug` dump.
fn report(app: &App, e: &CallError) -> ExitCode {
    let (first, causes) = e.message.split_once('\n').unwrap_or((&e.message, ""));
    eprintln!("error: {}: {first} (credentials: {})", e.code, app.source());
    if !causes.is_empty() {
        eprintln!("{causes}");
    }
    if e.no_credentials {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Repeats `cmd`, one JSON line per request on stderr, then a summary line.
async fn watch(app: &App, cmd: &Command, duration: Duration, interval_ms: u64) -> ExitCode {
    let started = Instant::now();
    let (mut requests, mut failures, mut max_ms) = (0u64, 0u64, 0f64);
    while started.elapsed() < duration {
        let t0 = Instant::now();
        let result = app.run(cmd, &mut std::io::sink()).await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let status = app.chain.status();
        requests += 1;
        max_ms = f64::max(max_ms, ms);
        let line = serde_json::json!({
            "seq": requests,
            "ok": result.is_ok(),
            "latency_ms": (ms * 1000.0).round() / 1000.0,
            "source": status.source,
            "expiration": status.expiration.map(eks_pod_identity::protocol::rfc3339::format),
            "error": result.as_ref().err().map(|e| format!("{}: {}", e.code, e.one_line)),
        });
        if result.is_err() {
            failures += 1;
        }
        eprintln!("{line}");
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    }
    let status = app.chain.status();
    eprintln!(
        "{}",
        serde_json::json!({"summary": {
            "requests": requests,
            "failures": failures,
            "max_latency_ms": max_ms,
            "credential_fetches": status.fetches,
            "callers_waited": status.waits,
            "source": status.source,
        }})
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
