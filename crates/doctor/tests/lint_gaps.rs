//! Lint cases a review found untested: AWS keys through `envFrom.secretRef`,
//! `initContainers` written after `containers` (line numbers), `kind: List`, a
//! `dynamic "metadata_options"` block, and a hop limit of 0.
//!
//! Launch templates here are referenced by an `aws_eks_node_group`, so they are
//! EKS node templates whatever scope rule applies to stray launch templates.

use eks_pod_identity_doctor::report::{Report, Severity};

mod lint_support;
use lint_support::{f, found, lint};

// ---------- Kubernetes workloads ----------

#[test]
fn aws_keys_through_env_from_secret_ref_are_found() {
    // A Secret holding AWS keys, injected whole with envFrom.secretRef: every
    // key becomes an env var of the container and shadows Pod Identity.
    let yaml = "\
apiVersion: v1
kind: Secret
metadata:
  name: aws-creds
  namespace: ns
type: Opaque
stringData:
  AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE
  AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
---
"
    .to_owned()
        + &env_from_deployment("        - secretRef:\n            name: aws-creds\n");
    let r = lint(&[("app.yaml", &yaml)]);
    let ids: Vec<&str> = r.findings().iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(ids, ["EPI-K8S-003"], "{:#?}", r.findings());
    let finding = &r.findings()[0];
    assert_eq!(finding.location.to_string(), "app.yaml:24");
    assert!(
        finding.evidence.contains("aws-creds"),
        "{}",
        finding.evidence
    );
    // The values are never printed.
    assert!(!finding.evidence.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(!finding.evidence.contains("wJalrXUtnFEMI"));

    // envFrom of a Secret without AWS keys is fine.
    let other = yaml
        .replace("AWS_ACCESS_KEY_ID", "DB_USER")
        .replace("AWS_SECRET_ACCESS_KEY", "DB_PASSWORD");
    assert_eq!(found(&lint(&[("app.yaml", &other)])), []);
}

/// A Deployment in `ns` whose container `app` goes on with `rest` (its lines
/// after `image:`; further containers or pod spec keys may follow).
fn deployment(rest: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: ns\nspec:\n  template:\n    spec:\n      serviceAccountName: sa\n      containers:\n      - name: app\n        image: app:1\n{rest}"
    )
}

/// A Deployment in `ns` whose container `app` takes `env_from` (YAML list items).
fn env_from_deployment(env_from: &str) -> String {
    deployment(&format!("        envFrom:\n{env_from}"))
}

/// `r`'s only finding is EPI-K8S-003 at the `envFrom` item of
/// `env_from_deployment`; returns its evidence.
fn assert_env_from_finding(r: &Report) -> &str {
    assert_eq!(
        found(r),
        [f("EPI-K8S-003", Severity::Medium, "app.yaml:14")],
        "{:#?}",
        r.findings()
    );
    &r.findings()[0].evidence
}

#[test]
fn env_from_resolves_across_files_kinds_namespaces_and_prefixes() {
    // `data` holds base64 values; only the key names matter.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: ns\ndata:\n  AWS_SESSION_TOKEN: c2VjcmV0\n  key: QUtJQQ==\n";
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: ns\ndata:\n  ACCESS_KEY_ID: x\n  AWS_REGION: eu-west-1\n";

    // The Secret in another file; the reference is at its secretRef line.
    let app = env_from_deployment("        - secretRef:\n            name: creds\n");
    let r = lint(&[("secret.yaml", secret), ("app.yaml", &app)]);
    let evidence = assert_env_from_finding(&r);
    assert!(evidence.contains("AWS_SESSION_TOKEN"), "{evidence}");
    assert!(evidence.contains("Secret `creds`"), "{evidence}");
    assert!(!evidence.contains("c2VjcmV0"), "{evidence}");

    // Not among the linted files, or in another namespace: nothing to judge.
    assert_eq!(found(&lint(&[("app.yaml", &app)])), []);
    let elsewhere = secret.replace("namespace: ns", "namespace: other");
    assert_eq!(
        found(&lint(&[("s.yaml", &elsewhere), ("app.yaml", &app)])),
        []
    );

    // A prefix renames every key: `AWS_` + `ACCESS_KEY_ID` is an AWS key,
    // while a prefixed AWS_SESSION_TOKEN is not.
    let prefixed = env_from_deployment(
        "        - configMapRef:\n            name: cfg\n          prefix: AWS_\n        - prefix: X_\n          secretRef:\n            name: creds\n",
    );
    let r = lint(&[
        ("cm.yaml", config_map),
        ("s.yaml", secret),
        ("app.yaml", &prefixed),
    ]);
    let evidence = assert_env_from_finding(&r);
    assert!(
        evidence.contains("AWS_ACCESS_KEY_ID") && evidence.contains("ConfigMap `cfg`"),
        "{evidence}"
    );
    assert!(!evidence.contains("AWS_AWS_REGION"), "{evidence}");

    // The ignore annotation covers envFrom findings too.
    let ignored = app.replace(
        "  namespace: ns\nspec:",
        "  namespace: ns\n  annotations:\n    pod-identity-doctor/ignore: \"EPI-K8S-003 rotated by vault\"\nspec:",
    );
    assert_eq!(
        found(&lint(&[("s.yaml", secret), ("app.yaml", &ignored)])),
        []
    );
}

