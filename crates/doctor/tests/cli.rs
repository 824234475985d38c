//! The built `pod-identity-doctor` binary: exit codes, output and the JSON schema snapshot.

use std::process::{Command, Output};

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pod-identity-doctor"))
        .args(args)
        .output()
        .expect("runs pod-identity-doctor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn blog_fixture_fails_with_exit_1_and_a_verdict() {
    let o = doctor(&["lint", "tests/fixtures/blog"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("tests/fixtures/blog/main.tf\n"), "{out}");
    assert!(
        out.contains("EPI-TF-003   tests/fixtures/blog/main.tf:60"),
        "{out}"
    );
    assert!(
        out.contains("EPI-TF-010   tests/fixtures/blog/main.tf:136"),
        "{out}"
    );
    assert!(out.contains("\nfixes:\n"), "{out}");
    assert!(
        out.contains("verdict: LEAKS NODE ROLE (2 findings at or above high; high 2, low 1)"),
        "{out}"
    );
}

#[test]
fn fail_on_moves_the_threshold() {
    let o = doctor(&["lint", "--fail-on", "critical", "tests/fixtures/blog"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("verdict: PROTECTED (no finding at or above critical"));

    // Medium findings fail only when the threshold is lowered to them.
    let lt = "tests/fixtures/rules/hop-limit-unset.tf";
    assert_eq!(doctor(&["lint", lt]).status.code(), Some(0));
    assert_eq!(
        doctor(&["lint", "--fail-on", "medium", lt]).status.code(),
        Some(1)
    );
    let o = doctor(&["lint", "--fail-on", "info", "../../deploy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("verdict: PROTECTED (no findings)"));
}

#[test]
fn json_output_matches_the_schema_snapshot() {
    let o = doctor(&["lint", "--json", "tests/fixtures/blog/main.tf"]);
    assert_eq!(o.status.code(), Some(1));
    let expected = include_str!("fixtures/snapshots/blog.json")
        .replace("{{version}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(stdout(&o), expected);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["schema_version"], 1);
}

#[test]
fn missing_path_exits_2_naming_it() {
    let o = doctor(&["lint", "tests/fixtures/blog", "no/such/path"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).is_empty(),
        "nothing is reported when a path is missing"
    );
    assert!(
        stderr(&o).contains("no/such/path: no such file or directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unparseable_files_exit_2_with_file_line_and_cause() {
    let o = doctor(&["lint", "tests/fixtures/invalid/broken.tf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tests/fixtures/invalid/broken.tf:4:35: invalid HCL"),
        "{}",
        stderr(&o)
    );

    let o = doctor(&["lint", "tests/fixtures/invalid/broken.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tests/fixtures/invalid/broken.yaml:10: invalid YAML"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn json_errors_are_documents_too() {
    let o = doctor(&["lint", "--json", "tests/fixtures/invalid"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON on stdout");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["exit_code"], 2);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("broken.tf:4:35"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["lint"][..],
        &["lint", "--fail-on", "severe", "tests/fixtures/blog"],
        &["lint", "Cargo.toml"],
        &["frobnicate"],
        &[],
    ] {
        let o = doctor(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?}");
    }
    let o = doctor(&["lint", "src"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no .tf, .yaml or .yml files found"));
}

#[test]
fn help_version_and_rules_exit_0() {
    assert_eq!(doctor(&["--help"]).status.code(), Some(0));
    assert_eq!(doctor(&["--version"]).status.code(), Some(0));
    let o = doctor(&["rules", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let rules: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // Every rule defined in the rules table, no more, no less.
    let mut want = defined_rule_ids();
    want.sort_unstable();
    let mut got = ids.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(want.len() >= 46, "{want:?}");

    // The text listing names each of them too.
    let o = doctor(&["rules"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for id in &want {
        assert!(
            text.lines().any(|l| l.split_whitespace().any(|w| w == *id)),
            "{id} missing from `rules`:\n{text}"
        );
    }
}

/// The `id: "EPI-…"` of every `Rule` in the source's rules table.
fn defined_rule_ids() -> Vec<&'static str> {
    let src = include_str!("../src/rules.rs");
    let ids: Vec<&str> = src
        .match_indices("id: \"EPI-")
        .map(|(i, m)| {
            let start = i + m.len() - "EPI-".len();
            let len = src[start..].find('"').expect("closing quote");
            &src[start..start + len]
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate rule id in rules.rs");
    ids
}
