//! The `pod-identity-doctor` command line.
//!
//! ```text
//! pod-identity-doctor check [--json] [--fail-on SEVERITY] [--timeout DUR] [--probe-timeout DUR]
//!                           [--connect-timeout DUR] [--imds-endpoint URL] [--imds-ipv6-endpoint URL]
//!                           [--no-ipv6] [--sts-endpoint URL] [--no-sts]
//!                           [--pod-ip-env NAME] [--host-ip-env NAME]
//! pod-identity-doctor lint [--json | --format human|json|sarif] [--fail-on SEVERITY]
//!                          [--ignore RULE]... [--config FILE] PATH...
//! pod-identity-doctor rules [--json]
//! ```
//!
//! Durations accept `5`, `5s`, `500ms`.
//!
//! Exit codes (every subcommand): `0` no finding at or above `--fail-on`
//! (default `high`), `1` findings, `2` could not run (bad arguments, missing
//! path, unparseable file); see [`ExitStatus`].
//!
//! A new subcommand (the runtime `check`) plugs in by adding a variant to the
//! private subcommand enum with a flattened [`OutputArgs`], building a
//! [`Report`] with [`Command::Check`] and handing it to [`emit`] (or its error
//! to [`emit_error`]): human/JSON output, verdict and exit code then behave
//! exactly as for `lint`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use eks_pod_identity_provider::ErrorChain;

use crate::check::{self, CheckOptions};
use crate::lint;
use crate::output::{human, json, sarif};
use crate::report::{Command, ExitStatus, Report, Severity};
use crate::rules;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// One JSON document (`schema_version` 1).
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// Output options shared by every subcommand that produces a [`Report`].
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print one JSON document (schema in the crate docs, `schema_version` 1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Output format (`--json` is short for `--format json`).
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
    pub format: Option<Format>,
    /// Exit 1 when a finding is at or above this severity (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub fail_on: Severity,
}

#[derive(Debug, Parser)]
#[command(
    name = "pod-identity-doctor",
    version,
    about = "Detects EKS pods that can reach the node's IAM role.",
    long_about = "Detects EKS pods that can reach the node's IAM role.\n\nExit codes: 0 no finding at or above --fail-on, 1 findings, 2 could not run."
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Probe from inside a pod (or on a host) whether the node's IAM role is reachable and Pod Identity works.
    Check(CheckArgs),
    /// Lint Terraform (.tf) and Kubernetes YAML (.yaml, .yml); directories are walked recursively.
    Lint(LintArgs),
    /// List the rules (id, default severity, title, fix).
    Rules(RulesArgs),
}

#[derive(Debug, Args)]
struct LintArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// Drop every finding of this rule (repeatable), e.g. `--ignore EPI-K8S-001`.
    #[arg(long, value_name = "RULE")]
    ignore: Vec<String>,
    /// Config file with reviewed suppressions (`ignore: [{rule, path, reason}]`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Files or directories to lint together.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// Bound on the whole check.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Bound on each probe (how long an unanswered IMDS token PUT is waited for).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    probe_timeout: Duration,
    /// TCP connect timeout: past it, the SYN counts as dropped. Above 1 s on
    /// purpose: Linux reports an ICMP "prohibited" answer to an IPv6 connect
    /// only after its first SYN retransmission (~1 s).
    #[arg(long, value_name = "DURATION", default_value = "1500ms", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// IPv4 IMDS endpoint [default: $AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254].
    #[arg(long, value_name = "URL")]
    imds_endpoint: Option<String>,
    /// IPv6 IMDS endpoint [default: http://[fd00:ec2::254]].
    #[arg(long, value_name = "URL")]
    imds_ipv6_endpoint: Option<String>,
    /// Do not probe IMDS over IPv6.
    #[arg(long)]
    no_ipv6: bool,
    /// STS endpoint for GetCallerIdentity [default: $AWS_ENDPOINT_URL_STS, $AWS_ENDPOINT_URL, then the SDK's].
    #[arg(long, value_name = "URL")]
    sts_endpoint: Option<String>,
    /// Do not call STS GetCallerIdentity.
    #[arg(long)]
    no_sts: bool,
    /// Env var with the pod IP (downward API status.podIP).
    #[arg(long, value_name = "NAME", default_value = "POD_IP")]
    pod_ip_env: String,
    /// Env var with the host IP (downward API status.hostIP).
    #[arg(long, value_name = "NAME", default_value = "HOST_IP")]
    host_ip_env: String,
}

