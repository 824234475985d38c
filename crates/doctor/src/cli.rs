//! The `pod-identity-doctor` command line.
//!
//! ```text
//! pod-identity-doctor lint [--json] [--fail-on SEVERITY] PATH...
//! pod-identity-doctor rules [--json]
//! ```
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

use clap::{Args, Parser, Subcommand};

use crate::lint;
use crate::output::{human, json};
use crate::report::{Command, ExitStatus, Report, Severity};
use crate::rules;

/// Output options shared by every subcommand that produces a [`Report`].
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print one JSON document (schema in the crate docs, `schema_version` 1) instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Lint Terraform (.tf) and Kubernetes YAML (.yaml, .yml); directories are walked recursively.
    Lint(LintArgs),
    /// List the rules (id, default severity, title, fix).
    Rules(RulesArgs),
}

#[derive(Debug, Args)]
struct LintArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// Files or directories to lint together.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
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
        Sub::Lint(args) => match lint::lint_paths(&args.paths) {
            Ok(report) => emit(&report, &args.output, stdout),
            Err(e) => emit_error(Command::Lint, &args.output, &e, stdout, stderr),
        },
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

/// Prints `report` as text or JSON (per `output`) and returns its exit status.
pub fn emit(report: &Report, output: &OutputArgs, stdout: &mut dyn Write) -> ExitStatus {
    let text = if output.json {
        json::render(report, output.fail_on)
    } else {
        human::render(report, output.fail_on)
    };
    let _ = stdout.write_all(text.as_bytes());
    report.exit_status(output.fail_on)
}

/// Reports a run that could not complete: the message on stderr (and, with
/// `--json`, an error document on stdout); returns [`ExitStatus::Error`].
pub fn emit_error(
    command: Command,
    output: &OutputArgs,
    error: &dyn std::error::Error,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitStatus {
    let message = error.to_string();
    let _ = writeln!(
        stderr,
        "pod-identity-doctor {}: error: {message}",
        command.as_str()
    );
    if output.json {
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
