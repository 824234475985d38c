//! One positive and one negative case per lint rule.

use eks_pod_identity_doctor::lint::lint_paths;
use eks_pod_identity_doctor::report::{Report, Severity};

mod lint_support;
use lint_support::{f, found, lint};

fn rules(report: &Report) -> Vec<&str> {
    report
        .findings()
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect()
}

/// A launch template that an EKS managed node group uses (only those are EKS nodes).
fn launch_template(metadata_options: &str) -> String {
    format!(
        "resource \"aws_launch_template\" \"lt\" {{\n  name_prefix = \"n-\"\n{metadata_options}}}\n{NODE_GROUP}"
    )
}

const NODE_GROUP: &str = "resource \"aws_eks_node_group\" \"ng\" {\n  launch_template {\n    id      = aws_launch_template.lt.id\n    version = aws_launch_template.lt.latest_version\n  }\n}\n";

const GOOD_MO: &str = "  metadata_options {\n    http_endpoint = \"enabled\"\n    http_tokens = \"required\"\n    http_put_response_hop_limit = 1\n  }\n";

// ---------- launch templates ----------

#[test]
fn good_launch_template_is_clean() {
    assert_eq!(found(&lint(&[("lt.tf", &launch_template(GOOD_MO))])), []);
}

#[test]
fn tf_001_missing_metadata_options() {
    let r = lint(&[("lt.tf", &launch_template(""))]);
    assert_eq!(found(&r), [f("EPI-TF-001", Severity::High, "lt.tf:1")]);
}

#[test]
fn tf_002_imdsv1_allowed() {
    let optional = GOOD_MO.replace("\"required\"", "\"optional\"");
    let r = lint(&[("lt.tf", &launch_template(&optional))]);
    assert_eq!(found(&r), [f("EPI-TF-002", Severity::High, "lt.tf:5")]);
    assert!(r.findings()[0]
        .evidence
        .contains("http_tokens = \"optional\""));

    let unset = GOOD_MO.replace("    http_tokens = \"required\"\n", "");
    let r = lint(&[("lt.tf", &launch_template(&unset))]);
    assert_eq!(found(&r), [f("EPI-TF-002", Severity::High, "lt.tf:3")]);

    let variable = GOOD_MO.replace("\"required\"", "var.tokens");
    let r = lint(&[("lt.tf", &launch_template(&variable))]);
    assert_eq!(found(&r), [f("EPI-TF-002", Severity::Medium, "lt.tf:5")]);
}

#[test]
fn tf_003_hop_limit_two_or_more() {
    for n in [2, 3, 64] {
        let mo = GOOD_MO.replace("hop_limit = 1", &format!("hop_limit = {n}"));
        let r = lint(&[("lt.tf", &launch_template(&mo))]);
        assert_eq!(found(&r), [f("EPI-TF-003", Severity::High, "lt.tf:6")]);
        assert!(r.findings()[0].title.contains(&format!("hop limit {n}")));
    }
}

#[test]
fn tf_004_hop_limit_not_explicit() {
    let unset = GOOD_MO.replace("    http_put_response_hop_limit = 1\n", "");
    let r = lint(&[("lt.tf", &launch_template(&unset))]);
    assert_eq!(found(&r), [f("EPI-TF-004", Severity::Medium, "lt.tf:3")]);

    let variable = GOOD_MO.replace("hop_limit = 1", "hop_limit = var.hops");
    let r = lint(&[("lt.tf", &launch_template(&variable))]);
    assert_eq!(found(&r), [f("EPI-TF-004", Severity::Medium, "lt.tf:6")]);
    assert!(r.findings()[0].evidence.contains("var.hops"));
}

#[test]
fn tf_005_imds_disabled() {
    let mo = GOOD_MO.replace("\"enabled\"", "\"disabled\"");
    let r = lint(&[("lt.tf", &launch_template(&mo))]);
    assert_eq!(found(&r), [f("EPI-TF-005", Severity::Medium, "lt.tf:4")]);
}

#[test]
fn tf_006_ipv6_endpoint() {
    let on = GOOD_MO.replace("  }\n", "    http_protocol_ipv6 = \"enabled\"\n  }\n");
    let r = lint(&[("lt.tf", &launch_template(&on))]);
    assert_eq!(found(&r), [f("EPI-TF-006", Severity::Info, "lt.tf:7")]);
    let off = GOOD_MO.replace("  }\n", "    http_protocol_ipv6 = \"disabled\"\n  }\n");
    assert_eq!(found(&lint(&[("lt.tf", &launch_template(&off))])), []);
}

