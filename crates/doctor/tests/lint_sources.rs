//! Where node IMDS settings, add-ons and trust policies come from in real
//! configurations: node-group modules and their per-version defaults,
//! variables/locals/tfvars, node groups without launch templates, account
//! defaults, Karpenter and eksctl, launch-template scope, add-on detection,
//! trust-policy shapes, and robustness (skipped files, `.tf.json`, JSON
//! manifests, `List`, Argo `Rollout`, local modules).

use eks_pod_identity_doctor::lint::{lint_paths, LintError};
use eks_pod_identity_doctor::report::{Severity, Verdict};

mod lint_support;
use lint_support::{f, found, lint};

fn eks(version: &str, groups: &str) -> String {
    format!(
        "module \"eks\" {{\n  source  = \"terraform-aws-modules/eks/aws\"\n{version}\n  eks_managed_node_groups = {{\n{groups}\n  }}\n}}\n"
    )
}

// ---------- terraform-aws-modules/eks per major version ----------

#[test]
fn module_defaults_decide_per_major_version() {
    let group = "    a = { instance_types = [\"m6i.large\"] }";
    // v18-v20 default to hop limit 2: a leak, reported at the module call.
    for v in ["~> 18.0", "19.21.0", "~> 20.8"] {
        let r = lint(&[("main.tf", &eks(&format!("  version = \"{v}\""), group))]);
        assert_eq!(
            found(&r),
            [f("EPI-TF-003", Severity::High, "main.tf:1")],
            "{v}"
        );
        assert!(r.findings()[0].evidence.contains("module default"), "{v}");
        assert_eq!(r.verdict(Severity::High), Verdict::LeaksNodeRole);
    }
    // v21 defaults to required / hop 1: protected.
    let r = lint(&[("main.tf", &eks("  version = \"~> 21.0\"", group))]);
    assert_eq!(found(&r), []);
    // v17 worker groups leave IMDSv1 on.
    let v17 = "module \"eks\" {\n  source  = \"terraform-aws-modules/eks/aws\"\n  version = \"17.24.0\"\n  worker_groups = [{ instance_type = \"m5.large\" }]\n}\n";
    let rules: Vec<_> = found(&lint(&[("main.tf", v17)]))
        .into_iter()
        .map(|(r, s, _)| (r, s))
        .collect();
    assert_eq!(
        rules,
        [
            ("EPI-TF-002".to_owned(), Severity::High),
            ("EPI-TF-004".to_owned(), Severity::Medium)
        ]
    );
}

#[test]
fn unknown_or_ambiguous_versions_are_cannot_check_never_protected() {
    let group = "    a = {}";
    for version in [
        "",
        "  version = \">= 20.0\"",
        "  version = \"~> 20\"",
        "  version = var.v",
    ] {
        let r = lint(&[("main.tf", &eks(version, group))]);
        assert_eq!(
            found(&r),
            [f("EPI-TF-008", Severity::Medium, "main.tf:1")],
            "{version:?}"
        );
        assert_ne!(r.verdict(Severity::Medium), Verdict::Protected);
    }
    let v17_inputs = "module \"eks\" {\n  source = \"terraform-aws-modules/eks/aws\"\n  worker_groups = [{ instance_type = \"m5.large\" }]\n}\n";
    assert_eq!(
        found(&lint(&[("main.tf", v17_inputs)])),
        [f("EPI-TF-008", Severity::Medium, "main.tf:3")]
    );
    // Explicit settings decide whatever the version.
    let explicit = "    a = { metadata_options = { http_tokens = \"required\", http_put_response_hop_limit = 1 } }";
    assert_eq!(found(&lint(&[("main.tf", &eks("", explicit))])), []);
}

