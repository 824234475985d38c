//! JSON output (`--json`), schema version [`SCHEMA_VERSION`].
//!
//! A run prints exactly one JSON object on stdout. Successful run (exit 0 or 1):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "tool": { "name": "pod-identity-doctor", "version": "0.1.0" },
//!   "command": "lint",
//!   "fail_on": "high",
//!   "verdict": "leaks_node_role",
//!   "exit_code": 1,
//!   "summary": {
//!     "total": 3,
//!     "at_or_above_fail_on": 2,
//!     "by_severity": { "critical": 0, "high": 2, "medium": 0, "low": 1, "info": 0 }
//!   },
//!   "scanned": ["main.tf"],
//!   "findings": [
//!     {
//!       "rule_id": "EPI-TF-003",
//!       "severity": "high",
//!       "category": "node_role_exposure",
//!       "title": "IMDS hop limit 2: ordinary pods can obtain an IMDSv2 token and take the node role",
//!       "evidence": "aws_launch_template.eks_nodes: http_put_response_hop_limit = 2",
//!       "fix": "set http_put_response_hop_limit = 1; ...",
//!       "location": { "kind": "file", "path": "main.tf", "line": 60 }
//!     }
//!   ]
//! }
//! ```
//!
//! Run that could not complete (exit 2):
//!
//! ```json
//! { "schema_version": 1, "tool": {...}, "command": "lint", "exit_code": 2,
//!   "error": { "message": "main.tf:3:5: invalid HCL: ..." } }
//! ```
//!
//! Fields:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema_version` | integer | `1`; bumped on any incompatible change (adding fields is compatible) |
//! | `tool.name`, `tool.version` | string | producer |
//! | `command` | `"lint"` \| `"check"` | subcommand |
//! | `fail_on` | severity | threshold used for `verdict` and `exit_code` |
//! | `verdict` | `"protected"` \| `"leaks_node_role"` \| `"misconfigured"` | see [`Verdict`] |
//! | `exit_code` | `0` \| `1` \| `2` | the process exit code |
//! | `summary.total` | integer | number of findings |
//! | `summary.at_or_above_fail_on` | integer | findings that fail the run |
//! | `summary.by_severity` | object | count per severity (all five keys present) |
//! | `scanned` | array of string | files linted (or probe names run) |
//! | `warnings` | array of string | files skipped and why (absent when none); a skipped file does not change the verdict |
//! | `findings[]` | object | sorted by location, then rule id |
//! | `findings[].rule_id` | string | stable id, see [`crate::rules`] |
//! | `findings[].severity` | `"info"` \| `"low"` \| `"medium"` \| `"high"` \| `"critical"` | |
//! | `findings[].category` | `"node_role_exposure"` \| `"misconfiguration"` \| `"hardening"` | |
//! | `findings[].title`, `.evidence`, `.fix` | string | evidence never holds a secret value |
//! | `findings[].location` | object | `{"kind":"file","path","line"}` or `{"kind":"probe","probe","target"?}` |
//! | `probes[]` | object | `check` only (absent for `lint`): one entry per probe, in a fixed order, protected outcomes included |
//! | `probes[].probe` | string | `imds-ipv4`, `imds-ipv6`, `pod-identity-env`, `pod-identity-token`, `pod-identity-agent`, `env-shadowing`, `identity`, `host-network` |
//! | `probes[].target` | string | what the probe talked to (optional) |
//! | `probes[].status` | `"protected"` \| `"leak"` \| `"ok"` \| `"misconfigured"` \| `"unknown"` \| `"skipped"` | see [`ProbeStatus`](crate::report::ProbeStatus) |
//! | `probes[].outcomes` | array of string | stable outcome names in the order observed (below) |
//! | `probes[].detail` | string | one human-readable line, never a secret |
//! | `error.message` | string | only when `exit_code` is 2: the error and each of its causes, on one line, separated by `: ` |
//!
//! `probes[].outcomes` names (schema version 1; new names may be added):
//!
//! | probe | outcomes |
//! |---|---|
//! | `imds-ipv4`, `imds-ipv6` | `connect_refused`, `connect_unreachable`, `connect_timeout`, `token_put_unanswered`, `disabled`, `token_obtained`, `role_readable`, `credentials_readable`, `no_instance_profile`, `imdsv1_open`, `imdsv1_closed`, `unexpected`, `skipped`, `timeout` |
//! | `pod-identity-env` | `configured`, `not_configured`, `endpoint_invalid` |
//! | `pod-identity-token` | `token_valid`, `token_not_set`, `token_unreadable`, `token_malformed`, `token_wrong_audience`, `token_expired`, `skipped` |
//! | `pod-identity-agent` | `agent_ok`, `agent_error`, `agent_unreachable`, `agent_no_answer`, `skipped` |
//! | `env-shadowing` | `none`, `static_keys`, `profile_set`, `shared_file_credentials`, `irsa_vars` |
//! | `identity` | `node_role`, `own_role`, `unverified`, `unresolved` |
//! | `host-network` | `host_network`, `pod_network`, `unknown` |
//!
//! A `check` document adds `probes` after `findings`; for example:
//!
//! ```json
//! "probes": [
//!   { "probe": "imds-ipv4", "target": "http://169.254.169.254", "status": "protected",
//!     "outcomes": ["token_put_unanswered", "imdsv1_closed"],
//!     "detail": "connected, token PUT unanswered (hop limit 1)" }
//! ]
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::report::{Command, ExitStatus, Finding, ProbeResult, Report, Severity, Verdict};

