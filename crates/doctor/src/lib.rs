//! Node-role leakage detector for Amazon EKS Pod Identity.
//!
//! EKS Pod Identity gives each pod the IAM role of its service account. A pod
//! that can still reach the instance metadata service (IMDS) can take the
//! *node's* role instead, which defeats the point. This crate finds the
//! configurations that allow it, and the ones that break Pod Identity.
//!
//! - [`check`]: runtime probes from inside a pod — IMDS over IPv4 and IPv6 with
//!   every outcome told apart (refused, dropped, hop limit 1, token, role,
//!   credentials, IMDSv1, disabled, no instance profile), Pod Identity env,
//!   token and agent, credentials that shadow Pod Identity, the identity our
//!   chain resolves versus the node role, and a host-network hint.
//! - [`lint`]: a static lint of Terraform (`.tf`) and Kubernetes YAML: launch
//!   template IMDS settings (`http_tokens`, `http_put_response_hop_limit`, ...),
//!   Pod Identity trust policies (`sts:AssumeRole` **and** `sts:TagSession`),
//!   the agent add-on and associations, `hostNetwork` workloads and static keys.
//! - [`report`]: the model every subcommand produces — a [`Report`] of
//!   [`Finding`]s with stable rule ids ([`rules`]), [`Severity`], location,
//!   evidence and fix; the [`Verdict`] and [`ExitStatus`] at a `--fail-on` threshold.
//! - [`output`]: human-readable text and versioned JSON ([`output::json`] documents the schema).
//! - [`cli`]: the `pod-identity-doctor` command line.
//!
//! ```
//! use eks_pod_identity_doctor::lint::lint_source;
//! use eks_pod_identity_doctor::report::{Severity, Verdict};
//!
//! let tf = r#"
//! resource "aws_iam_role" "app" {
//!   assume_role_policy = jsonencode({
//!     Version   = "2012-10-17"
//!     Statement = [{
//!       Effect    = "Allow"
//!       Principal = { Service = "pods.eks.amazonaws.com" }
//!       Action    = "sts:AssumeRole"
//!     }]
//!   })
//! }
//! "#;
//! let report = lint_source("iam.tf", tf).unwrap();
//! let ids: Vec<&str> = report.findings().iter().map(|f| f.rule_id.as_str()).collect();
//! assert_eq!(ids, ["EPI-TF-010", "EPI-TF-012"]); // no sts:TagSession; no aws:SourceAccount
//! assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);
//! ```

pub mod check;
pub mod cli;
pub mod lint;
pub mod output;
pub mod report;
pub mod rules;
mod severity;

pub use report::{
    Category, ExitStatus, Finding, Location, ProbeResult, ProbeStatus, Report, Severity, Verdict,
};