#[test]
fn v20_group_map_replaces_the_defaults_as_a_whole() {
    // Only the hop limit in the group's map: the module leaves http_tokens unset.
    let group = "    a = {\n      metadata_options = { http_put_response_hop_limit = 1 }\n    }";
    let r = lint(&[("main.tf", &eks("  version = \"~> 20.0\"", group))]);
    assert_eq!(found(&r), [f("EPI-TF-002", Severity::High, "main.tf:6")]);
    assert!(r.findings()[0].evidence.contains("as a whole"));
    // v21 merges per key: the module's http_tokens = "required" stays.
    let r = lint(&[("main.tf", &eks("  version = \"~> 21.0\"", group))]);
    assert_eq!(found(&r), []);
    // *_defaults apply when the group says nothing (v18-v20).
    let src = eks("  version = \"~> 20.0\"", "    a = {}").replace(
        "  eks_managed_node_groups",
        "  eks_managed_node_group_defaults = {\n    metadata_options = { http_tokens = \"required\", http_put_response_hop_limit = 1 }\n  }\n  eks_managed_node_groups",
    );
    assert_eq!(found(&lint(&[("main.tf", &src)])), []);
}

#[test]
fn submodules_and_cloudposse_are_recognised() {
    let sub = "module \"ng\" {\n  source  = \"terraform-aws-modules/eks/aws//modules/eks-managed-node-group\"\n  version = \"20.8.4\"\n  name    = \"ng\"\n}\n";
    assert_eq!(
        found(&lint(&[("ng.tf", sub)])),
        [f("EPI-TF-003", Severity::High, "ng.tf:1")]
    );
    let cp = "module \"ng\" {\n  source  = \"cloudposse/eks-node-group/aws\"\n  version = \"3.4.0\"\n  metadata_http_put_response_hop_limit = 1\n}\n";
    assert_eq!(found(&lint(&[("cp.tf", cp)])), []);
    let cp_default = cp.replace("  metadata_http_put_response_hop_limit = 1\n", "");
    assert_eq!(
        found(&lint(&[("cp.tf", &cp_default)])),
        [f("EPI-TF-003", Severity::High, "cp.tf:1")]
    );
}

// ---------- values ----------

#[test]
fn variables_tfvars_and_locals_resolve_with_provenance() {
    let main = "variable \"hop\" {\n  default = 1\n}\nlocals {\n  mo = { http_tokens = \"required\", http_put_response_hop_limit = var.hop }\n}\nmodule \"eks\" {\n  source  = \"terraform-aws-modules/eks/aws\"\n  version = \"~> 20.0\"\n  eks_managed_node_groups = {\n    a = { metadata_options = local.mo }\n  }\n}\n";
    assert_eq!(found(&lint(&[("env/main.tf", main)])), []);
    let r = lint(&[
        ("env/main.tf", main),
        ("env/prod.auto.tfvars", "\nhop = 2\n"),
    ]);
    assert_eq!(
        found(&r),
        [f("EPI-TF-003", Severity::High, "env/prod.auto.tfvars:2")]
    );
    let evidence = &r.findings()[0].evidence;
    assert!(
        evidence.contains("from var.hop (env/prod.auto.tfvars), env/prod.auto.tfvars:2"),
        "{evidence}"
    );
    // A launch template's variable resolves too.
    let lt = "variable \"hop\" {\n  default = 2\n}\nresource \"aws_launch_template\" \"lt\" {\n  user_data = base64encode(\"/etc/eks/bootstrap.sh demo\")\n  metadata_options {\n    http_tokens = \"required\"\n    http_put_response_hop_limit = var.hop\n  }\n}\n";
    let r = lint(&[("lt.tf", lt)]);
    assert_eq!(found(&r), [f("EPI-TF-003", Severity::High, "lt.tf:2")]);
    assert!(r.findings()[0]
        .evidence
        .contains("var.hop (default, lt.tf:2)"));
}

// ---------- other places that set node IMDS ----------

#[test]
fn node_groups_without_launch_template_depend_on_ami_type() {
    let ng = |ami: &str| {
        format!("resource \"aws_eks_node_group\" \"ng\" {{\n  cluster_name = \"c\"\n{ami}}}\n")
    };
    let r = lint(&[("ng.tf", &ng("  ami_type = \"AL2_x86_64\"\n"))]);
    assert_eq!(found(&r), [f("EPI-TF-007", Severity::High, "ng.tf:3")]);
    assert!(r.findings()[0].evidence.contains("IMDSv1"));
    let r = lint(&[("ng.tf", &ng("  ami_type = \"AL2023_x86_64_STANDARD\"\n"))]);
    assert_eq!(found(&r), [f("EPI-TF-007", Severity::High, "ng.tf:3")]);
    assert!(!r.findings()[0].evidence.contains("IMDSv1"));
    let r = lint(&[("ng.tf", &ng("  ami_type = \"BOTTLEROCKET_x86_64\"\n"))]);
    assert_eq!(found(&r), [f("EPI-TF-007", Severity::Medium, "ng.tf:3")]);
    // A launch template that is not in the linted files cannot be checked.
    let r = lint(&[(
        "ng.tf",
        &ng("  launch_template {\n    id = var.lt_id\n  }\n"),
    )]);
    assert_eq!(found(&r), [f("EPI-TF-008", Severity::Medium, "ng.tf:3")]);
    assert!(r.findings()[0].evidence.contains("id = var.lt_id"));
}