#[test]
fn terraform_env_from_secret_ref_is_resolved() {
    let tf = "\
resource \"kubernetes_secret_v1\" \"creds\" {
  metadata {
    name      = \"aws-creds\"
    namespace = \"ns\"
  }
  data = {
    AWS_ACCESS_KEY_ID     = var.key_id
    \"AWS_SECRET_ACCESS_KEY\" = var.secret
  }
}

resource \"kubernetes_deployment_v1\" \"app\" {
  metadata {
    name      = \"app\"
    namespace = \"ns\"
  }
  spec {
    template {
      metadata {}
      spec {
        service_account_name = \"sa\"
        container {
          name  = \"app\"
          image = \"app:1\"
          env_from {
            secret_ref {
              name = \"aws-creds\"
            }
          }
        }
      }
    }
  }
}
";
    let r = lint(&[("app.tf", tf)]);
    let k8s: Vec<_> = found(&r)
        .into_iter()
        .filter(|(id, _, _)| id.starts_with("EPI-K8S"))
        .collect();
    assert_eq!(
        k8s,
        [f("EPI-K8S-003", Severity::Medium, "app.tf:26")],
        "{:#?}",
        r.findings()
    );
    let evidence = evidence_of(&r, "EPI-K8S-003");
    assert!(
        evidence.contains("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY")
            && evidence.contains("kubernetes_deployment_v1.app"),
        "{evidence}"
    );

    // A Secret without AWS keys: nothing.
    let other = tf
        .replace("AWS_ACCESS_KEY_ID", "DB_USER")
        .replace("AWS_SECRET_ACCESS_KEY", "DB_PASSWORD");
    assert!(!found(&lint(&[("app.tf", &other)]))
        .iter()
        .any(|(id, _, _)| id == "EPI-K8S-003"));
}

#[test]
fn init_containers_after_containers_keep_their_own_lines() {
    // `initContainers` written below `containers`, both with a literal key: each
    // finding points at its own container's line.
    let yaml = deployment(
        "        env:
        - name: AWS_ACCESS_KEY_ID
          value: AKIAIOSFODNN7EXAMPLE
      initContainers:
      - name: setup
        image: setup:1
        env:
        - name: AWS_ACCESS_KEY_ID
          value: AKIAI44QH8DHBEXAMPLE
",
    );
    let r = lint(&[("app.yaml", &yaml)]);
    let mut got: Vec<(String, String)> = r
        .findings()
        .iter()
        .map(|f| {
            let container = if f.evidence.contains("`setup`") {
                "setup"
            } else {
                "app"
            };
            (container.to_owned(), f.location.to_string())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("app".to_owned(), "app.yaml:14".to_owned()),
            ("setup".to_owned(), "app.yaml:20".to_owned()),
        ],
        "{:#?}",
        r.findings()
    );
    assert!(r.findings().iter().all(|f| f.rule_id == "EPI-K8S-002"));
}

