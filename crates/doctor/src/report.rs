//! The report model shared by every `pod-identity-doctor` subcommand.
//!
//! A [`Report`] is a list of [`Finding`]s plus the list of things that were
//! examined. Each finding carries a stable rule id (see [`crate::rules`]), a
//! [`Severity`], a [`Category`], a short title, the evidence that triggered it,
//! the fix, and a [`Location`]: a `file:line` for the static lint, a probe name
//! (and target) for runtime checks.
//!
//! The report does not know the failure threshold: the caller picks one
//! (`--fail-on`, default [`Severity::High`]) and asks for the [`Verdict`] and the
//! [`ExitStatus`] at that threshold, so the same report can be judged by
//! different policies.
//!
//! ```
//! use eks_pod_identity_doctor::report::{Command, ExitStatus, Finding, Location, Report, Severity, Verdict};
//! use eks_pod_identity_doctor::rules;
//!
//! let mut report = Report::new(Command::Lint);
//! report.add_scanned("main.tf");
//! report.push(Finding::new(
//!     &rules::LT_HOP_LIMIT_TOO_HIGH,
//!     "http_put_response_hop_limit = 2",
//!     Location::file("main.tf", 60),
//! ));
//! assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
//! assert_eq!(report.exit_status(Severity::High), ExitStatus::Findings);
//! assert_eq!(report.exit_status(Severity::Critical), ExitStatus::Clean);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rules::Rule;
pub use crate::severity::{Category, ParseSeverityError, Severity};

/// Where a finding was observed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Location {
    /// A line in a linted file (1-based).
    File {
        /// The path as given on the command line (joined with the walked sub-path).
        path: String,
        /// 1-based line number.
        line: u32,
    },
    /// A runtime probe (for `check`): the probe's name and what it talked to.
    Probe {
        /// Stable probe name, e.g. `imds-ipv4`; findings are grouped by it.
        probe: String,
        /// What the probe talked to, e.g. `http://169.254.169.254`, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
}

impl Location {
    /// A `path:line` location.
    pub fn file(path: impl Into<String>, line: u32) -> Self {
        Location::File {
            path: path.into(),
            line,
        }
    }

    /// A probe location.
    pub fn probe(probe: impl Into<String>, target: Option<String>) -> Self {
        Location::Probe {
            probe: probe.into(),
            target,
        }
    }

    /// The key findings are grouped by in human output: the file path or the probe name.
    pub fn group(&self) -> &str {
        match self {
            Location::File { path, .. } => path,
            Location::Probe { probe, .. } => probe,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line } => write!(f, "{path}:{line}"),
            Location::Probe {
                probe,
                target: Some(target),
            } => write!(f, "{probe} ({target})"),
            Location::Probe {
                probe,
                target: None,
            } => f.write_str(probe),
        }
    }
}

/// One problem (or observation), tied to a rule of [`crate::rules`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `EPI-TF-003`.
    pub rule_id: String,
    /// Severity of this occurrence (usually the rule's default).
    pub severity: Severity,
    /// Kind of problem.
    pub category: Category,
    /// One-line summary.
    pub title: String,
    /// What was seen (never a secret value).
    pub evidence: String,
    /// What to change.
    pub fix: String,
    /// Where it was seen.
    pub location: Location,
}

impl Finding {
    /// A finding for `rule` with the rule's default severity, category, title and fix.
    pub fn new(rule: &Rule, evidence: impl Into<String>, location: Location) -> Self {
        Finding {
            rule_id: rule.id.to_owned(),
            severity: rule.severity,
            category: rule.category,
            title: rule.title.to_owned(),
            evidence: evidence.into(),
            fix: rule.fix.to_owned(),
            location,
        }
    }

    /// Overrides the severity (e.g. a lower one when a value cannot be evaluated).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Overrides the title (for a more specific wording of the rule).
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Overrides the fix.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

/// Which subcommand produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Command {
    /// Static lint of Terraform and Kubernetes files.
    Lint,
    /// Runtime probes from inside a pod or on a host.
    Check,
}

impl Command {
    /// The subcommand name (`"lint"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Lint => "lint",
            Command::Check => "check",
        }
    }
}

/// Summary judgement of a report at a failure threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No finding at or above the threshold.
    Protected,
    /// At least one [`Category::NodeRoleExposure`] finding at or above the threshold.
    LeaksNodeRole,
    /// Findings at or above the threshold, none of them a node-role exposure.
    Misconfigured,
}

impl Verdict {
    /// The banner shown in human output: `PROTECTED`, `LEAKS NODE ROLE`, `MISCONFIGURED`.
    pub fn banner(self) -> &'static str {
        match self {
            Verdict::Protected => "PROTECTED",
            Verdict::LeaksNodeRole => "LEAKS NODE ROLE",
            Verdict::Misconfigured => "MISCONFIGURED",
        }
    }
}

/// Process exit status of `pod-identity-doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// `0`: no finding at or above `--fail-on`.
    Clean,
    /// `1`: at least one finding at or above `--fail-on`.
    Findings,
    /// `2`: the tool could not run (bad arguments, missing path, unparseable file, ...).
    Error,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::Findings => 1,
            ExitStatus::Error => 2,
        }
    }
}

