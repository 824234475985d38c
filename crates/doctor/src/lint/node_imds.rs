//! Judging the effective IMDS settings of EKS nodes, wherever they come from:
//! a launch template, a node-group module's inputs and defaults, the launch
//! template EKS creates for a node group, or a Karpenter `EC2NodeClass`.
//!
//! Every source reduces to the same question: what `http_tokens` and hop limit
//! will the nodes get, and where does each value come from? A value that could
//! not be evaluated is reported at medium ("cannot check"), never as safe.

use super::eval::{Tv, Val};
use crate::report::{Finding, Location, Report, Severity};
use crate::rules::{self, Rule};

/// One IMDS setting as seen by the lint.
#[derive(Debug, Clone)]
pub(crate) enum Setting {
    /// Set (or defaulted by a module) to this value, possibly unknown.
    Set(Tv),
    /// Not set anywhere: the evidence to print, and where to point.
    Missing { evidence: String, at: Location },
    /// Left to a default the lint does not know (e.g. a module of unknown version).
    Undetermined { evidence: String, at: Location },
}

/// The IMDS settings of one group of nodes.
#[derive(Debug, Clone)]
pub(crate) struct NodeImds {
    /// What the nodes are (`aws_launch_template.x`, `module.eks node group "a"`).
    pub(crate) subject: String,
    pub(crate) tokens: Setting,
    pub(crate) hop: Setting,
    pub(crate) endpoint: Option<Tv>,
    pub(crate) ipv6: Option<Tv>,
    /// Severities above this are lowered to it (launch templates that are not EKS nodes).
    pub(crate) cap: Severity,
    /// Appended to every evidence (why the severity is capped).
    pub(crate) note: String,
    /// Rule names used for the findings (Terraform or Kubernetes ids).
    pub(crate) rules: Rules,
}

/// The rule ids to report each problem under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) imdsv1: &'static Rule,
    pub(crate) hop_high: &'static Rule,
    pub(crate) hop_unset: &'static Rule,
    pub(crate) undetermined: &'static Rule,
}

/// The Terraform rules (`EPI-TF-002`..`EPI-TF-004`).
pub(crate) const TF_RULES: Rules = Rules {
    imdsv1: &rules::LT_IMDSV1_ALLOWED,
    hop_high: &rules::LT_HOP_LIMIT_TOO_HIGH,
    hop_unset: &rules::LT_HOP_LIMIT_UNSET,
    undetermined: &rules::MODULE_NODE_IMDS,
};

/// The manifest rules (`EPI-K8S-010`..`EPI-K8S-012`).
pub(crate) const K8S_RULES: Rules = Rules {
    imdsv1: &rules::NODECLASS_IMDSV1_ALLOWED,
    hop_high: &rules::NODECLASS_HOP_LIMIT_TOO_HIGH,
    hop_unset: &rules::NODECLASS_NOT_CHECKED,
    undetermined: &rules::NODECLASS_NOT_CHECKED,
};

/// The name a setting is shown under in evidence.
fn shown(value: &Tv) -> String {
    match &value.val {
        Val::Unknown(_) => format!("{} cannot be evaluated statically", value.show()),
        _ => value.show(),
    }
}

impl NodeImds {
    fn push(&self, report: &mut Report, finding: Finding) {
        let severity = finding.severity.min(self.cap);
        let mut finding = finding.with_severity(severity);
        finding.evidence.push_str(&self.note);
        report.push(finding);
    }

    /// Reports every problem of these settings.
    pub(crate) fn judge(&self, report: &mut Report) {
        let s = &self.subject;
        if let (
            Setting::Undetermined { evidence, at },
            Setting::Undetermined { evidence: e2, .. },
        ) = (&self.tokens, &self.hop)
        {
            if evidence == e2 {
                self.push(
                    report,
                    Finding::new(
                        self.rules.undetermined,
                        format!("{s}: http_tokens and http_put_response_hop_limit: {evidence}"),
                        at.clone(),
                    ),
                );
                self.judge_endpoint(report);
                return;
            }
        }
        match &self.tokens {
            Setting::Undetermined { evidence, at } => self.push(
                report,
                Finding::new(
                    self.rules.undetermined,
                    format!("{s}: http_tokens: {evidence}"),
                    at.clone(),
                ),
            ),
            Setting::Missing { evidence, at } => self.push(
                report,
                Finding::new(self.rules.imdsv1, format!("{s}: {evidence}"), at.clone()),
            ),
            Setting::Set(v) => match &v.val {
                Val::Str(t) if t == "required" => {}
                Val::Unknown(_) => self.push(
                    report,
                    Finding::new(
                        self.rules.imdsv1,
                        format!("{s}: http_tokens = {}{}", shown(v), v.provenance()),
                        v.at.clone(),
                    )
                    .with_severity(Severity::Medium),
                ),
                _ => self.push(
                    report,
                    Finding::new(
                        self.rules.imdsv1,
                        format!("{s}: http_tokens = {}{}", v.show(), v.provenance()),
                        v.at.clone(),
                    ),
                ),
            },
        }
        match &self.hop {
            Setting::Undetermined { evidence, at } => self.push(
                report,
                Finding::new(
                    self.rules.undetermined,
                    format!("{s}: http_put_response_hop_limit: {evidence}"),
                    at.clone(),
                ),
            ),
            Setting::Missing { evidence, at } => self.push(
                report,
                Finding::new(self.rules.hop_unset, format!("{s}: {evidence}"), at.clone()),
            ),
            Setting::Set(v) => match v.as_i64() {
                Some(1) => {}
                Some(n) if (2..=64).contains(&n) => self.push(
                    report,
                    Finding::new(
                        self.rules.hop_high,
                        format!("{s}: http_put_response_hop_limit = {n}{}", v.provenance()),
                        v.at.clone(),
                    )
                    .with_title(format!(
                        "IMDS hop limit {n}: ordinary pods can obtain an IMDSv2 token and take the node role"
                    )),
                ),
                Some(n) => self.push(
                    report,
                    Finding::new(
                        self.rules.hop_unset,
                        format!("{s}: http_put_response_hop_limit = {n} is not a valid hop limit (1-64){}", v.provenance()),
                        v.at.clone(),
                    ),
                ),
                None => self.push(
                    report,
                    Finding::new(
                        self.rules.hop_unset,
                        format!("{s}: http_put_response_hop_limit = {}{}", shown(v), v.provenance()),
                        v.at.clone(),
                    ),
                ),
            },
        }
        self.judge_endpoint(report);
    }

    fn judge_endpoint(&self, report: &mut Report) {
        let s = &self.subject;
        if let Some(v) = &self.endpoint {
            if v.as_str() == Some("disabled") {
                self.push(
                    report,
                    Finding::new(
                        &rules::LT_IMDS_DISABLED,
                        format!("{s}: http_endpoint = \"disabled\"{}", v.provenance()),
                        v.at.clone(),
                    ),
                );
            }
        }
        if let Some(v) = &self.ipv6 {
            if v.as_str() == Some("enabled") {
                self.push(
                    report,
                    Finding::new(
                        &rules::LT_IMDS_IPV6_ENABLED,
                        format!("{s}: http_protocol_ipv6 = \"enabled\"{}", v.provenance()),
                        v.at.clone(),
                    ),
                );
            }
        }
    }
}

/// A module default as a value: written at the module call, reached through the table.
pub(crate) fn module_default(val: Val, at: &Location, source: &str) -> Tv {
    let mut tv = Tv::new(val, at.clone());
    tv.via.push(format!("module default, {source}"));
    tv
}
