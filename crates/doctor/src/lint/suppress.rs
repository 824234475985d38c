//! Suppressions: findings the user has reviewed and accepted.
//!
//! - An inline comment on the finding's line or the line above it:
//!   `# pod-identity-doctor:ignore EPI-K8S-001 <reason>` (also after `//`).
//! - A workload annotation: `pod-identity-doctor/ignore: "EPI-K8S-001 <reason>"`.
//! - `--ignore RULE` on the command line, and a config file (`--config`):
//!
//!   ```yaml
//!   ignore:
//!     - rule: EPI-K8S-001
//!       path: charts/agents/*     # optional glob on the finding's path
//!       reason: node agent, reviewed
//!   ```
//!
//! A suppression must give a reason; one without is not honoured and is
//! reported as a warning, so a bare `ignore` cannot silently hide a leak.

use serde::Deserialize;

use super::trust_policy::glob_match;
use crate::report::{Location, Report};

/// The marker of an inline suppression comment.
pub const MARKER: &str = "pod-identity-doctor:ignore";

/// The rule ids of `text` (`"EPI-K8S-001, EPI-TF-003 reason"`), if a reason follows them.
pub(crate) fn rules_with_reason(text: &str) -> Vec<String> {
    let mut rules = Vec::new();
    let mut words = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    let mut reason = false;
    for w in words.by_ref() {
        let w = w.trim_end_matches(':');
        if w.to_ascii_uppercase().starts_with("EPI-") {
            rules.push(w.to_ascii_uppercase());
        } else {
            reason = true;
            break;
        }
    }
    if reason {
        rules
    } else {
        Vec::new()
    }
}

/// Drops findings suppressed by inline comments in `texts` (`(path, text)`);
/// comments without a reason become warnings.
pub(crate) fn inline(report: &mut Report, texts: &[(String, String)]) {
    let mut warnings = Vec::new();
    let suppressed = |path: &str, line: u32, rule: &str, warnings: &mut Vec<String>| {
        let Some((_, text)) = texts.iter().find(|(p, _)| p == path) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().collect();
        let candidates = [line.checked_sub(2), line.checked_sub(1)];
        candidates.into_iter().flatten().any(|i| {
            let Some(l) = lines.get(i as usize) else {
                return false;
            };
            let Some(pos) = l.find(MARKER) else {
                return false;
            };
            let rest = &l[pos + MARKER.len()..];
            let rules = rules_with_reason(rest);
            if rules.is_empty() && rest.to_ascii_uppercase().contains(rule) {
                warnings.push(format!(
                    "{path}:{}: `{MARKER}` without a reason is not honoured",
                    i + 1
                ));
            }
            rules.iter().any(|r| r == rule)
        })
    };
    report.retain(|f| match &f.location {
        Location::File { path, line } => !suppressed(path, *line, &f.rule_id, &mut warnings),
        _ => true,
    });
    warnings.sort();
    warnings.dedup();
    for w in warnings {
        report.add_warning(w);
    }
}

/// One entry of a config file's `ignore` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreEntry {
    /// The rule id.
    pub rule: String,
    /// A glob on the finding's path (`*` and `?`); every path when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Why the finding is accepted (required).
    pub reason: String,
}

/// A `pod-identity-doctor` config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Findings to drop.
    #[serde(default)]
    pub ignore: Vec<IgnoreEntry>,
}

impl Config {
    /// Parses a YAML (or JSON) config file's text.
    ///
    /// # Errors
    ///
    /// A message naming the problem (bad YAML, unknown key, empty reason).
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(e) = config.ignore.iter().find(|e| e.reason.trim().is_empty()) {
            return Err(format!("ignore entry for {} has an empty reason", e.rule));
        }
        Ok(config)
    }

    /// Drops the findings this config, plus `rules` from `--ignore`, suppress.
    pub fn apply(&self, report: &mut Report, rules: &[String]) {
        report.retain(|f| {
            if rules.iter().any(|r| r.eq_ignore_ascii_case(&f.rule_id)) {
                return false;
            }
            !self.ignore.iter().any(|e| {
                e.rule.eq_ignore_ascii_case(&f.rule_id)
                    && match (&e.path, &f.location) {
                        (None, _) => true,
                        (Some(glob), Location::File { path, .. }) => glob_match(glob, path),
                        (Some(_), _) => false,
                    }
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_need_a_reason() {
        assert_eq!(
            rules_with_reason(" EPI-K8S-001 node agent"),
            ["EPI-K8S-001"]
        );
        assert_eq!(
            rules_with_reason(" epi-k8s-001, EPI-TF-003: reviewed"),
            ["EPI-K8S-001", "EPI-TF-003"]
        );
        assert!(rules_with_reason(" EPI-K8S-001").is_empty());
        assert!(Config::parse("ignore:\n  - rule: EPI-K8S-001\n    reason: ''\n").is_err());
        assert!(Config::parse("ignor: []\n").is_err());
    }
}