// ---------- trust policies ----------

const JSONENCODE_GOOD: &str = r#"
resource "aws_iam_role" "app" {
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "pods.eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
      Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
    }]
  })
}
"#;

const HEREDOC_GOOD: &str = r#"
resource "aws_iam_role" "app" {
  assume_role_policy = <<-EOT
    {
      "Version": "2012-10-17",
      "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": ["pods.eks.amazonaws.com"]},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"ArnEquals": {"aws:SourceArn": "${var.cluster_arn}"}}
      }]
    }
  EOT
}
"#;

const QUOTED_GOOD: &str = r#"
resource "aws_iam_role" "app" {
  assume_role_policy = "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"pods.eks.amazonaws.com\"},\"Action\":\"sts:*\",\"Condition\":{\"StringEquals\":{\"aws:SourceAccount\":\"111122223333\"}}}]}"
}
"#;

const DOCUMENT_ROLE: &str = r#"
resource "aws_iam_role" "app" {
  name               = "app"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}
"#;

const DOCUMENT_GOOD: &str = r#"
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}
"#;

#[test]
fn complete_trust_policies_are_clean_in_all_three_shapes() {
    assert_eq!(found(&lint(&[("iam.tf", JSONENCODE_GOOD)])), []);
    assert_eq!(found(&lint(&[("iam.tf", HEREDOC_GOOD)])), []);
    assert_eq!(found(&lint(&[("iam.tf", QUOTED_GOOD)])), []);
    assert_eq!(
        found(&lint(&[
            ("iam.tf", DOCUMENT_ROLE),
            ("trust.tf", DOCUMENT_GOOD)
        ])),
        []
    );
}

#[test]
fn tf_010_missing_tag_session_in_all_three_shapes() {
    let drop_tag = |s: &str| s.replace(", \"sts:TagSession\"", "");
    let r = lint(&[("iam.tf", &drop_tag(JSONENCODE_GOOD))]);
    assert_eq!(found(&r), [f("EPI-TF-010", Severity::High, "iam.tf:7")]);

    let r = lint(&[("iam.tf", &drop_tag(HEREDOC_GOOD))]);
    assert_eq!(found(&r), [f("EPI-TF-010", Severity::High, "iam.tf:8")]);

    let quoted = QUOTED_GOOD.replace("sts:*", "sts:AssumeRole");
    let r = lint(&[("iam.tf", &quoted)]);
    assert_eq!(found(&r), [f("EPI-TF-010", Severity::High, "iam.tf:3")]);

    // The document is in another file: the finding points at it.
    let r = lint(&[
        ("iam.tf", DOCUMENT_ROLE),
        ("trust.tf", &drop_tag(DOCUMENT_GOOD)),
    ]);
    assert_eq!(found(&r), [f("EPI-TF-010", Severity::High, "trust.tf:7")]);
    assert!(r.findings()[0]
        .evidence
        .contains("aws_iam_role.app (policy data.aws_iam_policy_document.trust)"));
}

#[test]
fn tf_011_missing_assume_role() {
    let r = lint(&[(
        "iam.tf",
        &JSONENCODE_GOOD.replace("\"sts:AssumeRole\", ", ""),
    )]);
    assert_eq!(found(&r), [f("EPI-TF-011", Severity::High, "iam.tf:7")]);
}

#[test]
fn tf_012_no_source_condition() {
    let no_condition = JSONENCODE_GOOD.replace(
        "      Condition = { StringEquals = { \"aws:SourceAccount\" = var.account_id } }\n",
        "",
    );
    let r = lint(&[("iam.tf", &no_condition)]);
    assert_eq!(found(&r), [f("EPI-TF-012", Severity::Low, "iam.tf:7")]);

    // Other conditions do not count.
    let other = JSONENCODE_GOOD.replace("aws:SourceAccount", "aws:PrincipalTag/team");
    assert_eq!(rules(&lint(&[("iam.tf", &other)])), ["EPI-TF-012"]);
}

#[test]
fn roles_that_do_not_trust_pods_are_not_judged() {
    let ec2 = JSONENCODE_GOOD
        .replace("pods.eks.amazonaws.com", "ec2.amazonaws.com")
        .replace(", \"sts:TagSession\"", "");
    assert_eq!(found(&lint(&[("iam.tf", &ec2)])), []);
}

