//! `pod-identity-local-agent`: run a fake EKS Pod Identity Agent locally, optionally
//! backed by a seeded moto stack, so any Pod Identity app can run on a laptop.
//!
//! Prints `KEY=VALUE` lines to export (`AWS_CONTAINER_CREDENTIALS_FULL_URI`,
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` with `--write-token`, and with
//! `--with-moto` `AWS_ENDPOINT_URL` and `AWS_REGION`), then `READY`, and serves until
//! SIGTERM/SIGINT, or until its standard input closes when that is a pipe or a tty.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use eks_pod_identity_testkit::agent::{FakeAgent, RateLimit, REAL_AGENT_HOSTS};
use eks_pod_identity_testkit::stack::{self, MotoStack};
use eks_pod_identity_testkit::token;
use tokio::io::AsyncReadExt as _;

/// Run a fake EKS Pod Identity Agent (optionally with a local moto S3/STS/IAM).
#[derive(Debug, Parser)]
#[command(name = "pod-identity-local-agent", version)]
struct Args {
    /// Address to listen on (repeatable, e.g. 127.0.0.1:0 and [::1]:0).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: Vec<SocketAddr>,
    /// Start and seed a moto server; hand out real moto credentials (STS AssumeRole).
    #[arg(long)]
    with_moto: bool,
    /// Address moto binds with --with-moto.
    #[arg(long, default_value = "127.0.0.1")]
    moto_bind: IpAddr,
    /// Credential lifetime: seconds, or with a unit (90s, 15m, 1h). Must exceed 15 s.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    lifetime: Duration,
    /// Association `namespace/serviceaccount=roleArn` (repeatable). Default:
    /// my-app-namespace/my-app-sa → the pod role.
    #[arg(long, value_parser = parse_association)]
    association: Vec<(String, String, String)>,
    /// Write a service-account token for the default (first) association to PATH.
    #[arg(long, value_name = "PATH")]
    write_token: Option<PathBuf>,
    /// Check the Host header like the real agent (169.254.170.23 / [fd00:ec2::23]).
    #[arg(long)]
    host_check: bool,
    /// Disable the token bucket (1000 req/s, burst 500).
    #[arg(long)]
    no_rate_limit: bool,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Cache credentials per token like the real agent.
    #[arg(long)]
    cache: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| Duration::from_secs(n * mult))
        .map_err(|_| format!("invalid duration `{s}` (use e.g. 900, 90s, 15m, 1h)"))
}

fn parse_association(s: &str) -> Result<(String, String, String), String> {
    let err = || format!("invalid association `{s}`: expected namespace/serviceaccount=roleArn");
    let (key, arn) = s.split_once('=').ok_or_else(err)?;
    let (ns, sa) = key.split_once('/').ok_or_else(err)?;
    if ns.is_empty() || sa.is_empty() || !arn.starts_with("arn:") {
        return Err(err());
    }
    Ok((ns.into(), sa.into(), arn.into()))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("pod-identity-local-agent: {e}");
        std::process::exit(1);
    }
}

fn stdin_is_watchable() -> bool {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        return true;
    }
    std::fs::read_link("/proc/self/fd/0")
        .map(|p| {
            let p = p.to_string_lossy();
            p.starts_with("pipe:") || p.starts_with("socket:")
        })
        .unwrap_or(false)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let moto = if args.with_moto {
        eprintln!("starting moto (S3 + STS + IAM) ...");
        let m = MotoStack::builder()
            .bind_host(args.moto_bind)
            .start()
            .await?;
        eprintln!(
            "moto ready at {} (pid {}), seeded: roles {} / {}, buckets {} / {}, IAM enforcement on",
            m.endpoint_url(),
            m.pid().unwrap_or(0),
            stack::POD_ROLE_NAME,
            stack::NODE_ROLE_NAME,
            stack::APP_BUCKET,
            stack::OTHER_BUCKET
        );
        Some(m)
    } else {
        None
    };

    let mut associations = args.association.clone();
    if associations.is_empty() {
        associations.push((
            stack::DEFAULT_NAMESPACE.into(),
            stack::DEFAULT_SERVICE_ACCOUNT.into(),
            stack::role_arn(stack::POD_ROLE_NAME),
        ));
    }

    let mut builder = match &moto {
        Some(m) => FakeAgent::builder().minter(m.sts_minter()),
        None => FakeAgent::builder(),
    };
    for a in &args.listen {
        builder = builder.bind(*a);
    }
    for (ns, sa, arn) in &associations {
        builder = builder.association(ns, sa, arn);
    }
    if args.host_check {
        builder = builder.host_check(REAL_AGENT_HOSTS);
    }
    builder = builder
        .lifetime(args.lifetime)
        .rate_limit((!args.no_rate_limit).then(RateLimit::default))
        .latency(Duration::from_millis(args.latency_ms))
        .cache(args.cache);
    let agent = builder.start().await?;
    eprintln!(
        "fake Pod Identity Agent listening on {} ({} association(s), credential lifetime {:?}, {})",
        agent
            .addrs()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        associations.len(),
        args.lifetime,
        if moto.is_some() {
            "credentials from moto STS AssumeRole"
        } else {
            "static fake credentials"
        }
    );

    let mut out = vec![format!(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
        agent.uri()
    )];
    if let Some(path) = &args.write_token {
        let (ns, sa, _) = &associations[0];
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, token::mint(ns, sa))
            .map_err(|e| format!("cannot write token to {}: {e}", path.display()))?;
        let abs = std::fs::canonicalize(path)?;
        eprintln!(
            "wrote a service-account token for {ns}/{sa} to {}",
            abs.display()
        );
        out.push(format!(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}",
            abs.display()
        ));
    }
    if let Some(m) = &moto {
        out.push(format!("AWS_ENDPOINT_URL={}", m.endpoint_url()));
        out.push(format!("AWS_REGION={}", m.region()));
    }
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        for line in out {
            writeln!(stdout, "{line}")?;
        }
        writeln!(stdout, "READY")?;
        stdout.flush()?;
    }

    let stdin_closed = async {
        if stdin_is_watchable() {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = stdin_closed => "stdin closed",
    };
    let stats = agent.stats();
    eprintln!(
        "{why}: stopping (served {} request(s): {:?})",
        stats.total, stats.by_status
    );
    drop(agent);
    drop(moto);
    Ok(())
}