/// How a runtime probe ended, judged from the pod's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeStatus {
    /// The probe shows a barrier that keeps the node role away (blocked, hop limit 1, disabled...).
    Protected,
    /// The probe reached something it must not (an IMDS token, the node role, its credentials).
    Leak,
    /// What the probe checked works as intended (e.g. the Pod Identity agent answers).
    Ok,
    /// What the probe checked is broken or shadowed.
    Misconfigured,
    /// The probe could not tell (e.g. no downward-API env for the host-network hint).
    Unknown,
    /// The probe was not run (switched off by a flag or not applicable).
    Skipped,
}

impl ProbeStatus {
    /// The uppercase label used in human output (`PROTECTED`, `LEAK`, ...).
    pub fn label(self) -> &'static str {
        match self {
            ProbeStatus::Protected => "PROTECTED",
            ProbeStatus::Leak => "LEAK",
            ProbeStatus::Ok => "OK",
            ProbeStatus::Misconfigured => "MISCONFIGURED",
            ProbeStatus::Unknown => "UNKNOWN",
            ProbeStatus::Skipped => "SKIPPED",
        }
    }
}

/// What one runtime probe of `check` observed, whether or not it produced a finding.
///
/// Findings only say what is wrong (or worth noting); probe results also make
/// the *protected* outcomes visible: "the token PUT went unanswered" is the
/// evidence that hop limit 1 works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Stable probe name, e.g. `imds-ipv4` (same as the findings' `location.probe`).
    pub probe: String,
    /// What the probe talked to, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Overall judgement of this probe.
    pub status: ProbeStatus,
    /// Stable outcome names in the order observed, e.g. `["token_obtained", "role_readable"]`.
    pub outcomes: Vec<String>,
    /// One human-readable line (never a secret).
    pub detail: String,
}

impl ProbeResult {
    /// A probe result with one outcome.
    pub fn new(
        probe: impl Into<String>,
        target: Option<String>,
        status: ProbeStatus,
        outcome: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        ProbeResult {
            probe: probe.into(),
            target,
            status,
            outcomes: vec![outcome.into()],
            detail: detail.into(),
        }
    }
}

/// The result of one run: findings and what was examined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    command: Command,
    scanned: Vec<String>,
    warnings: Vec<String>,
    findings: Vec<Finding>,
    probes: Vec<ProbeResult>,
}

impl Report {
    /// An empty report for `command`.
    pub fn new(command: Command) -> Self {
        Report {
            command,
            scanned: Vec::new(),
            warnings: Vec::new(),
            findings: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// Records the result of a runtime probe (`check` only; `lint` has none).
    pub fn add_probe(&mut self, probe: ProbeResult) {
        self.probes.push(probe);
    }

    /// Probe results, in the order the probes are listed (not completion order).
    pub fn probes(&self) -> &[ProbeResult] {
        &self.probes
    }

    /// The subcommand that produced this report.
    pub fn command(&self) -> Command {
        self.command
    }

    /// Records something that was examined (a file for lint, a probe for check).
    pub fn add_scanned(&mut self, item: impl Into<String>) {
        self.scanned.push(item.into());
    }

    /// What was examined, in order.
    pub fn scanned(&self) -> &[String] {
        &self.scanned
    }

    /// Records something that could not be examined (e.g. a file skipped because
    /// it does not parse), with the reason. Warnings do not change the verdict.
    pub fn add_warning(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// What could not be examined, and why, in order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Drops the findings `keep` rejects (suppressions).
    pub fn retain(&mut self, keep: impl FnMut(&Finding) -> bool) {
        self.findings.retain(keep);
    }

    /// Adds a finding.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// All findings, in insertion order (call [`Report::sort`] for a stable order).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Sorts findings by location, then rule id, then evidence, so output is deterministic.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.location, &a.rule_id, &a.evidence).cmp(&(&b.location, &b.rule_id, &b.evidence))
        });
    }

    /// Findings whose severity is at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity >= threshold)
    }

    /// The highest severity present, if any finding exists.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Number of findings of exactly `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The verdict when findings at or above `fail_on` count as failures.
    pub fn verdict(&self, fail_on: Severity) -> Verdict {
        let mut verdict = Verdict::Protected;
        for finding in self.at_or_above(fail_on) {
            if finding.category == Category::NodeRoleExposure {
                return Verdict::LeaksNodeRole;
            }
            verdict = Verdict::Misconfigured;
        }
        verdict
    }

    /// [`ExitStatus::Findings`] if any finding is at or above `fail_on`, else [`ExitStatus::Clean`].
    pub fn exit_status(&self, fail_on: Severity) -> ExitStatus {
        if self.at_or_above(fail_on).next().is_some() {
            ExitStatus::Findings
        } else {
            ExitStatus::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;

    #[test]
    fn verdict_follows_threshold_and_category() {
        let mut report = Report::new(Command::Lint);
        assert_eq!(report.verdict(Severity::Info), Verdict::Protected);
        report.push(Finding::new(
            &rules::TRUST_MISSING_TAG_SESSION,
            "x",
            Location::file("a.tf", 1),
        ));
        assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);
        report.push(Finding::new(
            &rules::LT_HOP_LIMIT_UNSET,
            "x",
            Location::file("a.tf", 2),
        ));
        assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);
        assert_eq!(report.verdict(Severity::Medium), Verdict::LeaksNodeRole);
        assert_eq!(report.verdict(Severity::Critical), Verdict::Protected);
        assert_eq!(report.max_severity(), Some(Severity::High));
    }
}
