//! Credentials that an SDK's default chain uses before Pod Identity.
//!
//! Every SDK's default chain tries, in order: environment keys, the shared
//! config/credentials files (profile), web identity (IRSA), then container
//! credentials (Pod Identity), then IMDS. Anything in the first three wins.

use std::path::PathBuf;

use eks_pod_identity_provider::Env;

use super::probe::{key_id_hint, Probe};
use crate::report::{Finding, Location, ProbeStatus, Severity};
use crate::rules;

pub(crate) const PROBE: &str = "env-shadowing";

/// Keys in a profile section that make it a credential source.
const CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "role_arn",
    "credential_process",
    "credential_source",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
];

pub(crate) fn probe(env: &dyn Env) -> Probe {
    let mut p = Probe::new(PROBE, None);
    let loc = || Location::probe(PROBE, None);

    let key_vars: Vec<&str> = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    .into_iter()
    .filter(|v| env.non_empty(v).is_some())
    .collect();
    if !key_vars.is_empty() {
        let shown = env
            .non_empty("AWS_ACCESS_KEY_ID")
            .map(|k| format!(" (AWS_ACCESS_KEY_ID {})", key_id_hint(&k)))
            .unwrap_or_default();
        let text = format!("{} set{shown}", key_vars.join(", "));
        p.finding(Finding::new(&rules::ENV_STATIC_KEYS, text.clone(), loc()));
        p.outcome("static_keys", ProbeStatus::Misconfigured, text);
    }

    let profile_var = env.non_empty("AWS_PROFILE");
    let profile = profile_var.clone().unwrap_or_else(|| "default".into());
    let home = env.non_empty("HOME").map(PathBuf::from);
    let credentials_file = env
        .non_empty("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_file = env
        .non_empty("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));

    let mut profile_found = false;
    for (path, is_config) in [(credentials_file, false), (config_file, true)] {
        let Some(path) = path else { continue };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let section = if is_config && profile != "default" {
            format!("profile {profile}")
        } else {
            profile.clone()
        };
        if let Some(keys) = profile_keys(&text, &section) {
            profile_found = true;
            let found: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| CREDENTIAL_KEYS.contains(k))
                .collect();
            if !found.is_empty() {
                let text = format!("{}: [{section}] has {}", path.display(), found.join(", "));
                p.finding(Finding::new(&rules::ENV_SHARED_FILES, text.clone(), loc()));
                p.outcome("shared_file_credentials", ProbeStatus::Misconfigured, text);
            }
        }
    }

    if let Some(name) = profile_var {
        let text = if profile_found {
            format!("AWS_PROFILE={name}")
        } else {
            format!("AWS_PROFILE={name}, but no such profile in the shared files (some SDKs then fail instead of using Pod Identity)")
        };
        p.finding(Finding::new(&rules::ENV_PROFILE_SET, text.clone(), loc()));
        p.outcome("profile_set", ProbeStatus::Misconfigured, text);
    }

    let role = env.non_empty("AWS_ROLE_ARN");
    let file = env.non_empty("AWS_WEB_IDENTITY_TOKEN_FILE");
    if role.is_some() || file.is_some() {
        let (text, sev) = match (&role, &file) {
            (Some(r), Some(_)) => (
                format!("AWS_ROLE_ARN={r} and AWS_WEB_IDENTITY_TOKEN_FILE set"),
                Severity::High,
            ),
            (Some(r), None) => (
                format!("AWS_ROLE_ARN={r} set (without AWS_WEB_IDENTITY_TOKEN_FILE)"),
                Severity::Medium,
            ),
            _ => (
                "AWS_WEB_IDENTITY_TOKEN_FILE set (without AWS_ROLE_ARN)".to_owned(),
                Severity::Medium,
            ),
        };
        p.finding(Finding::new(&rules::ENV_IRSA, text.clone(), loc()).with_severity(sev));
        p.outcome("irsa_vars", ProbeStatus::Misconfigured, text);
    }

    if p.outcomes.is_empty() {
        p.outcome(
            "none",
            ProbeStatus::Ok,
            "no static keys, profile, shared-file credentials or IRSA variables",
        );
    }
    p
}

/// The keys of INI section `[section]`, if present (case-sensitive names, like the SDKs).
fn profile_keys(text: &str, section: &str) -> Option<Vec<String>> {
    let mut inside = false;
    let mut found = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = name == section;
            found |= inside;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                if !v.trim().is_empty() {
                    keys.push(k.trim().to_ascii_lowercase());
                }
            }
        }
    }
    found.then_some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_are_matched_exactly() {
        let text = "[default]\naws_access_key_id = AKIA\n[profile  dev]\nrole_arn=x\n[other]\n";
        assert_eq!(
            profile_keys(text, "default").unwrap(),
            ["aws_access_key_id"]
        );
        assert_eq!(profile_keys(text, "profile dev").unwrap(), ["role_arn"]);
        assert!(profile_keys(text, "other").unwrap().is_empty());
        assert!(profile_keys(text, "missing").is_none());
    }
}