/// Parses `5`, `5s`, `1.5s`, `500ms`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (use e.g. 5s or 500ms)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("duration `{s}` must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[derive(Debug, Args)]
struct RulesArgs {
    /// Print the rules as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command line `args` (including the program name), writing to the
/// given streams, and returns the exit status.
///
/// ```
/// use eks_pod_identity_doctor::cli::run;
/// use eks_pod_identity_doctor::report::ExitStatus;
///
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let status = run(["pod-identity-doctor", "lint", "/no/such/dir"], &mut out, &mut err);
/// assert_eq!(status, ExitStatus::Error);
/// assert!(String::from_utf8(err).unwrap().contains("/no/such/dir: no such file or directory"));
/// ```
pub fn run<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(stderr, "{text}");
                ExitStatus::Error
            } else {
                let _ = write!(stdout, "{text}");
                ExitStatus::Clean
            };
        }
    };
    match cli.command {
        Sub::Check(args) => {
            let opts = CheckOptions {
                timeout: args.timeout,
                probe_timeout: args.probe_timeout,
                connect_timeout: args.connect_timeout,
                imds_endpoint: args.imds_endpoint,
                imds_ipv6_endpoint: args.imds_ipv6_endpoint,
                ipv6: !args.no_ipv6,
                sts: !args.no_sts,
                sts_endpoint: args.sts_endpoint,
                pod_ip_env: args.pod_ip_env,
                host_ip_env: args.host_ip_env,
                ..CheckOptions::default()
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return emit_error(Command::Check, &args.output, &e, stdout, stderr),
            };
            match runtime.block_on(check::run_check(&opts)) {
                Ok(report) => emit(&report, &args.output, stdout),
                Err(e) => emit_error(Command::Check, &args.output, &e, stdout, stderr),
            }
        }
        Sub::Lint(args) => {
            let config = match &args.config {
                None => lint::suppress::Config::default(),
                Some(path) => match std::fs::read_to_string(path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| lint::suppress::Config::parse(&t))
                {
                    Ok(c) => c,
                    Err(e) => {
                        let e = ConfigError(format!("{}: {e}", path.display()));
                        return emit_error(Command::Lint, &args.output, &e, stdout, stderr);
                    }
                },
            };
            if let Some(bad) = args.ignore.iter().find(|r| rules::by_id(r).is_none()) {
                let e = ConfigError(format!(
                    "--ignore {bad}: unknown rule (see `pod-identity-doctor rules`)"
                ));
                return emit_error(Command::Lint, &args.output, &e, stdout, stderr);
            }
            match lint::lint_paths(&args.paths) {
                Ok(mut report) => {
                    config.apply(&mut report, &args.ignore);
                    for w in report.warnings() {
                        let _ = writeln!(stderr, "pod-identity-doctor lint: warning: skipped {w}");
                    }
                    emit(&report, &args.output, stdout)
                }
                Err(e) => emit_error(Command::Lint, &args.output, &e, stdout, stderr),
            }
        }
        Sub::Rules(args) => {
            if args.json {
                let _ = writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string_pretty(rules::ALL).unwrap_or_default()
                );
            } else {
                for r in rules::ALL {
                    let _ = writeln!(stdout, "{:<11} {:<8} {}", r.id, r.severity, r.title);
                    let _ = writeln!(stdout, "{:<20} fix: {}", "", r.fix);
                }
            }
            ExitStatus::Clean
        }
    }
}

/// A bad `--config` file or `--ignore` value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConfigError(String);

/// Prints `report` as text, JSON or SARIF (per `output`) and returns its exit status.
pub fn emit(report: &Report, output: &OutputArgs, stdout: &mut dyn Write) -> ExitStatus {
    let format = match (output.json, output.format) {
        (true, _) => Format::Json,
        (false, f) => f.unwrap_or(Format::Human),
    };
    let text = match format {
        Format::Json => json::render(report, output.fail_on),
        Format::Sarif => sarif::render(report, output.fail_on),
        Format::Human => human::render(report, output.fail_on),
    };
    let _ = stdout.write_all(text.as_bytes());
    report.exit_status(output.fail_on)
}

/// Reports a run that could not complete: the error and each of its causes
/// once on stderr, each cause on its own line (and, with `--json`, an error
/// document on stdout whose message is the same chain on one line); returns
/// [`ExitStatus::Error`].
pub fn emit_error(
    command: Command,
    output: &OutputArgs,
    error: &dyn std::error::Error,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitStatus {
    let chain = ErrorChain(error);
    let _ = writeln!(
        stderr,
        "pod-identity-doctor {}: error: {chain}",
        command.as_str()
    );
    if output.json || output.format == Some(Format::Json) {
        let message = chain.one_line().to_string();
        let _ = stdout.write_all(json::render_error(command, &message).as_bytes());
    }
    ExitStatus::Error
}

/// Entry point of the binary: runs with the process arguments and standard streams.
pub fn main() -> std::process::ExitCode {
    let status = run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::ExitCode::from(status.code() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use eks_pod_identity_provider::protocol::{IMDS_ENDPOINT_V4, IMDS_ENDPOINT_V6};

    /// The help text spells the default IMDS endpoints out; they must be the
    /// provider's (the protocol module is their one home).
    #[test]
    fn check_help_names_the_providers_imds_endpoints() {
        let mut cli = Cli::command();
        let check = cli
            .find_subcommand_mut("check")
            .expect("a check subcommand");
        let help = check.render_long_help().to_string();
        assert!(
            help.contains(&format!(
                "$AWS_EC2_METADATA_SERVICE_ENDPOINT or {IMDS_ENDPOINT_V4}]"
            )),
            "{help}"
        );
        assert!(
            help.contains(&format!("[default: {IMDS_ENDPOINT_V6}]")),
            "{help}"
        );
    }

    /// A run that could not complete prints the error and each cause once:
    /// on stderr each cause on its own line, in the JSON document on one.
    #[test]
    fn emit_error_prints_the_chain_each_cause_once() {
        let err = lint::LintError::Io {
            path: "infra/nodes.tf".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let cause = std::error::Error::source(&err).unwrap().to_string();
        let output = OutputArgs {
            json: true,
            format: None,
            fail_on: Severity::High,
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let status = emit_error(Command::Lint, &output, &err, &mut stdout, &mut stderr);
        assert_eq!(status, ExitStatus::Error);
        let stderr = String::from_utf8(stderr).unwrap();
        assert_eq!(
            stderr,
            format!("pod-identity-doctor lint: error: infra/nodes.tf: cannot read\n  caused by: {cause}\n")
        );
        assert_eq!(stderr.matches(&cause).count(), 1, "{stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        assert_eq!(
            doc["error"]["message"],
            format!("infra/nodes.tf: cannot read: {cause}")
        );
    }
}