/// Version of the JSON document described in this module.
pub const SCHEMA_VERSION: u32 = 1;

/// Name reported in `tool.name`.
pub const TOOL_NAME: &str = "pod-identity-doctor";

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

const TOOL: Tool = Tool {
    name: TOOL_NAME,
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Serialize)]
struct BySeverity {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    at_or_above_fail_on: usize,
    by_severity: BySeverity,
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: Tool,
    command: Command,
    fail_on: Severity,
    verdict: Verdict,
    exit_code: i32,
    summary: Summary,
    scanned: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    probes: &'a [ProbeResult],
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    schema_version: u32,
    tool: Tool,
    command: Command,
    exit_code: i32,
    error: ErrorMessage<'a>,
}

fn document(report: &Report, fail_on: Severity) -> Document<'_> {
    Document {
        schema_version: SCHEMA_VERSION,
        tool: TOOL,
        command: report.command(),
        fail_on,
        verdict: report.verdict(fail_on),
        exit_code: report.exit_status(fail_on).code(),
        summary: Summary {
            total: report.findings().len(),
            at_or_above_fail_on: report.at_or_above(fail_on).count(),
            by_severity: BySeverity {
                critical: report.count(Severity::Critical),
                high: report.count(Severity::High),
                medium: report.count(Severity::Medium),
                low: report.count(Severity::Low),
                info: report.count(Severity::Info),
            },
        },
        scanned: report.scanned(),
        warnings: report.warnings(),
        findings: report.findings(),
        probes: report.probes(),
    }
}

/// The JSON document of `report` judged at `fail_on`, as a value.
pub fn to_value(report: &Report, fail_on: Severity) -> Value {
    serde_json::to_value(document(report, fail_on)).unwrap_or(Value::Null)
}

/// The document of `report` judged at `fail_on`, pretty-printed with fields in
/// the documented order and a trailing newline.
pub fn render(report: &Report, fail_on: Severity) -> String {
    pretty(&document(report, fail_on))
}

/// The document of a run that could not complete (exit code 2), pretty-printed.
pub fn render_error(command: Command, message: &str) -> String {
    pretty(&ErrorDocument {
        schema_version: SCHEMA_VERSION,
        tool: TOOL,
        command,
        exit_code: ExitStatus::Error.code(),
        error: ErrorMessage { message },
    })
}

fn pretty(doc: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_default();
    s.push('\n');
    s
}
