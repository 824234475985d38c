//! What every probe shares: a [`Probe`] in progress (findings, outcomes,
//! worst status) and the redaction and time helpers their evidence uses.

use std::sync::Arc;
use std::time::SystemTime;

use eks_pod_identity_provider::Env;

use crate::report::{Finding, ProbeResult, ProbeStatus, Report};

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

    /// Adds a finding; returns its index.
    pub fn finding(&mut self, f: Finding) -> usize {
        self.findings.push(f);
        self.findings.len() - 1
    }

    /// Records an outcome; the probe's status is the worst seen.
    pub fn outcome(&mut self, name: &str, status: ProbeStatus, detail: impl Into<String>) {
        self.outcomes.push(name.to_owned());
        if self
            .status
            .is_none_or(|s| how_worrying(status) > how_worrying(s))
        {
            self.status = Some(status);
        }
        let d = detail.into();
        if !d.is_empty() {
            self.details.push(d);
        }
    }

    /// Records an outcome that changes neither status nor detail.
    pub fn note(&mut self, name: &str) {
        self.outcomes.push(name.to_owned());
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