#[test]
fn tf_013_unanalyzable_trust_policy() {
    let file =
        "resource \"aws_iam_role\" \"r\" {\n  assume_role_policy = file(\"trust.json\")\n}\n";
    assert_eq!(
        found(&lint(&[("iam.tf", file)])),
        [f("EPI-TF-013", Severity::Info, "iam.tf:2")]
    );
    // A document that is not in the linted files.
    let r = lint(&[("iam.tf", DOCUMENT_ROLE)]);
    assert_eq!(found(&r), [f("EPI-TF-013", Severity::Info, "iam.tf:4")]);
    assert!(r.findings()[0].evidence.contains("not in the linted files"));
    // Not JSON.
    let broken = "resource \"aws_iam_role\" \"r\" {\n  assume_role_policy = \"{not json\"\n}\n";
    assert_eq!(rules(&lint(&[("iam.tf", broken)])), ["EPI-TF-013"]);
}

// ---------- associations ----------

const ADDON: &str = "resource \"aws_eks_addon\" \"agent\" {\n  cluster_name = \"c\"\n  addon_name   = \"eks-pod-identity-agent\"\n}\n";

const ASSOCIATION: &str = r#"
resource "aws_eks_pod_identity_association" "app" {
  cluster_name    = "c"
  namespace       = "ns"
  service_account = "sa"
  role_arn        = aws_iam_role.app.arn
}
"#;

#[test]
fn association_with_agent_and_trusting_role_is_clean() {
    let r = lint(&[
        ("assoc.tf", ASSOCIATION),
        ("addon.tf", ADDON),
        ("iam.tf", JSONENCODE_GOOD),
    ]);
    assert_eq!(found(&r), []);
}

#[test]
fn tf_020_association_without_agent_addon() {
    let r = lint(&[("assoc.tf", ASSOCIATION), ("iam.tf", JSONENCODE_GOOD)]);
    assert_eq!(found(&r), [f("EPI-TF-020", Severity::Medium, "assoc.tf:2")]);
    // Another add-on does not count.
    let other = ADDON.replace("eks-pod-identity-agent", "vpc-cni");
    let r = lint(&[
        ("assoc.tf", ASSOCIATION),
        ("addon.tf", &other),
        ("iam.tf", JSONENCODE_GOOD),
    ]);
    assert_eq!(rules(&r), ["EPI-TF-020"]);
}

#[test]
fn tf_021_incomplete_association() {
    let partial = ASSOCIATION.replace("  namespace       = \"ns\"\n", "");
    let r = lint(&[
        ("assoc.tf", &partial),
        ("addon.tf", ADDON),
        ("iam.tf", JSONENCODE_GOOD),
    ]);
    assert_eq!(found(&r), [f("EPI-TF-021", Severity::Medium, "assoc.tf:2")]);
    assert!(r.findings()[0].evidence.contains("does not set namespace"));
}

#[test]
fn tf_022_associated_role_does_not_trust_pods() {
    let ec2 = JSONENCODE_GOOD.replace("pods.eks.amazonaws.com", "ec2.amazonaws.com");
    let r = lint(&[
        ("assoc.tf", ASSOCIATION),
        ("addon.tf", ADDON),
        ("iam.tf", &ec2),
    ]);
    assert_eq!(found(&r), [f("EPI-TF-022", Severity::High, "assoc.tf:6")]);
}

// ---------- Kubernetes workloads ----------

fn deployment(pod_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: ns\nspec:\n  template:\n    spec:\n{pod_spec}"
    )
}

const CONTAINERS: &str = "      containers:\n      - name: app\n        image: app:1\n        env:\n        - name: AWS_REGION\n          value: eu-west-1\n";

#[test]
fn plain_workload_is_clean() {
    let spec = format!("      serviceAccountName: sa\n{CONTAINERS}");
    assert_eq!(found(&lint(&[("app.yaml", &deployment(&spec))])), []);
    let host_false = format!("      hostNetwork: false\n{CONTAINERS}");
    assert_eq!(found(&lint(&[("app.yaml", &deployment(&host_false))])), []);
}

