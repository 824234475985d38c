//! What every probe shares: the [`Outcome`] contract of the probes' outcome
//! enums, the [`Observation`] a pure `classify` step returns, a [`Probe`] in
//! progress (findings, outcomes, worst status), and the redaction and time
//! helpers their evidence uses.
//!
//! Each probe is a unit: I/O steps that gather raw results, then a pure
//! `classify(..)` that turns them into [`Observation`]s of the probe's own
//! outcome enum. The enum alone decides each outcome's rule and status (an
//! exhaustive `match`, so the compiler checks the whole matrix); an
//! observation only adds what was seen (evidence, detail) and, where the
//! context calls for it, a lower severity or a more specific title.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use eks_pod_identity_provider::Env;

use crate::report::{Finding, Location, ProbeResult, ProbeStatus, Report, Severity};
use crate::rules::Rule;

/// An [`Env`] shared behind an `Arc` (the provider wants an owned `impl Env`).
#[derive(Debug, Clone)]
pub(crate) struct SharedEnv(pub Arc<dyn Env>);

impl Env for SharedEnv {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key)
    }
}

/// First four characters and an ellipsis: enough to tell `AKIA` (long-term)
/// from `ASIA` (temporary) without printing the key id.
pub(crate) fn key_id_hint(s: &str) -> String {
    let p: String = s.chars().take(4).collect();
    format!("{p}…")
}

/// RFC 3339 UTC, seconds precision.
pub(crate) fn fmt_time(t: SystemTime) -> String {
    let dt = ::time::OffsetDateTime::from(t);
    let dt = dt.replace_nanosecond(0).unwrap_or(dt);
    dt.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| dt.to_string())
}

/// One outcome a probe can observe: its stable name (the JSON and human
/// output string), the rule of its finding (if it raises one) and the probe
/// status it stands for.
pub(crate) trait Outcome: Copy + fmt::Debug {
    /// The stable outcome name, e.g. `token_put_unanswered`.
    fn name(self) -> &'static str;
    /// The rule of the finding this outcome raises; `None` raises none.
    fn rule(self) -> Option<&'static Rule>;
    /// The probe status this outcome stands for.
    fn status(self) -> ProbeStatus;
}

/// An outcome and what was seen: the result of a probe's pure `classify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation<O> {
    /// What happened.
    pub outcome: O,
    /// The finding's evidence (unused when the outcome raises no finding).
    pub evidence: String,
    /// The probe result's detail line (`""` adds none).
    pub detail: String,
    /// A severity other than the rule's default.
    pub severity: Option<Severity>,
    /// A more specific title than the rule's.
    pub title: Option<&'static str>,
    /// The finding's target when it differs from the probe's (a token file,
    /// an endpoint the env names).
    pub target: Option<String>,
}

impl<O: Outcome> Observation<O> {
    /// An observation whose evidence and detail differ.
    pub fn new(outcome: O, evidence: impl Into<String>, detail: impl Into<String>) -> Self {
        Observation {
            outcome,
            evidence: evidence.into(),
            detail: detail.into(),
            severity: None,
            title: None,
            target: None,
        }
    }

    /// An observation whose evidence is its detail.
    pub fn same(outcome: O, text: impl Into<String>) -> Self {
        let text = text.into();
        Observation::new(outcome, text.clone(), text)
    }

    /// Overrides the finding's severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// Overrides the finding's title.
    pub fn with_title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }

    /// Sets the finding's target (the probe's is used otherwise).
    pub fn with_target(mut self, target: Option<String>) -> Self {
        self.target = target;
        self
    }
}

/// A probe in progress: its findings, outcomes and overall status.
#[derive(Debug)]
pub(crate) struct Probe {
    pub name: &'static str,
    pub target: Option<String>,
    pub findings: Vec<Finding>,
    pub outcomes: Vec<String>,
    status: Option<ProbeStatus>,
    details: Vec<String>,
}

/// How much a status should worry the reader: a probe reports the most
/// worrying of its outcomes (a leak outweighs everything else).
fn how_worrying(s: ProbeStatus) -> u8 {
    match s {
        ProbeStatus::Leak => 5,
        ProbeStatus::Misconfigured => 4,
        ProbeStatus::Unknown => 3,
        ProbeStatus::Protected => 2,
        ProbeStatus::Ok => 1,
        _ => 0,
    }
}

impl Probe {
    pub fn new(name: &'static str, target: Option<String>) -> Self {
        Probe {
            name,
            target,
            findings: Vec::new(),
            outcomes: Vec::new(),
            status: None,
            details: Vec::new(),
        }
    }

    /// Records an observation: its finding (when the outcome has a rule), its
    /// outcome name and detail; the probe's status is the worst seen.
    pub fn record<O: Outcome>(&mut self, obs: Observation<O>) {
        if let Some(rule) = obs.outcome.rule() {
            let target = obs.target.or_else(|| self.target.clone());
            let mut f = Finding::new(rule, obs.evidence, Location::probe(self.name, target));
            if let Some(severity) = obs.severity {
                f = f.with_severity(severity);
            }
            if let Some(title) = obs.title {
                f = f.with_title(title);
            }
            self.findings.push(f);
        }
        self.outcomes.push(obs.outcome.name().to_owned());
        let status = obs.outcome.status();
        if self
            .status
            .is_none_or(|s| how_worrying(status) > how_worrying(s))
        {
            self.status = Some(status);
        }
        if !obs.detail.is_empty() {
            self.details.push(obs.detail);
        }
    }

    /// Records every observation, in order.
    pub fn record_all<O: Outcome>(&mut self, all: impl IntoIterator<Item = Observation<O>>) {
        for obs in all {
            self.record(obs);
        }
    }

    pub(crate) fn finish(self, report: &mut Report) {
        report.add_scanned(self.name);
        for f in self.findings {
            report.push(f);
        }
        report.add_probe(ProbeResult {
            probe: self.name.to_owned(),
            target: self.target,
            status: self.status.unwrap_or(ProbeStatus::Unknown),
            outcomes: self.outcomes,
            detail: self.details.join("; "),
        });
    }
}

/// A probe still running when the whole check's budget ran out (something
/// unbounded, such as a DNS lookup, held it): its own outcome, not a guess.
/// `outcome` is the probe's `TimedOut`; the evidence of its finding (if it
/// raises one) names the budget.
pub(crate) fn timed_out<O: Outcome>(
    name: &'static str,
    target: Option<String>,
    outcome: O,
    budget: Duration,
) -> Probe {
    let mut p = Probe::new(name, target);
    p.record(Observation::new(
        outcome,
        format!(
            "the probe did not finish within the check's {} ms",
            budget.as_millis()
        ),
        format!("did not finish within {} ms", budget.as_millis()),
    ));
    p
}

/// A probe that was not run: its `Skipped` outcome and why.
pub(crate) fn skipped<O: Outcome>(
    name: &'static str,
    target: Option<String>,
    outcome: O,
    why: &str,
) -> Probe {
    let mut p = Probe::new(name, target);
    p.record(Observation::same(outcome, why));
    p
}

/// Asserts each outcome's name (the JSON string), rule id and status.
#[cfg(test)]
pub(crate) fn assert_matrix<O: Outcome>(table: &[(O, &str, Option<&str>, ProbeStatus)]) {
    for &(outcome, name, rule, status) in table {
        assert_eq!(outcome.name(), name, "{outcome:?}");
        assert_eq!(outcome.rule().map(|r| r.id), rule, "{outcome:?}");
        assert_eq!(outcome.status(), status, "{outcome:?}");
    }
}
