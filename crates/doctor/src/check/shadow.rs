//! Credentials that an SDK's default chain uses before Pod Identity.
//!
//! Every SDK's default chain tries, in order: environment keys, the shared
//! config/credentials files (profile), web identity (IRSA), then container
//! credentials (Pod Identity), then IMDS. Anything in the first three wins.

use std::path::PathBuf;

use eks_pod_identity_provider::Env;

use super::probe::{key_id_hint, Observation, Outcome, Probe};
use crate::report::{ProbeStatus, Severity};
use crate::rules::{self, Rule};

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

/// What the `env-shadowing` probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShadowOutcome {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` set.
    StaticKeys,
    /// The profile in a shared config or credentials file is a credential source.
    SharedFileCredentials,
    /// `AWS_PROFILE` set.
    ProfileSet,
    /// IRSA variables (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`) set.
    IrsaVars,
    /// None of the above.
    Clean,
}

impl Outcome for ShadowOutcome {
    fn name(self) -> &'static str {
        match self {
            ShadowOutcome::StaticKeys => "static_keys",
            ShadowOutcome::SharedFileCredentials => "shared_file_credentials",
            ShadowOutcome::ProfileSet => "profile_set",
            ShadowOutcome::IrsaVars => "irsa_vars",
            ShadowOutcome::Clean => "none",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            ShadowOutcome::StaticKeys => Some(&rules::ENV_STATIC_KEYS),
            ShadowOutcome::SharedFileCredentials => Some(&rules::ENV_SHARED_FILES),
            ShadowOutcome::ProfileSet => Some(&rules::ENV_PROFILE_SET),
            ShadowOutcome::IrsaVars => Some(&rules::ENV_IRSA),
            ShadowOutcome::Clean => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            ShadowOutcome::StaticKeys
            | ShadowOutcome::SharedFileCredentials
            | ShadowOutcome::ProfileSet
            | ShadowOutcome::IrsaVars => ProbeStatus::Misconfigured,
            ShadowOutcome::Clean => ProbeStatus::Ok,
        }
    }
}

/// A shared config or credentials file that could be read.
#[derive(Debug)]
pub(crate) struct SharedFile {
    /// Where it is.
    pub path: PathBuf,
    /// `~/.aws/config` (profile sections are `[profile NAME]`) rather than credentials.
    pub is_config: bool,
    /// Its text.
    pub text: String,
}

/// Runs the probe: reads the shared files the env points at, then [`classify`].
pub(crate) fn probe(env: &dyn Env) -> Probe {
    let mut p = Probe::new(PROBE, None);
    p.record_all(classify(env, &read_shared_files(env)));
    p
}

