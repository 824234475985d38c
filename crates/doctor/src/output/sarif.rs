//! SARIF 2.1.0 output (`--format sarif`), for code-scanning UIs (GitHub code
//! scanning, GitLab, Azure DevOps).
//!
//! One run; `tool.driver.rules` lists every rule of [`crate::rules::ALL`] that
//! has a result, with its fix as `help`; each finding becomes a result with
//! its rule id, a level (`error` for high/critical, `warning` for medium,
//! `note` for low/info), the title and evidence as message, and the
//! `file:line` as physical location. The severity is also kept as
//! `properties.severity`, and `properties.security-severity` carries the
//! numeric score GitHub uses to rank security alerts. Findings of runtime
//! `check` probes have no file, so they carry a logical location (the probe).
//!
//! ```
//! use eks_pod_identity_doctor::lint::lint_source;
//! use eks_pod_identity_doctor::output::sarif;
//! use eks_pod_identity_doctor::report::Severity;
//!
//! let report = lint_source("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  serviceAccountName: app\n  containers: [{name: c, image: busybox}]\n").unwrap();
//! let doc = sarif::to_value(&report, Severity::High);
//! assert_eq!(doc["version"], "2.1.0");
//! let result = &doc["runs"][0]["results"][0];
//! assert_eq!(result["ruleId"], "EPI-K8S-001");
//! assert_eq!(result["level"], "error");
//! assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 5);
//! ```

use serde_json::{json, Value};

use super::json::TOOL_NAME;
use crate::report::{Location, Report, Severity};
use crate::rules;

/// The SARIF schema this output follows.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score (critical >= 9, high >= 7, medium >= 4).
fn score(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.0",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// The SARIF document of `report` as a value (`fail_on` is recorded in the run's properties).
pub fn to_value(report: &Report, fail_on: Severity) -> Value {
    let mut used: Vec<&str> = report
        .findings()
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect();
    used.sort_unstable();
    used.dedup();
    let rules: Vec<Value> = used
        .iter()
        .map(|id| match rules::by_id(id) {
            Some(r) => json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.title },
                "help": { "text": r.fix },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": {
                    "severity": r.severity.as_str(),
                    "security-severity": score(r.severity),
                    "tags": ["security"],
                },
            }),
            None => json!({ "id": id, "name": id }),
        })
        .collect();
    let results: Vec<Value> = report
        .findings()
        .iter()
        .map(|f| {
            let location = match &f.location {
                Location::File { path, line } => json!({
                    "physicalLocation": {
                        "artifactLocation": { "uri": path.replace('\\', "/") },
                        "region": { "startLine": (*line).max(1) },
                    }
                }),
                other => json!({
                    "logicalLocations": [{ "name": other.to_string(), "kind": "module" }]
                }),
            };
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": used.iter().position(|id| *id == f.rule_id).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": format!("{} ({})\nFix: {}", f.title, f.evidence, f.fix) },
                "locations": [location],
                "properties": {
                    "severity": f.severity.as_str(),
                    "security-severity": score(f.severity),
                    "category": f.category,
                },
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .warnings()
        .iter()
        .map(|w| json!({ "level": "warning", "message": { "text": format!("skipped {w}") } }))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            "properties": {
                "command": report.command().as_str(),
                "fail_on": fail_on.as_str(),
                "verdict": report.verdict(fail_on),
            },
        }]
    })
}

/// The SARIF document, pretty-printed with a trailing newline.
pub fn render(report: &Report, fail_on: Severity) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(report, fail_on)).unwrap_or_default();
    s.push('\n');
    s
}
