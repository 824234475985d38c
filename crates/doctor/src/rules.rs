//! The rule catalog: stable ids, default severities, titles and fixes.
//!
//! Rule ids never change meaning once released; retired ids are not reused.
//! Prefixes:
//!
//! | prefix      | subcommand | subject                                                    |
//! |-------------|------------|------------------------------------------------------------|
//! | `EPI-TF-`   | `lint`     | Terraform: node IMDS (launch templates, node groups, node-group modules, account defaults), trust policies, associations |
//! | `EPI-K8S-`  | `lint`     | Kubernetes workloads (manifests, `kubernetes_*`/`kubectl_manifest`/`helm_release`); Karpenter and eksctl node IMDS |
//! | `EPI-IMDS-` | `check`    | IMDS reachability probes (IPv4 and IPv6)                    |
//! | `EPI-PI-`   | `check`    | Pod Identity env, token file and agent probes               |
//! | `EPI-ENV-`  | `check`    | credentials that shadow Pod Identity                        |
//! | `EPI-ID-`   | `check`    | resolved identity versus the node role; host network hint   |
//!
//! Runtime `check` findings use [`Location::Probe`](crate::report::Location::Probe).
//! Every probe outcome has its own rule, the *protected* ones included (as
//! `info`), so a report says why a pod is safe, not only that it is.

use serde::Serialize;

use crate::severity::{Category, Severity};

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

/// `EPI-TF-007`: managed node group without a launch template.
///
/// EKS then creates the launch template itself. Its IMDS settings depend on the
/// AMI type: the hop limit is 2 (documented for AL2 and AL2023 managed nodes),
/// and AL2 also leaves IMDSv1 on. Other AMI types (Bottlerocket, Windows,
/// `CUSTOM`) are reported at medium: their settings are not known to the lint.
pub const NODE_GROUP_DEFAULT_LAUNCH_TEMPLATE: Rule = Rule {
    id: "EPI-TF-007",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "node group without a launch template: the one EKS creates sets IMDS hop limit 2",
    fix: "give the node group a launch template with metadata_options { http_tokens = \"required\", http_put_response_hop_limit = 1 }",
};

/// `EPI-TF-008`: a node group (module call, or `aws_eks_node_group` whose
/// launch template is not in the linted files) whose IMDS settings cannot be
/// determined.
///
/// Node groups declared through modules get the module's IMDS defaults unless
/// the call overrides them. The defaults, read from each module's published
/// sources:
///
/// | module | versions | `http_tokens` | hop limit | how a group's settings merge with the defaults | source (file @ tag) |
/// |---|---|---|---|---|---|
/// | `terraform-aws-modules/eks/aws` (`worker_groups*`, `node_groups` with `create_launch_template = true`) | 17.x | `"optional"` | not set (EC2 default) | per key: `metadata_http_*` keys, else `workers_group_defaults` | `locals.tf` @ v17.0.0, v17.24.0 |
/// | `terraform-aws-modules/eks/aws` and `//modules/{eks,self}-managed-node-group` | 18.x – 20.x | `"required"` | **2** | whole map: a group's `metadata_options` replaces `*_node_group_defaults.metadata_options`, which replaces the module's map; keys missing from the chosen map are left unset | `node_groups.tf`, `modules/*/variables.tf` @ v18.0.0, v19.0.0, v20.0.0, v20.37.2 |
/// | `terraform-aws-modules/eks/aws` and `//modules/{eks,self}-managed-node-group` | 21.x | `"required"` | 1 | per key (`optional(…, default)` attributes); no `*_defaults` inputs | `modules/*/variables.tf` @ v21.0.0, v21.19.0 |
/// | `cloudposse/eks-node-group/aws` | 0.20 – 0.24, 1.x | `"optional"` (`metadata_http_tokens`) | **2** | per input | `variables.tf` @ 0.20.0, 1.0.0 |
/// | `cloudposse/eks-node-group/aws` | 0.25 – 0.28, ≥ 2.0 | `"required"` (`metadata_http_tokens_required = true`) | **2** | per input | `variables.tf` @ 0.25.0, 2.0.0, v3.4.0 |
///
/// Managed node groups with `create_launch_template = false` (v17 default, v18)
/// or `use_custom_launch_template = false` (v19+) get the EKS-created launch
/// template ([`NODE_GROUP_DEFAULT_LAUNCH_TEMPLATE`]). A call without a
/// `version` (or `?ref=`), or whose constraint spans versions with different
/// defaults, gets this finding instead of a guess.
pub const MODULE_NODE_IMDS: Rule = Rule {
    id: "EPI-TF-008",
    severity: Severity::Medium,
    category: Category::NodeRoleExposure,
    title: "node group: the IMDS settings of its nodes cannot be determined statically",
    fix: "pin the module version (e.g. version = \"~> 21.0\") and set metadata_options { http_tokens = \"required\", http_put_response_hop_limit = 1 } on each node group",
};

