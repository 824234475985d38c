//! Helpers shared by the lint test files: lint in-memory sources, and list
//! findings as `(rule, severity, location)` triples to compare whole.
// Each test binary compiles this module on its own and uses part of it.
#![allow(dead_code)]

use eks_pod_identity_doctor::lint::Linter;
use eks_pod_identity_doctor::report::{Report, Severity};

/// Lints `(file name, text)` pairs as one run; panics if a source does not parse.
pub fn lint(files: &[(&str, &str)]) -> Report {
    let mut linter = Linter::new();
    for (name, text) in files {
        linter.add_source(name, *text).expect("parses");
    }
    linter.finish()
}

/// `(rule, severity, location)` of every finding.
pub fn found(report: &Report) -> Vec<(String, Severity, String)> {
    report
        .findings()
        .iter()
        .map(|f| (f.rule_id.clone(), f.severity, f.location.to_string()))
        .collect()
}

/// One expected finding, in the shape [`found`] returns.
pub fn f(rule: &str, severity: Severity, location: &str) -> (String, Severity, String) {
    (rule.to_owned(), severity, location.to_owned())
}