#[test]
fn account_level_metadata_defaults() {
    let src = "resource \"aws_ec2_instance_metadata_defaults\" \"d\" {\n  http_tokens = \"required\"\n  http_put_response_hop_limit = 2\n}\n";
    assert_eq!(
        found(&lint(&[("acct.tf", src)])),
        [f("EPI-TF-009", Severity::Medium, "acct.tf:3")]
    );
    let ok = src.replace("= 2", "= 1");
    assert_eq!(found(&lint(&[("acct.tf", &ok)])), []);
}

const NODECLASS: &str = "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: default\nspec:\n  amiSelectorTerms:\n    - alias: al2023@latest\n  metadataOptions:\n    httpTokens: required\n    httpPutResponseHopLimit: 2\n";

#[test]
fn karpenter_node_classes_in_yaml_and_terraform() {
    assert_eq!(
        found(&lint(&[("nc.yaml", NODECLASS)])),
        [f("EPI-K8S-011", Severity::High, "nc.yaml:10")]
    );
    let tf = format!(
        "resource \"kubectl_manifest\" \"nc\" {{\n  yaml_body = <<-YAML\n{}  YAML\n}}\n",
        NODECLASS
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    assert_eq!(
        found(&lint(&[("k.tf", &tf)])),
        [f("EPI-K8S-011", Severity::High, "k.tf:12")]
    );
    let v1_default = NODECLASS.replace("    httpPutResponseHopLimit: 2\n", "");
    assert_eq!(found(&lint(&[("nc.yaml", &v1_default)])), []);
    let beta = v1_default
        .replace("karpenter.k8s.aws/v1", "karpenter.k8s.aws/v1beta1")
        .replace("  metadataOptions:\n    httpTokens: required\n", "");
    assert_eq!(
        found(&lint(&[("nc.yaml", &beta)])),
        [f("EPI-K8S-012", Severity::Medium, "nc.yaml:2")]
    );
}

#[test]
fn eksctl_pod_imds() {
    let cfg = "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  name: c\n  region: eu-west-1\nmanagedNodeGroups:\n  - name: a\n    disablePodIMDS: true\n  - name: b\n";
    assert_eq!(
        found(&lint(&[("c.yaml", cfg)])),
        [f("EPI-K8S-011", Severity::High, "c.yaml:9")]
    );
}

// ---------- launch template scope ----------

#[test]
fn launch_templates_outside_eks_are_info_at_most() {
    let lt = "resource \"aws_launch_template\" \"ecs\" {\n  image_id = \"ami-1\"\n}\nresource \"aws_autoscaling_group\" \"ecs\" {\n  launch_template {\n    id = aws_launch_template.ecs.id\n  }\n}\n";
    let r = lint(&[("ecs.tf", lt)]);
    assert_eq!(found(&r), [f("EPI-TF-001", Severity::Info, "ecs.tf:1")]);
    assert_eq!(r.verdict(Severity::Low), Verdict::Protected);
    // The same template used by an EKS node-group module is a node.
    let eks = format!(
        "{lt}module \"ng\" {{\n  source  = \"terraform-aws-modules/eks/aws//modules/self-managed-node-group\"\n  version = \"~> 21.0\"\n  launch_template_id = aws_launch_template.ecs.id\n  create_launch_template = false\n}}\n"
    );
    assert_eq!(
        found(&lint(&[("ecs.tf", &eks)])),
        [f("EPI-TF-001", Severity::High, "ecs.tf:1")]
    );
}

// ---------- add-on and trust policies ----------

const ASSOC: &str = "resource \"aws_eks_pod_identity_association\" \"a\" {\n  cluster_name    = \"c\"\n  namespace       = \"ns\"\n  service_account = \"sa\"\n  role_arn        = \"arn:aws:iam::111122223333:role/r\"\n}\n";

#[test]
fn agent_add_on_is_found_in_every_shape() {
    assert_eq!(found(&lint(&[("a.tf", ASSOC)]))[0].0, "EPI-TF-020");
    for addon in [
        "resource \"aws_eks_addon\" \"this\" {\n  for_each = toset([\"vpc-cni\", \"eks-pod-identity-agent\"])\n  cluster_name = \"c\"\n  addon_name = each.key\n}\n",
        "module \"eks\" {\n  source = \"terraform-aws-modules/eks/aws\"\n  version = \"~> 21.0\"\n  addons = {\n    eks-pod-identity-agent = {}\n  }\n}\n",
        "module \"eks\" {\n  source = \"terraform-aws-modules/eks/aws\"\n  version = \"~> 20.0\"\n  cluster_addons = local.addons\n}\nlocals {\n  addons = { eks-pod-identity-agent = { most_recent = true } }\n}\n",
        "resource \"aws_eks_cluster\" \"c\" {\n  name = \"c\"\n  compute_config {\n    enabled = true\n  }\n}\n",
    ] {
        assert_eq!(found(&lint(&[("a.tf", ASSOC), ("b.tf", addon)])), [], "{addon}");
    }
    let unknown = "resource \"aws_eks_addon\" \"this\" {\n  for_each = var.addons\n  addon_name = each.key\n}\n";
    assert_eq!(
        found(&lint(&[("a.tf", ASSOC), ("b.tf", unknown)])),
        [f("EPI-TF-020", Severity::Info, "a.tf:1")]
    );
}

#[test]
fn trust_policies_with_partition_suffix_and_dynamic_statements_are_accepted() {
    let role = |doc: &str| {
        format!("{doc}resource \"aws_iam_role\" \"r\" {{\n  assume_role_policy = data.aws_iam_policy_document.t.json\n}}\n")
    };
    let partition = "data \"aws_iam_policy_document\" \"t\" {\n  statement {\n    actions = [\"sts:AssumeRole\", \"sts:TagSession\"]\n    principals {\n      type        = \"Service\"\n      identifiers = [\"pods.eks.${data.aws_partition.current.dns_suffix}\"]\n    }\n    condition {\n      test = \"StringEquals\"\n      variable = \"aws:SourceAccount\"\n      values = [\"1\"]\n    }\n  }\n}\n";
    assert_eq!(found(&lint(&[("r.tf", &role(partition))])), []);
    let other = partition.replace("pods.eks.${", "pods.${");
    assert_eq!(found(&lint(&[("r.tf", &role(&other))])), []);

    let dynamic = "data \"aws_iam_policy_document\" \"t\" {\n  dynamic \"statement\" {\n    for_each = [{ actions = [\"sts:AssumeRole\", \"sts:TagSession\"], svc = \"pods.eks.amazonaws.com\" }]\n    content {\n      actions = statement.value.actions\n      principals {\n        type        = \"Service\"\n        identifiers = [statement.value.svc]\n      }\n      condition {\n        test = \"StringEquals\"\n        variable = \"aws:SourceAccount\"\n        values = [\"1\"]\n      }\n    }\n  }\n}\n";
    assert_eq!(found(&lint(&[("r.tf", &role(dynamic))])), []);
    // The loop's statement is really read: without sts:TagSession it is reported.
    let missing_tag = dynamic.replace(", \"sts:TagSession\"", "");
    assert_eq!(
        found(&lint(&[("r.tf", &role(&missing_tag))]))
            .into_iter()
            .map(|x| x.0)
            .collect::<Vec<_>>(),
        ["EPI-TF-010"]
    );
}

#[test]
fn pod_identity_module_roles_and_addon_associations() {
    let src = "module \"pi\" {\n  source  = \"terraform-aws-modules/eks-pod-identity/aws\"\n  version = \"~> 1.0\"\n}\nresource \"aws_eks_pod_identity_association\" \"a\" {\n  cluster_name    = \"c\"\n  namespace       = \"ns\"\n  service_account = \"sa\"\n  role_arn        = module.pi.iam_role_arn\n}\nresource \"aws_eks_addon\" \"agent\" {\n  addon_name = \"eks-pod-identity-agent\"\n}\n";
    assert_eq!(
        found(&lint(&[("m.tf", src)])),
        [f("EPI-TF-014", Severity::Info, "m.tf:9")]
    );
    let addon = "resource \"aws_iam_role\" \"cni\" {\n  assume_role_policy = jsonencode({ Statement = [{ Effect = \"Allow\", Action = \"sts:AssumeRoleWithWebIdentity\", Principal = { Federated = \"x\" } }] })\n}\nresource \"aws_eks_addon\" \"cni\" {\n  addon_name = \"vpc-cni\"\n  pod_identity_association {\n    role_arn        = aws_iam_role.cni.arn\n    service_account = \"aws-node\"\n  }\n}\n";
    assert_eq!(
        found(&lint(&[("cni.tf", addon)])),
        [f("EPI-TF-022", Severity::High, "cni.tf:7")]
    );
}

// ---------- robustness ----------

#[test]
fn unparsable_files_are_skipped_with_a_warning_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("chart/templates")).unwrap();
    std::fs::write(
        p.join("chart/templates/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: {{ .Values.replicas }}\n",
    )
    .unwrap();
    std::fs::write(
        p.join("userdata.yaml"),
        "%{ for x in xs }\n- ${x}\n%{ endfor }\n",
    )
    .unwrap();
    std::fs::write(p.join("broken.tf"), "resource \"x\" {\n").unwrap();
    std::fs::write(p.join("pod.json"), "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": \"Rollout\", \"metadata\": {\"name\": \"r\"}, \"spec\": {\"template\": {\"spec\": {\"hostNetwork\": true, \"containers\": []}}}}]}\n").unwrap();
    let report = lint_paths(&[p]).expect("the run goes on");
    let warnings = report.warnings().join("\n");
    for skipped in [
        "deploy.yaml: looks like a Helm/Go template",
        "userdata.yaml: looks like a Terraform templatefile",
        "broken.tf:",
    ] {
        assert!(warnings.contains(skipped), "{skipped} not in {warnings}");
    }
    assert_eq!(report.scanned().len(), 1);
    assert_eq!(report.findings()[0].rule_id, "EPI-K8S-001");
    assert!(report.findings()[0].evidence.contains("Rollout"));

    // Only unparsable files: exit 2, with every reason.
    let only = tempfile::tempdir().unwrap();
    std::fs::write(only.path().join("broken.tf"), "resource \"x\" {\n").unwrap();
    match lint_paths(&[only.path()]) {
        Err(e @ LintError::NothingReadable { .. }) => assert!(e.to_string().contains("broken.tf")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn terraform_json_is_read_with_json_lines() {
    let json = "{\n  \"resource\": {\n    \"aws_eks_node_group\": {\n      \"ng\": {\n        \"cluster_name\": \"c\",\n        \"ami_type\": \"AL2023_x86_64_STANDARD\"\n      }\n    }\n  }\n}\n";
    assert_eq!(
        found(&lint(&[("main.tf.json", json)])),
        [f("EPI-TF-007", Severity::High, "main.tf.json:6")]
    );
}

#[test]
fn local_modules_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("modules/nodes")).unwrap();
    std::fs::create_dir_all(p.join("live")).unwrap();
    std::fs::write(
        p.join("live/main.tf"),
        "module \"nodes\" {\n  source = \"../modules/nodes\"\n  hop    = 2\n}\n",
    )
    .unwrap();
    std::fs::write(
        p.join("modules/nodes/main.tf"),
        "variable \"hop\" {\n  default = 1\n}\nresource \"aws_launch_template\" \"n\" {\n  user_data = \"nodeadm\"\n  metadata_options {\n    http_tokens = \"required\"\n    http_put_response_hop_limit = var.hop\n  }\n}\n",
    )
    .unwrap();
    let report = lint_paths(&[p.join("live")]).unwrap();
    assert_eq!(report.scanned().len(), 2);
    let hop = &report.findings()[0];
    assert_eq!(hop.rule_id, "EPI-TF-003");
    assert!(
        hop.evidence.contains("module.nodes input hop"),
        "{}",
        hop.evidence
    );
}