/// `EPI-TF-009`: account-level IMDS defaults (`aws_ec2_instance_metadata_defaults`) that let pods reach IMDS.
pub const ACCOUNT_IMDS_DEFAULTS: Rule = Rule {
    id: "EPI-TF-009",
    severity: Severity::Medium,
    category: Category::NodeRoleExposure,
    title: "account IMDS defaults allow IMDSv1 or a hop limit >= 2 for instances that do not set their own",
    fix: "set aws_ec2_instance_metadata_defaults { http_tokens = \"required\", http_put_response_hop_limit = 1 }",
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

/// `EPI-TF-014`: the role comes from the terraform-aws-modules `eks-pod-identity` module.
///
/// That module writes the trust policy itself (`pods.eks.amazonaws.com` with
/// `sts:AssumeRole` and `sts:TagSession`), so there is nothing to fix; the
/// finding says why the role was not analysed further.
pub const TRUST_FROM_POD_IDENTITY_MODULE: Rule = Rule {
    id: "EPI-TF-014",
    severity: Severity::Info,
    category: Category::Hardening,
    title:
        "role created by the eks-pod-identity module: its trust policy is correct for Pod Identity",
    fix: "nothing to do",
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

/// `EPI-K8S-010`: node IMDS settings of a Karpenter `EC2NodeClass` or an eksctl `ClusterConfig` allow IMDSv1.
pub const NODECLASS_IMDSV1_ALLOWED: Rule = Rule {
    id: "EPI-K8S-010",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "nodes allow IMDSv1: any pod can read the node role with a plain GET",
    fix: "EC2NodeClass: spec.metadataOptions.httpTokens: required; eksctl: disableIMDSv1: true",
};

/// `EPI-K8S-011`: Karpenter `EC2NodeClass` / eksctl hop limit >= 2 (or pods allowed IMDS).
pub const NODECLASS_HOP_LIMIT_TOO_HIGH: Rule = Rule {
    id: "EPI-K8S-011",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "node IMDS hop limit >= 2: ordinary pods can obtain an IMDSv2 token and take the node role",
    fix: "EC2NodeClass: spec.metadataOptions.httpPutResponseHopLimit: 1; eksctl: disablePodIMDS: true",
};

/// `EPI-K8S-012`: node IMDS settings in a manifest that cannot be checked.
pub const NODECLASS_NOT_CHECKED: Rule = Rule {
    id: "EPI-K8S-012",
    severity: Severity::Medium,
    category: Category::NodeRoleExposure,
    title: "node IMDS settings in this manifest cannot be checked statically",
    fix: "write httpTokens: required and httpPutResponseHopLimit: 1 literally (EC2NodeClass), or disablePodIMDS: true (eksctl)",
};

// ---------------------------------------------------------------------------
// Runtime `check` rules.
// ---------------------------------------------------------------------------

/// `EPI-IMDS-001`: an IMDSv2 token was obtained (hop limit >= 2, or host network).
pub const IMDS_TOKEN_OBTAINED: Rule = Rule {
    id: "EPI-IMDS-001",
    severity: Severity::High,
    category: Category::NodeRoleExposure,
    title: "IMDSv2 token obtained from here: the PUT answer reached this pod (hop limit >= 2, or host network)",
    fix: "set the launch template's http_put_response_hop_limit = 1 (Pod Identity does not need 2), keep pods off hostNetwork, or block 169.254.169.254 / fd00:ec2::254 for pods",
};

/// `EPI-IMDS-002`: the node role's name was read through IMDSv2.
pub const IMDS_ROLE_READABLE: Rule = Rule {
    id: "EPI-IMDS-002",
    severity: Severity::Critical,
    category: Category::NodeRoleExposure,
    title: "node role reachable: IMDS lists the instance profile role to this pod",
    fix: "set http_put_response_hop_limit = 1 and http_tokens = \"required\" on the node launch template, or block IMDS for pods with a network policy",
};

/// `EPI-IMDS-003`: the node role's credentials were read through IMDSv2.
pub const IMDS_CREDENTIALS_READABLE: Rule = Rule {
    id: "EPI-IMDS-003",
    severity: Severity::Critical,
    category: Category::NodeRoleExposure,
    title: "node role credentials readable: any process in this pod can act as the node",
    fix: "set http_put_response_hop_limit = 1 and http_tokens = \"required\" on the node launch template (or block IMDS for pods), then recycle the nodes",
};

/// `EPI-IMDS-004`: a plain GET without a token was answered (IMDSv1 open).
pub const IMDS_V1_OPEN: Rule = Rule {
    id: "EPI-IMDS-004",
    severity: Severity::Critical,
    category: Category::NodeRoleExposure,
    title: "IMDSv1 open: a plain GET without a token is answered, whatever the hop limit",
    fix: "set http_tokens = \"required\" on the node launch template (aws ec2 modify-instance-metadata-options --http-tokens required for running nodes)",
};

/// `EPI-IMDS-010`: connection refused (an iptables/nftables REJECT rule, or nothing listening).
pub const IMDS_CONNECT_REFUSED: Rule = Rule {
    id: "EPI-IMDS-010",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS connection refused: blocked for this pod (REJECT rule)",
    fix: "nothing to do: the metadata service is blocked here",
};

/// `EPI-IMDS-011`: host/network unreachable (ICMP prohibited, `ip rule prohibit`, no route).
pub const IMDS_CONNECT_UNREACHABLE: Rule = Rule {
    id: "EPI-IMDS-011",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS unreachable: blocked for this pod (ICMP prohibited / no route)",
    fix: "nothing to do: the metadata service is blocked here",
};

/// `EPI-IMDS-012`: the TCP connect timed out (packets dropped by policy).
pub const IMDS_CONNECT_TIMEOUT: Rule = Rule {
    id: "EPI-IMDS-012",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS connect timed out: packets to it are dropped (DROP rule or network policy)",
    fix: "nothing to do: the metadata service is blocked here (SDKs that probe IMDS will wait for their connect timeout)",
};

/// `EPI-IMDS-013`: connected, but the token PUT went unanswered (hop limit 1).
pub const IMDS_TOKEN_PUT_UNANSWERED: Rule = Rule {
    id: "EPI-IMDS-013",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS token PUT unanswered: hop limit 1 keeps the answer from reaching this pod",
    fix: "nothing to do: this is the protection working (keep http_put_response_hop_limit = 1 and http_tokens = \"required\")",
};

/// `EPI-IMDS-014`: the token PUT answered 403 (IMDS disabled on the instance).
pub const IMDS_DISABLED: Rule = Rule {
    id: "EPI-IMDS-014",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "IMDS disabled on this instance (token PUT answered 403)",
    fix: "nothing to do for pods; node components that need IMDS will not work",
};

/// `EPI-IMDS-015`: the role list answered 404 (no instance profile).
pub const IMDS_NO_INSTANCE_PROFILE: Rule = Rule {
    id: "EPI-IMDS-015",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "no instance profile: IMDS has no role to hand out",
    fix: "nothing to leak today; still set hop limit 1 before a role is attached",
};

/// `EPI-IMDS-016`: IMDS answered something the probe does not understand.
pub const IMDS_UNEXPECTED: Rule = Rule {
    id: "EPI-IMDS-016",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title: "IMDS endpoint answered unexpectedly: exposure could not be determined",
    fix: "check the endpoint (AWS_EC2_METADATA_SERVICE_ENDPOINT, --imds-endpoint) and any proxy in front of it",
};

/// `EPI-PI-001`: Pod Identity env vars are absent.
pub const PI_NOT_CONFIGURED: Rule = Rule {
    id: "EPI-PI-001",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "EKS Pod Identity is not configured for this pod",
    fix: "create a pod identity association for the pod's namespace/service account (aws eks create-pod-identity-association), install the eks-pod-identity-agent add-on, and restart the pod",
};

/// `EPI-PI-002`: the credentials URI is invalid or points at a disallowed host.
pub const PI_ENDPOINT_INVALID: Rule = Rule {
    id: "EPI-PI-002",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity credentials URI is invalid or not an allowed host: SDKs refuse it",
    fix: "let EKS inject AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials (or http://[fd00:ec2::23]/v1/credentials); plain http is only allowed to loopback, 169.254.170.2, 169.254.170.23 and fd00:ec2::23",
};

/// `EPI-PI-003`: a credentials URI is set but no token file or token.
pub const PI_TOKEN_NOT_SET: Rule = Rule {
    id: "EPI-PI-003",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity URI set but no AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: the agent rejects the request",
    fix: "let EKS inject AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (the projected service-account token volume); do not override the env by hand",
};

/// `EPI-PI-004`: the token file is missing, unreadable or empty.
pub const PI_TOKEN_UNREADABLE: Rule = Rule {
    id: "EPI-PI-004",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity token file missing, unreadable or empty",
    fix: "keep the projected eks-pod-identity-token volume mounted (check volumeMounts, readOnlyRootFilesystem and the container user's read permission)",
};

/// `EPI-PI-005`: the token is not a JWT or its claims do not decode.
pub const PI_TOKEN_MALFORMED: Rule = Rule {
    id: "EPI-PI-005",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity token is not a JWT with readable claims: the agent answers 'cannot be parsed'",
    fix: "point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at the kubelet-projected token (one line, header.payload.signature)",
};

/// `EPI-PI-006`: the token's audience is not `pods.eks.amazonaws.com`.
pub const PI_TOKEN_WRONG_AUDIENCE: Rule = Rule {
    id: "EPI-PI-006",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity token audience is not pods.eks.amazonaws.com: EKS Auth rejects it",
    fix: "use the token projected by EKS (audience pods.eks.amazonaws.com), not the default service-account token or an IRSA token (sts.amazonaws.com)",
};

/// `EPI-PI-007`: the token has expired.
pub const PI_TOKEN_EXPIRED: Rule = Rule {
    id: "EPI-PI-007",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity token has expired: the agent answers 'token is expired'",
    fix: "read the token file on every fetch (the kubelet rotates it); a copied or cached token goes stale; restart the pod if the projected volume stopped rotating",
};

/// `EPI-PI-008`: the agent could not be reached.
pub const PI_AGENT_UNREACHABLE: Rule = Rule {
    id: "EPI-PI-008",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity agent unreachable: no credentials for this pod",
    fix: "install the eks-pod-identity-agent add-on and check it runs on this node (kubectl -n kube-system get ds eks-pod-identity-agent); allow 169.254.170.23:80 / [fd00:ec2::23]:80 in network policies",
};

/// `EPI-PI-009`: the agent answered with an error.
pub const PI_AGENT_ERROR: Rule = Rule {
    id: "EPI-PI-009",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "Pod Identity agent answered with an error: no credentials for this pod",
    fix: "read the agent's message: 404 ResourceNotFound = no association for this namespace/service account; AccessDenied = the role's trust policy lacks pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession",
};

/// `EPI-PI-010`: the agent handed out credentials.
pub const PI_AGENT_OK: Rule = Rule {
    id: "EPI-PI-010",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "Pod Identity agent hands out credentials for this pod",
    fix: "nothing to do",
};

/// `EPI-ENV-001`: static keys in the environment.
pub const ENV_STATIC_KEYS: Rule = Rule {
    id: "EPI-ENV-001",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "static AWS keys in the environment shadow Pod Identity (first in every SDK's default chain)",
    fix: "remove AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the pod spec and rotate the keys",
};

/// `EPI-ENV-002`: `AWS_PROFILE` selects a shared-config profile.
pub const ENV_PROFILE_SET: Rule = Rule {
    id: "EPI-ENV-002",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    title: "AWS_PROFILE is set: SDKs resolve the profile before Pod Identity (and some fail when it is missing)",
    fix: "unset AWS_PROFILE in the pod",
};

/// `EPI-ENV-003`: shared credentials/config files provide credentials.
pub const ENV_SHARED_FILES: Rule = Rule {
    id: "EPI-ENV-003",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "shared AWS config/credentials file provides credentials that shadow Pod Identity",
    fix: "remove the mounted ~/.aws/credentials / config (or AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE) from the image and pod",
};

/// `EPI-ENV-004`: IRSA variables.
pub const ENV_IRSA: Rule = Rule {
    id: "EPI-ENV-004",
    severity: Severity::High,
    category: Category::Misconfiguration,
    title: "IRSA variables shadow Pod Identity (web identity comes first in the SDKs' default chain)",
    fix: "remove the eks.amazonaws.com/role-arn annotation from the service account (or AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE from the pod) when moving to Pod Identity",
};

/// `EPI-ID-001`: the credentials our chain resolves are the node role.
pub const ID_NODE_ROLE: Rule = Rule {
    id: "EPI-ID-001",
    severity: Severity::Critical,
    category: Category::NodeRoleExposure,
    title: "the credentials this pod resolves are the node's IAM role",
    fix: "give the pod its own role with a pod identity association; keep the Deny fallback policy; set hop limit 1",
};

/// `EPI-ID-002`: our chain could not resolve credentials.
pub const ID_UNRESOLVED: Rule = Rule {
    id: "EPI-ID-002",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "the credential chain resolved no credentials here",
    fix: "see the EPI-PI findings for the cause",
};

/// `EPI-ID-003`: the resolved identity, confirmed by STS, is not the node role.
pub const ID_RESOLVED: Rule = Rule {
    id: "EPI-ID-003",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "resolved identity (STS GetCallerIdentity) is not the node role",
    fix: "nothing to do",
};

/// `EPI-ID-004`: the identity could not be confirmed with STS.
pub const ID_UNVERIFIED: Rule = Rule {
    id: "EPI-ID-004",
    severity: Severity::Info,
    category: Category::Hardening,
    title: "resolved identity could not be confirmed with STS GetCallerIdentity",
    fix: "allow egress to STS (or pass --sts-endpoint) to compare the resolved identity with the node role",
};

/// `EPI-ID-010`: the pod's IP equals the host's IP (host network).
pub const ID_HOST_NETWORK: Rule = Rule {
    id: "EPI-ID-010",
    severity: Severity::Medium,
    category: Category::NodeRoleExposure,
    title:
        "pod IP equals host IP: this pod uses hostNetwork and reaches IMDS whatever the hop limit",
    fix: "remove hostNetwork: true from the pod spec (only node agents belong on the host network)",
};

/// Every rule: Terraform, Kubernetes, then the runtime `check` rules, each in id order.
pub const ALL: &[Rule] = &[
    LT_METADATA_OPTIONS_MISSING,
    LT_IMDSV1_ALLOWED,
    LT_HOP_LIMIT_TOO_HIGH,
    LT_HOP_LIMIT_UNSET,
    LT_IMDS_DISABLED,
    LT_IMDS_IPV6_ENABLED,
    NODE_GROUP_DEFAULT_LAUNCH_TEMPLATE,
    MODULE_NODE_IMDS,
    ACCOUNT_IMDS_DEFAULTS,
    TRUST_MISSING_TAG_SESSION,
    TRUST_MISSING_ASSUME_ROLE,
    TRUST_NO_SOURCE_CONDITION,
    TRUST_NOT_ANALYZED,
    TRUST_FROM_POD_IDENTITY_MODULE,
    ASSOCIATION_WITHOUT_AGENT,
    ASSOCIATION_INCOMPLETE,
    ASSOCIATION_ROLE_NOT_TRUSTED,
    HOST_NETWORK,
    STATIC_AWS_KEYS,
    AWS_KEYS_FROM_REF,
    NODECLASS_IMDSV1_ALLOWED,
    NODECLASS_HOP_LIMIT_TOO_HIGH,
    NODECLASS_NOT_CHECKED,
    IMDS_TOKEN_OBTAINED,
    IMDS_ROLE_READABLE,
    IMDS_CREDENTIALS_READABLE,
    IMDS_V1_OPEN,
    IMDS_CONNECT_REFUSED,
    IMDS_CONNECT_UNREACHABLE,
    IMDS_CONNECT_TIMEOUT,
    IMDS_TOKEN_PUT_UNANSWERED,
    IMDS_DISABLED,
    IMDS_NO_INSTANCE_PROFILE,
    IMDS_UNEXPECTED,
    PI_NOT_CONFIGURED,
    PI_ENDPOINT_INVALID,
    PI_TOKEN_NOT_SET,
    PI_TOKEN_UNREADABLE,
    PI_TOKEN_MALFORMED,
    PI_TOKEN_WRONG_AUDIENCE,
    PI_TOKEN_EXPIRED,
    PI_AGENT_UNREACHABLE,
    PI_AGENT_ERROR,
    PI_AGENT_OK,
    ENV_STATIC_KEYS,
    ENV_PROFILE_SET,
    ENV_SHARED_FILES,
    ENV_IRSA,
    ID_NODE_ROLE,
    ID_UNRESOLVED,
    ID_RESOLVED,
    ID_UNVERIFIED,
    ID_HOST_NETWORK,
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
        for family in ["EPI-IMDS-", "EPI-PI-", "EPI-ENV-", "EPI-ID-"] {
            assert!(ALL.iter().any(|r| r.id.starts_with(family)), "{family}");
        }
        assert_eq!(by_id("EPI-IMDS-013"), Some(&IMDS_TOKEN_PUT_UNANSWERED));
    }

    /// The fix texts spell addresses out for people; the provider's protocol
    /// module is their one home, so the texts must name exactly those.
    #[test]
    fn fix_texts_name_the_providers_addresses() {
        use eks_pod_identity_provider::protocol::{
            ECS_HOST, IMDS_ENDPOINT_V4, IMDS_ENDPOINT_V6, POD_IDENTITY_AGENT_V4,
            POD_IDENTITY_AGENT_V6,
        };
        let imds_v4 = IMDS_ENDPOINT_V4.trim_start_matches("http://");
        let imds_v6 = IMDS_ENDPOINT_V6
            .trim_start_matches("http://[")
            .trim_end_matches(']');
        assert_eq!((imds_v4, imds_v6), ("169.254.169.254", "fd00:ec2::254"));
        let agent_v4 = POD_IDENTITY_AGENT_V4.to_string();
        let agent_v6 = POD_IDENTITY_AGENT_V6.to_string();
        for rule in [LT_IMDS_IPV6_ENABLED, HOST_NETWORK, IMDS_TOKEN_OBTAINED] {
            assert!(rule.fix.contains(imds_v4), "{}: {}", rule.id, rule.fix);
            assert!(rule.fix.contains(imds_v6), "{}: {}", rule.id, rule.fix);
        }
        assert!(LT_IMDS_IPV6_ENABLED.title.contains(&format!("[{imds_v6}]")));
        let pi = PI_ENDPOINT_INVALID.fix;
        assert!(
            pi.contains(&format!("http://{agent_v4}/v1/credentials")),
            "{pi}"
        );
        assert!(
            pi.contains(&format!("http://[{agent_v6}]/v1/credentials")),
            "{pi}"
        );
        assert!(
            pi.contains(&format!("{ECS_HOST}, {agent_v4} and {agent_v6}")),
            "{pi}"
        );
        let agent = PI_AGENT_UNREACHABLE.fix;
        assert!(
            agent.contains(&format!("{agent_v4}:80 / [{agent_v6}]:80")),
            "{agent}"
        );
    }
}
