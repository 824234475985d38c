//! The corrected deploy assets (`deploy/`) and the uncorrected seed Terraform
//! (`tests/fixtures/blog/`; its origin is noted at its top).

use eks_pod_identity_doctor::lint::lint_paths;
use eks_pod_identity_doctor::report::{Location, Severity, Verdict};

#[test]
fn deploy_directory_is_clean() {
    let report = lint_paths(&["../../deploy"]).expect("deploy/ lints");
    assert!(
        report.findings().is_empty(),
        "deploy/ must be clean, got {:#?}",
        report.findings()
    );
    let scanned = report.scanned().join("\n");
    for file in [
        "terraform/nodes.tf",
        "terraform/pod_identity.tf",
        "k8s/s3-reader.yaml",
        "k8s/doctor-job.yaml",
    ] {
        assert!(scanned.contains(file), "{file} not scanned:\n{scanned}");
    }
}

#[test]
fn seed_blog_terraform_leaks_the_node_role_and_breaks_the_trust_policy() {
    let report = lint_paths(&["tests/fixtures/blog"]).expect("blog fixture lints");
    let path = "tests/fixtures/blog/main.tf";
    let hop = report
        .findings()
        .iter()
        .find(|f| f.rule_id == "EPI-TF-003")
        .expect("hop limit 2 reported");
    assert_eq!(hop.severity, Severity::High);
    assert_eq!(hop.location, Location::file(path, 60));
    assert!(hop.evidence.contains("http_put_response_hop_limit = 2"));

    let tag = report
        .findings()
        .iter()
        .find(|f| f.rule_id == "EPI-TF-010")
        .expect("missing sts:TagSession reported");
    assert_eq!(tag.severity, Severity::High);
    assert_eq!(tag.location, Location::file(path, 136));
    assert!(tag.evidence.contains("aws_iam_role.pod_identity"));

    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
}
