//! Lints the real-world corpus (`tests/fixtures/real-world/<case>/`): public
//! Terraform and manifests from the terraform-aws-eks examples and tests, the
//! EKS Blueprints patterns, the cloudposse node-group example, and the
//! Karpenter and eksctl examples. Each case is linted on its own, as one
//! configuration, and its findings must equal `<case>/expected.txt`:
//!
//! ```text
//! # why the case is what it is
//! verdict: leaks_node_role
//! high EPI-TF-003 main.tf:38
//! ```
//!
//! Files skipped with a warning (templates) are listed as `skipped <file>`.
//!
//! Set `UPDATE_EXPECTED=1` to rewrite the files after a deliberate change (and
//! review the diff: no correct configuration may get a HIGH finding).

use std::fs;
use std::path::{Path, PathBuf};

use eks_pod_identity_doctor::lint::lint_paths;
use eks_pod_identity_doctor::report::{Report, Severity, Verdict};

const CORPUS: &str = "tests/fixtures/real-world";

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(CORPUS)
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Protected => "protected",
        Verdict::LeaksNodeRole => "leaks_node_role",
        Verdict::Misconfigured => "misconfigured",
    }
}

/// The verdict line and one `severity rule file:line` line per finding.
fn actual(case: &Path, report: &Report) -> Vec<String> {
    let case_dir = format!("{}/", case.display());
    let mut lines = vec![format!(
        "verdict: {}",
        verdict_name(report.verdict(Severity::High))
    )];
    // Skipped files are part of the expectation: `skipped <file>`.
    for w in report.warnings() {
        let file = w.split(':').next().unwrap_or(w);
        lines.push(format!(
            "skipped {}",
            file.strip_prefix(&case_dir).unwrap_or(file)
        ));
    }
    for f in report.findings() {
        let loc = f.location.to_string();
        let loc = loc.strip_prefix(&case_dir).unwrap_or(&loc).to_owned();
        lines.push(format!("{} {} {loc}", f.severity, f.rule_id));
    }
    lines
}

#[test]
fn corpus_has_at_least_twenty_cases_with_origins() {
    let cases = cases();
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    for case in &cases {
        let mut sources = 0;
        for entry in fs::read_dir(case).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "expected.txt") {
                continue;
            }
            sources += 1;
            let text = fs::read_to_string(&path).unwrap();
            let head: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
            assert!(
                head.contains("Origin: https://github.com/"),
                "{} does not name its origin at the top",
                path.display()
            );
        }
        assert!(sources > 0, "{} is empty", case.display());
        assert!(
            case.join("expected.txt").is_file(),
            "{} has no expected.txt",
            case.display()
        );
    }
}

#[test]
fn corpus_findings_match_expectations() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        // No file in the corpus may abort the run.
        let report =
            lint_paths(&[&case]).unwrap_or_else(|e| panic!("{}: lint failed: {e}", case.display()));
        let got = actual(&case, &report);
        let expected_path = case.join("expected.txt");
        let text = fs::read_to_string(&expected_path).unwrap_or_default();
        let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        let want: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        if update {
            let mut out = comments.join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&got.join("\n"));
            out.push('\n');
            fs::write(&expected_path, out).unwrap();
        } else if want != got {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                case.display(),
                want.join("\n    "),
                got.join("\n    ")
            ));
        }
        assert!(
            comments.iter().any(|c| c.len() > 2) || update,
            "{}: expected.txt must say in a comment why the case is what it is",
            case.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
