//! hostNetwork severities and suppressions, SARIF output, skipped-file
//! warnings and exit codes of `pod-identity-doctor lint`.

use eks_pod_identity_doctor::cli::run;
use eks_pod_identity_doctor::report::{ExitStatus, Severity};

mod lint_support;
use lint_support::{found, lint};

fn doctor(args: &[&str]) -> (ExitStatus, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["pod-identity-doctor"];
    argv.extend_from_slice(args);
    let status = run(argv, &mut out, &mut err);
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn daemonset(name: &str, image: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: kube-system\n{extra_meta}spec:\n  template:\n    spec:\n      serviceAccountName: {name}\n      hostNetwork: true\n      containers:\n        - name: c\n          image: {image}\n"
    )
}

#[test]
fn node_agents_are_reported_lower_than_applications() {
    let agent = daemonset(
        "node-exporter",
        "quay.io/prometheus/node-exporter:v1.8.0",
        "",
    );
    let r = lint(&[("ds.yaml", &agent)]);
    assert_eq!(found(&r)[0].1, Severity::Low);
    assert!(r.findings()[0].evidence.contains("known node agent"));
    let app = daemonset("shop", "example.com/shop:1", "");
    assert_eq!(found(&lint(&[("ds.yaml", &app)]))[0].1, Severity::High);
}

#[test]
fn suppressions_need_a_reason() {
    let app = daemonset("shop", "example.com/shop:1", "");
    // Inline comment on the line above.
    let commented = app.replace(
        "      hostNetwork: true\n",
        "      # pod-identity-doctor:ignore EPI-K8S-001 reviewed: needs the host's ports\n      hostNetwork: true\n",
    );
    let r = lint(&[("ds.yaml", &commented)]);
    assert_eq!(found(&r), []);
    // Without a reason: kept, with a warning.
    let bare = app.replace(
        "      hostNetwork: true\n",
        "      hostNetwork: true # pod-identity-doctor:ignore EPI-K8S-001\n",
    );
    let r = lint(&[("ds.yaml", &bare)]);
    assert_eq!(found(&r).len(), 1);
    assert!(r.warnings()[0].contains("without a reason"));
    // Annotation on the workload.
    let annotated = daemonset(
        "shop",
        "example.com/shop:1",
        "  annotations:\n    pod-identity-doctor/ignore: \"EPI-K8S-001 reviewed by security\"\n",
    );
    assert_eq!(found(&lint(&[("ds.yaml", &annotated)])), []);
}

#[test]
fn helm_release_values_that_turn_on_host_network() {
    let set = "resource \"helm_release\" \"shop\" {\n  name  = \"shop\"\n  chart = \"shop\"\n  set {\n    name  = \"hostNetwork\"\n    value = \"true\"\n  }\n}\n";
    assert_eq!(
        found(&lint(&[("h.tf", set)])),
        [(
            "EPI-K8S-001".to_owned(),
            Severity::High,
            "h.tf:4".to_owned()
        )]
    );
    let values = "resource \"helm_release\" \"exporter\" {\n  name  = \"node-exporter\"\n  chart = \"prometheus-node-exporter\"\n  values = [<<-EOT\n    hostNetwork: true\n  EOT\n  ]\n}\n";
    assert_eq!(
        found(&lint(&[("h.tf", values)])),
        [("EPI-K8S-001".to_owned(), Severity::Low, "h.tf:5".to_owned())]
    );
    let off = set.replace("\"true\"", "\"false\"");
    assert_eq!(found(&lint(&[("h.tf", &off)])), []);
}

#[test]
fn sarif_output_for_code_scanning() {
    let (status, out, _) = doctor(&["lint", "--format", "sarif", "tests/fixtures/blog"]);
    assert_eq!(status, ExitStatus::Findings);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("SARIF is JSON");
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pod-identity-doctor");
    let results = run["results"].as_array().unwrap();
    let hop = results
        .iter()
        .find(|r| r["ruleId"] == "EPI-TF-003")
        .expect("hop limit result");
    assert_eq!(hop["level"], "error");
    let loc = &hop["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "tests/fixtures/blog/main.tf"
    );
    assert_eq!(loc["region"]["startLine"], 60);
    let rule_ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[idx], r["ruleId"]);
    }
}

#[test]
fn ignore_flag_and_config_file() {
    let (full, full_out, _) = doctor(&["lint", "tests/fixtures/blog"]);
    assert_eq!(full, ExitStatus::Findings);
    assert!(full_out.contains("EPI-TF-003") && full_out.contains("EPI-TF-010"));
    let (_, out, _) = doctor(&[
        "lint",
        "--ignore",
        "EPI-TF-003",
        "--ignore",
        "epi-tf-010",
        "tests/fixtures/blog",
    ]);
    assert!(!out.contains("EPI-TF-003"), "{out}");
    assert!(!out.contains("EPI-TF-010"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("doctor.yaml");
    std::fs::write(
        &cfg,
        "ignore:\n  - rule: EPI-TF-003\n    path: tests/fixtures/blog/*\n    reason: reviewed\n",
    )
    .unwrap();
    let (_, out, _) = doctor(&[
        "lint",
        "--config",
        cfg.to_str().unwrap(),
        "tests/fixtures/blog",
    ]);
    assert!(!out.contains("EPI-TF-003"), "{out}");
    assert!(out.contains("EPI-TF-010"), "{out}");

    std::fs::write(&cfg, "ignore:\n  - rule: EPI-TF-003\n    reason: \"\"\n").unwrap();
    let (status, _, err) = doctor(&[
        "lint",
        "--config",
        cfg.to_str().unwrap(),
        "tests/fixtures/blog",
    ]);
    assert_eq!(status, ExitStatus::Error);
    assert!(err.contains("empty reason"), "{err}");
    let (status, _, err) = doctor(&["lint", "--ignore", "EPI-NOPE-1", "tests/fixtures/blog"]);
    assert_eq!(status, ExitStatus::Error);
    assert!(err.contains("unknown rule"), "{err}");
}

#[test]
fn skipped_files_warn_and_the_exit_code_follows_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.tf"), "resource \"x\" {\n").unwrap();
    std::fs::write(
        dir.path().join("nodes.tf"),
        "resource \"aws_eks_node_group\" \"ng\" {\n  ami_type = \"AL2_x86_64\"\n}\n",
    )
    .unwrap();
    let (status, out, err) = doctor(&["lint", dir.path().to_str().unwrap()]);
    assert_eq!(status, ExitStatus::Findings);
    assert!(err.contains("broken.tf"), "{err}");
    assert!(out.contains("warning: skipped"), "{out}");
    assert!(out.contains("1 file not checked, see warnings)"), "{out}");
    assert!(out.contains("EPI-TF-007"), "{out}");
    let (_, json, _) = doctor(&["lint", "--json", dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["warnings"][0].as_str().unwrap().contains("broken.tf"));
}