#[test]
fn items_of_a_kind_list_are_linted_at_their_lines() {
    let web = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ns
spec:
  template:
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: web:1
";
    let agent = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: ns
spec:
  template:
    spec:
      hostNetwork: true
      serviceAccountName: agent
      containers:
      - name: agent
        image: agent:1
";
    // What `kubectl get deploy,ds -o yaml` prints: the same objects as items.
    let item = |doc: &str| -> String {
        doc.lines()
            .enumerate()
            .map(|(i, line)| format!("{}{line}\n", if i == 0 { "- " } else { "  " }))
            .collect()
    };
    let yaml = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}",
        item(web),
        item(agent)
    );
    let r = lint(&[("list.yaml", &yaml)]);
    assert_eq!(
        found(&r),
        [f("EPI-K8S-001", Severity::High, "list.yaml:24")]
    );
    assert!(
        r.findings()[0].evidence.contains("DaemonSet ns/agent"),
        "{}",
        r.findings()[0].evidence
    );

    // The same objects as separate documents give the same finding.
    let r = lint(&[("ds.yaml", agent)]);
    assert_eq!(found(&r), [f("EPI-K8S-001", Severity::High, "ds.yaml:9")]);
}

// ---------- launch templates ----------

/// A launch template used by an EKS managed node group.
fn node_template(metadata_options: &str) -> String {
    format!(
        "resource \"aws_launch_template\" \"lt\" {{\n  name_prefix = \"n-\"\n{metadata_options}}}\n\nresource \"aws_eks_node_group\" \"ng\" {{\n  cluster_name    = \"c\"\n  node_group_name = \"ng\"\n  node_role_arn   = \"arn:aws:iam::123456789012:role/node\"\n  subnet_ids      = [\"subnet-1\"]\n  scaling_config {{\n    desired_size = 1\n    max_size     = 1\n    min_size     = 1\n  }}\n  launch_template {{\n    id      = aws_launch_template.lt.id\n    version = aws_launch_template.lt.latest_version\n  }}\n}}\n"
    )
}

/// Findings on the launch template only (`lt.tf` lines 1..=N of the template).
fn template_findings(r: &Report) -> Vec<(String, Severity, String)> {
    found(r)
        .into_iter()
        .filter(|(id, _, _)| id.starts_with("EPI-TF-00"))
        .collect()
}

/// The evidence of the first `rule_id` finding of `r`.
fn evidence_of<'a>(r: &'a Report, rule_id: &str) -> &'a str {
    &r.findings()
        .iter()
        .find(|f| f.rule_id == rule_id)
        .unwrap()
        .evidence
}

/// Lints `node_template(metadata_options)`: the template's only finding is
/// EPI-TF-004 at `location`. Returns the report and that finding's evidence.
fn assert_only_tf004(metadata_options: &str, location: &str) -> (Report, String) {
    let r = lint(&[("lt.tf", &node_template(metadata_options))]);
    assert_eq!(
        template_findings(&r),
        [f("EPI-TF-004", Severity::Medium, location)],
        "{:#?}",
        r.findings()
    );
    let evidence = evidence_of(&r, "EPI-TF-004").to_owned();
    (r, evidence)
}

#[test]
fn dynamic_metadata_options_cannot_be_checked_and_says_so() {
    let mo = "  dynamic \"metadata_options\" {\n    for_each = var.imds\n    content {\n      http_tokens                 = metadata_options.value.tokens\n      http_put_response_hop_limit = metadata_options.value.hops\n    }\n  }\n";
    let (r, evidence) = assert_only_tf004(mo, "lt.tf:3");
    assert!(evidence.contains("dynamic block"), "{evidence}");
    // Not mistaken for a missing block.
    assert!(!r.findings().iter().any(|f| f.rule_id == "EPI-TF-001"));
}

#[test]
fn hop_limit_zero_is_not_a_valid_hop_limit() {
    let mo = "  metadata_options {\n    http_endpoint               = \"enabled\"\n    http_tokens                 = \"required\"\n    http_put_response_hop_limit = 0\n  }\n";
    let (r, evidence) = assert_only_tf004(mo, "lt.tf:6");
    assert!(
        evidence.contains("http_put_response_hop_limit = 0 is not a valid hop limit (1-64)"),
        "{evidence}"
    );
    // 0 is neither "protected" (1) nor "too high" (>= 2).
    assert!(!r.findings().iter().any(|f| f.rule_id == "EPI-TF-003"));
}
