//! The rule catalog: stable ids, default severities, titles and fixes.
//!
//! Rule ids never change meaning once released; retired ids are not reused.
//! Prefixes:
//!
//! | prefix      | subcommand | subject                                                    |
//! |-------------|------------|------------------------------------------------------------|
//! | `EPI-TF-`   | `lint`     | Terraform: launch templates, trust policies, associations  |
//! | `EPI-K8S-`  | `lint`     | Kubernetes workloads (YAML or `kubernetes_*` Terraform)     |
//! | `EPI-IMDS-` | `check`    | reserved: IMDS reachability probes (IPv4 and IPv6)          |
//! | `EPI-PI-`   | `check`    | reserved: Pod Identity env, token file and agent probes     |
//! | `EPI-ENV-`  | `check`    | reserved: credentials that shadow Pod Identity              |
//! | `EPI-ID-`   | `check`    | reserved: resolved identity versus the node role            |
//!
//! A runtime `check` adds its own `Rule` constants here (and to [`ALL`]) and
//! builds [`Finding`](crate::report::Finding)s with
//! [`Location::Probe`](crate::report::Location::Probe).

use serde::Serialize;

use crate::report::{Category, Severity};

/// A rule: what is checked, how bad a violation is by default, and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable id, e.g. `EPI-TF-003`.
    pub id: &'static str,
    /// Default severity of a finding.
    pub severity: Severity,
    /// Kind of problem.
    pub category: Category,
    /// One-line summary.
    pub title: &'static str,
    /// What to change.
    pub fix: &'static str,
}

/// `EPI-TF-001`: `aws_launch_template` without a `metadata_options` block.
pub const LT_METADATA_OPTIONS_MISSING: Rule = Rule {
    id: "EPI-TF-001",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "launch template has no metadata_options: IMDS settings fall back to AMI/account defaults",
    fix: "add metadata_options { http_endpoint = \"enabled\", http_tokens = \"required\", http_put_response_hop_limit = 1 }",
};

/// `EPI-TF-002`: `http_tokens` is not `"required"` (IMDSv1 open).
pub const LT_IMDSV1_ALLOWED: Rule = Rule {
    id: "EPI-TF-002",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title:
        "IMDSv1 is allowed: any pod can read the node role with a plain GET, whatever the hop limit",
    fix: "set http_tokens = \"required\" in metadata_options",
};

/// `EPI-TF-003`: `http_put_response_hop_limit` of 2 or more.
pub const LT_HOP_LIMIT_TOO_HIGH: Rule = Rule {
    id: "EPI-TF-003",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "IMDS hop limit >= 2: ordinary pods can obtain an IMDSv2 token and take the node role",
    fix: "set http_put_response_hop_limit = 1; the Pod Identity agent runs on the host network and does not need 2",
};

/// `EPI-TF-004`: `http_put_response_hop_limit` not set explicitly (or not a literal).
pub const LT_HOP_LIMIT_UNSET: Rule = Rule {
    id: "EPI-TF-004",
    severity: Severity::Medium,
    category: Category::NodeRoleExposure,
    title: "IMDS hop limit not set explicitly: the effective value depends on the AMI and node-group defaults",
    fix: "set http_put_response_hop_limit = 1 explicitly in metadata_options",
};

/// `EPI-TF-005`: `http_endpoint = "disabled"`.
pub const LT_IMDS_DISABLED: Rule = Rule {
    id: "EPI-TF-005",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title: "IMDS endpoint disabled: node components (bootstrap, VPC CNI, agent) need IMDS",
    fix: "set http_endpoint = \"enabled\" and keep pods off it with http_tokens = \"required\" and hop limit 1",
};

/// `EPI-TF-006`: `http_protocol_ipv6 = "enabled"`.
pub const LT_IMDS_IPV6_ENABLED: Rule = Rule {
    id: "EPI-TF-006",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS also answers on IPv6 ([fd00:ec2::254]): block and probe both address families",
    fix: "apply the same network policies to fd00:ec2::254 as to 169.254.169.254 and run `pod-identity-doctor check` (it probes both)",
};

/// `EPI-TF-010`: Pod Identity trust policy without `sts:TagSession`.
pub const TRUST_MISSING_TAG_SESSION: Rule = Rule {
    id: "EPI-TF-010",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity trust policy does not allow sts:TagSession: AssumeRoleForPodIdentity fails",
    fix: "allow both \"sts:AssumeRole\" and \"sts:TagSession\" for the pods.eks.amazonaws.com principal",
};