/// The shared credentials and config files (`AWS_SHARED_CREDENTIALS_FILE`,
/// `AWS_CONFIG_FILE`, else under `HOME`) that exist and can be read.
fn read_shared_files(env: &dyn Env) -> Vec<SharedFile> {
    let home = env.non_empty("HOME").map(PathBuf::from);
    let credentials_file = env
        .non_empty("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_file = env
        .non_empty("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    [(credentials_file, false), (config_file, true)]
        .into_iter()
        .filter_map(|(path, is_config)| {
            let path = path?;
            let text = std::fs::read_to_string(&path).ok()?;
            Some(SharedFile {
                path,
                is_config,
                text,
            })
        })
        .collect()
}

/// What the env and the shared files hold that an SDK's default chain would
/// use before Pod Identity. Pure.
pub(crate) fn classify(env: &dyn Env, files: &[SharedFile]) -> Vec<Observation<ShadowOutcome>> {
    let mut seen = Vec::new();
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
        seen.push(Observation::same(ShadowOutcome::StaticKeys, text));
    }

    let profile_var = env.non_empty("AWS_PROFILE");
    let profile = profile_var.clone().unwrap_or_else(|| "default".into());
    let mut profile_found = false;
    for file in files {
        let section = if file.is_config && profile != "default" {
            format!("profile {profile}")
        } else {
            profile.clone()
        };
        if let Some(keys) = profile_keys(&file.text, &section) {
            profile_found = true;
            let found: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| CREDENTIAL_KEYS.contains(k))
                .collect();
            if !found.is_empty() {
                let text = format!(
                    "{}: [{section}] has {}",
                    file.path.display(),
                    found.join(", ")
                );
                seen.push(Observation::same(
                    ShadowOutcome::SharedFileCredentials,
                    text,
                ));
            }
        }
    }

    if let Some(name) = profile_var {
        let text = if profile_found {
            format!("AWS_PROFILE={name}")
        } else {
            format!("AWS_PROFILE={name}, but no such profile in the shared files (some SDKs then fail instead of using Pod Identity)")
        };
        seen.push(Observation::same(ShadowOutcome::ProfileSet, text));
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
        seen.push(Observation::same(ShadowOutcome::IrsaVars, text).with_severity(sev));
    }

    if seen.is_empty() {
        seen.push(Observation::same(
            ShadowOutcome::Clean,
            "no static keys, profile, shared-file credentials or IRSA variables",
        ));
    }
    seen
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
    use crate::check::probe::assert_matrix;
    use eks_pod_identity_provider::MapEnv;

    #[test]
    fn outcome_matrix() {
        use ProbeStatus::{Misconfigured, Ok};
        use ShadowOutcome as S;
        assert_matrix(&[
            (
                S::StaticKeys,
                "static_keys",
                Some("EPI-ENV-001"),
                Misconfigured,
            ),
            (
                S::ProfileSet,
                "profile_set",
                Some("EPI-ENV-002"),
                Misconfigured,
            ),
            (
                S::SharedFileCredentials,
                "shared_file_credentials",
                Some("EPI-ENV-003"),
                Misconfigured,
            ),
            (S::IrsaVars, "irsa_vars", Some("EPI-ENV-004"), Misconfigured),
            (S::Clean, "none", None, Ok),
        ]);
    }

    fn env(vars: &[(&str, &str)]) -> MapEnv {
        vars.iter().copied().collect()
    }

    fn names(seen: &[Observation<ShadowOutcome>]) -> Vec<&'static str> {
        seen.iter().map(|o| o.outcome.name()).collect()
    }

    #[test]
    fn classify_finds_what_shadows_pod_identity() {
        assert_eq!(names(&classify(&env(&[]), &[])), ["none"]);

        let keys = classify(
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ]),
            &[],
        );
        assert_eq!(names(&keys), ["static_keys"]);
        assert_eq!(
            keys[0].evidence,
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY set (AWS_ACCESS_KEY_ID AKIA…)"
        );

        let files = [
            SharedFile {
                path: "/h/.aws/credentials".into(),
                is_config: false,
                text: "[dev]\naws_access_key_id = AKIA\n".into(),
            },
            SharedFile {
                path: "/h/.aws/config".into(),
                is_config: true,
                text: "[profile dev]\nregion = eu-west-1\n".into(),
            },
        ];
        let profile = classify(&env(&[("AWS_PROFILE", "dev")]), &files);
        assert_eq!(names(&profile), ["shared_file_credentials", "profile_set"]);
        assert_eq!(
            profile[0].evidence,
            "/h/.aws/credentials: [dev] has aws_access_key_id"
        );
        assert_eq!(profile[1].evidence, "AWS_PROFILE=dev");
        let missing = classify(&env(&[("AWS_PROFILE", "prod")]), &files);
        assert_eq!(names(&missing), ["profile_set"]);
        assert!(
            missing[0].evidence.contains("but no such profile"),
            "{}",
            missing[0].evidence
        );

        let irsa = classify(
            &env(&[
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ]),
            &[],
        );
        assert_eq!(
            (names(&irsa), irsa[0].severity),
            (vec!["irsa_vars"], Some(Severity::High))
        );
        let half = classify(&env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]), &[]);
        assert_eq!(half[0].severity, Some(Severity::Medium));
    }

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