#[test]
fn k8s_001_host_network() {
    // With a service account: high.
    let spec = format!("      hostNetwork: true\n      serviceAccountName: sa\n{CONTAINERS}");
    let r = lint(&[("app.yaml", &deployment(&spec))]);
    assert_eq!(found(&r), [f("EPI-K8S-001", Severity::High, "app.yaml:9")]);
    assert!(r.findings()[0].evidence.contains("Deployment ns/app"));

    // Default service account: medium ...
    let spec = format!("      hostNetwork: true\n{CONTAINERS}");
    let r = lint(&[("app.yaml", &deployment(&spec))]);
    assert_eq!(
        found(&r),
        [f("EPI-K8S-001", Severity::Medium, "app.yaml:9")]
    );

    // ... unless an association in the linted Terraform maps ns/default to a role.
    let assoc = ASSOCIATION.replace("\"sa\"", "\"default\"");
    let r = lint(&[
        ("app.yaml", &deployment(&spec)),
        ("assoc.tf", &assoc),
        ("addon.tf", ADDON),
        ("iam.tf", JSONENCODE_GOOD),
    ]);
    assert_eq!(found(&r), [f("EPI-K8S-001", Severity::High, "app.yaml:9")]);
    assert!(r.findings()[0]
        .evidence
        .contains("pod identity association"));
}

#[test]
fn k8s_001_host_network_in_terraform_resources() {
    let pod = r#"
resource "kubernetes_pod_v1" "p" {
  metadata {
    name      = "p"
    namespace = "ns"
  }
  spec {
    host_network         = true
    service_account_name = kubernetes_service_account_v1.sa.metadata[0].name
    container {
      name  = "c"
      image = "busybox"
    }
  }
}
"#;
    let r = lint(&[("pod.tf", pod)]);
    assert_eq!(found(&r), [f("EPI-K8S-001", Severity::High, "pod.tf:8")]);

    let cron = r#"
resource "kubernetes_cron_job_v1" "c" {
  metadata { name = "c" }
  spec {
    schedule = "* * * * *"
    job_template {
      metadata {}
      spec {
        template {
          metadata {}
          spec {
            host_network = true
            container {
              name  = "c"
              image = "busybox"
            }
          }
        }
      }
    }
  }
}
"#;
    let r = lint(&[("cron.tf", cron)]);
    assert_eq!(
        found(&r),
        [f("EPI-K8S-001", Severity::Medium, "cron.tf:12")]
    );

    let manifest = r#"
resource "kubernetes_manifest" "ds" {
  manifest = {
    apiVersion = "apps/v1"
    kind       = "DaemonSet"
    metadata   = { name = "d", namespace = "kube-system" }
    spec = {
      template = {
        spec = {
          hostNetwork        = true
          serviceAccountName = "d"
          containers         = [{ name = "c", image = "busybox" }]
        }
      }
    }
  }
}
"#;
    let r = lint(&[("manifest.tf", manifest)]);
    assert_eq!(
        found(&r),
        [f("EPI-K8S-001", Severity::High, "manifest.tf:3")]
    );

    let no_host = pod.replace("host_network         = true", "host_network = false");
    assert_eq!(found(&lint(&[("pod.tf", &no_host)])), []);
}

#[test]
fn k8s_002_and_003_static_keys_from_a_fixture_file() {
    let r = lint_paths(&["tests/fixtures/k8s/workloads.yaml"]).unwrap();
    let path = "tests/fixtures/k8s/workloads.yaml";
    assert_eq!(
        found(&r),
        [
            // node-exporter is a known node agent: on the host network by design.
            f("EPI-K8S-001", Severity::Low, &format!("{path}:15")),
            f("EPI-K8S-002", Severity::High, &format!("{path}:39")),
            f("EPI-K8S-003", Severity::Medium, &format!("{path}:46")),
        ]
    );
    let keys = &r.findings()[1];
    assert!(keys
        .evidence
        .contains("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"));
    for finding in r.findings() {
        assert!(!finding.evidence.contains("do-not-print-me"));
        assert!(!finding.evidence.contains("AKIAEXAMPLE"));
    }
}

#[test]
fn k8s_002_static_keys_in_terraform_env() {
    let pod = r#"
resource "kubernetes_deployment_v1" "d" {
  metadata { name = "d" }
  spec {
    template {
      metadata {}
      spec {
        container {
          name  = "c"
          image = "busybox"
          env {
            name  = "AWS_ACCESS_KEY_ID"
            value = var.key_id
          }
          env {
            name = "AWS_SECRET_ACCESS_KEY"
            value_from {
              secret_key_ref {
                name = "aws"
                key  = "secret"
              }
            }
          }
        }
      }
    }
  }
}
"#;
    let r = lint(&[("d.tf", pod)]);
    assert_eq!(
        found(&r),
        [
            f("EPI-K8S-002", Severity::High, "d.tf:11"),
            f("EPI-K8S-003", Severity::Medium, "d.tf:15"),
        ]
    );
}

#[test]
fn non_kubernetes_yaml_is_ignored() {
    let workflow = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n";
    assert_eq!(found(&lint(&[("ci.yml", workflow)])), []);
}