/// `EPI-TF-011`: Pod Identity trust policy without `sts:AssumeRole`.
pub const TRUST_MISSING_ASSUME_ROLE: Rule = Rule {
    id: "EPI-TF-011",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity trust policy does not allow sts:AssumeRole: AssumeRoleForPodIdentity fails",
    fix: "allow both \"sts:AssumeRole\" and \"sts:TagSession\" for the pods.eks.amazonaws.com principal",
};

/// `EPI-TF-012`: Pod Identity trust policy without `aws:SourceAccount`/`aws:SourceArn`.
pub const TRUST_NO_SOURCE_CONDITION: Rule = Rule {
    id: "EPI-TF-012",
    severity: Severity::Low,
    category: Category::Hardening,
    title: "Pod Identity trust policy has no aws:SourceAccount or aws:SourceArn condition",
    fix: "add condition StringEquals aws:SourceAccount = <your account id> (or ArnEquals aws:SourceArn = <cluster ARN>)",
};

/// `EPI-TF-013`: trust policy that lint could not evaluate.
pub const TRUST_NOT_ANALYZED: Rule = Rule {
    id: "EPI-TF-013",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "trust policy could not be analyzed statically",
    fix: "use jsonencode({...}), a JSON heredoc, or a data \"aws_iam_policy_document\" in the linted files",
};

/// `EPI-TF-020`: association without the `eks-pod-identity-agent` add-on.
pub const ASSOCIATION_WITHOUT_AGENT: Rule = Rule {
    id: "EPI-TF-020",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title: "pod identity association without an eks-pod-identity-agent add-on in the linted files",
    fix: "add resource \"aws_eks_addon\" with addon_name = \"eks-pod-identity-agent\" (and depends_on it from the association)",
};

/// `EPI-TF-021`: association missing required fields.
pub const ASSOCIATION_INCOMPLETE: Rule = Rule {
    id: "EPI-TF-021",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title: "pod identity association is incomplete",
    fix: "set cluster_name, namespace, service_account and role_arn on aws_eks_pod_identity_association",
};

/// `EPI-TF-022`: association whose role does not trust `pods.eks.amazonaws.com`.
pub const ASSOCIATION_ROLE_NOT_TRUSTED: Rule = Rule {
    id: "EPI-TF-022",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "associated role's trust policy does not name pods.eks.amazonaws.com",
    fix: "trust Service = \"pods.eks.amazonaws.com\" with sts:AssumeRole and sts:TagSession in the role's assume_role_policy",
};

/// `EPI-K8S-001`: workload on the host network.
pub const HOST_NETWORK: Rule = Rule {
    id: "EPI-K8S-001",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "workload uses hostNetwork: it reaches IMDS (the node role) whatever the hop limit",
    fix: "remove hostNetwork: true (or block 169.254.169.254 and fd00:ec2::254 for it); only node agents belong on the host network",
};

/// `EPI-K8S-002`: literal AWS keys in a container's environment.
pub const STATIC_AWS_KEYS: Rule = Rule {
    id: "EPI-K8S-002",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "static AWS keys in container env: they leak with the manifest and shadow Pod Identity",
    fix: "remove AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN and rotate the keys; use a pod identity association",
};

/// `EPI-K8S-003`: AWS keys injected from a Secret or ConfigMap.
pub const AWS_KEYS_FROM_REF: Rule = Rule {
    id: "EPI-K8S-003",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title:
        "AWS keys injected from a Secret/ConfigMap shadow Pod Identity in the SDK's default chain",
    fix: "remove the AWS_* key variables and use a pod identity association",
};

/// Every rule: Terraform rules first, then Kubernetes rules, each in id order.
pub const ALL: &[Rule] = &[
    LT_METADATA_OPTIONS_MISSING,
    LT_IMDSV1_ALLOWED,
    LT_HOP_LIMIT_TOO_HIGH,
    LT_HOP_LIMIT_UNSET,
    LT_IMDS_DISABLED,
    LT_IMDS_IPV6_ENABLED,
    TRUST_MISSING_TAG_SESSION,
    TRUST_MISSING_ASSUME_ROLE,
    TRUST_NO_SOURCE_CONDITION,
    TRUST_NOT_ANALYZED,
    ASSOCIATION_WITHOUT_AGENT,
    ASSOCIATION_INCOMPLETE,
    ASSOCIATION_ROLE_NOT_TRUSTED,
    HOST_NETWORK,
    STATIC_AWS_KEYS,
    AWS_KEYS_FROM_REF,
];

/// Looks a rule up by id (case-insensitive).
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let ids: Vec<&str> = ALL.iter().map(|r| r.id).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ids.len(), unique.len());
        for id in ids {
            assert!(id.starts_with("EPI-"), "{id}");
        }
        assert_eq!(by_id("epi-tf-003"), Some(&LT_HOP_LIMIT_TOO_HIGH));
    }
}
