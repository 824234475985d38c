//! Human-readable output: findings grouped by file (or probe), one line per
//! finding, (for `check`) one line per probe with its status and outcomes,
//! the fix of each rule once, and a verdict line.
//!
//! ```text
//! pod-identity-doctor lint: 1 file scanned, 3 findings
//!
//! main.tf
//!   HIGH      EPI-TF-003   main.tf:60   IMDS hop limit 2: ... (aws_launch_template.eks_nodes: http_put_response_hop_limit = 2)
//!
//! fixes:
//!   EPI-TF-003   set http_put_response_hop_limit = 1; ...
//!
//! verdict: LEAKS NODE ROLE (2 findings at or above high; high 2, low 1)
//! ```

use std::fmt::Write as _;

use crate::report::{Location, Report, Severity};

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Renders `report` judged at `fail_on`.
pub fn render(report: &Report, fail_on: Severity) -> String {
    let mut out = String::new();
    let noun = match report.command() {
        crate::report::Command::Lint => "file",
        _ => "probe",
    };
    let _ = writeln!(
        out,
        "{} {}: {} scanned, {}",
        super::json::TOOL_NAME,
        report.command().as_str(),
        plural(report.scanned().len(), noun),
        plural(report.findings().len(), "finding"),
    );

    for w in report.warnings() {
        let _ = writeln!(out, "warning: skipped {w}");
    }

    let mut group: Option<&str> = None;
    for f in report.findings() {
        let g = f.location.group();
        if group != Some(g) {
            let _ = writeln!(out, "\n{g}");
            group = Some(g);
        }
        let loc = match &f.location {
            Location::Probe {
                target: Some(t), ..
            } => t.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<9} {:<12} {}  {} ({})",
            f.severity.as_str().to_uppercase(),
            f.rule_id,
            loc,
            f.title,
            f.evidence
        );
    }

    if !report.probes().is_empty() {
        let _ = writeln!(out, "\nprobes:");
        for p in report.probes() {
            let _ = writeln!(
                out,
                "  {:<19} {:<13} {:<28} {}",
                p.probe,
                p.status.label(),
                p.outcomes.join(","),
                p.detail
            );
        }
    }

    let mut fixes: Vec<(&str, &str)> = Vec::new();
    for f in report.findings() {
        if !fixes
            .iter()
            .any(|(id, fix)| *id == f.rule_id && *fix == f.fix)
        {
            fixes.push((&f.rule_id, &f.fix));
        }
    }
    fixes.sort();
    if !fixes.is_empty() {
        let _ = writeln!(out, "\nfixes:");
        for (id, fix) in fixes {
            let _ = writeln!(out, "  {id:<12} {fix}");
        }
    }

    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = report.count(*s);
            (n > 0).then(|| format!("{s} {n}"))
        })
        .collect();
    let failing = report.at_or_above(fail_on).count();
    let detail = if report.findings().is_empty() {
        "no findings".to_owned()
    } else if failing == 0 {
        format!("no finding at or above {fail_on}; {}", counts.join(", "))
    } else {
        format!(
            "{} at or above {fail_on}; {}",
            plural(failing, "finding"),
            counts.join(", ")
        )
    };
    // The verdict covers only what was read: say what was not.
    let detail = match report.warnings().len() {
        0 => detail,
        n => format!("{detail}; {} not checked, see warnings", plural(n, "file")),
    };
    let _ = writeln!(
        out,
        "\nverdict: {} ({detail})",
        report.verdict(fail_on).banner()
    );
    out
}
