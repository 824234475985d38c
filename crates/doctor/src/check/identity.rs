//! Which source our `CredentialChain` resolves to, and who that is (STS).

use std::sync::Arc;
use std::time::Duration;

use eks_pod_identity_provider::Env;
use eks_pod_identity_provider::{CredentialChain, ErrorChain, ProviderContext};
use tokio::time::{timeout_at, Instant};

use super::probe::{key_id_hint, Observation, Outcome, SharedEnv};
use crate::report::{ProbeStatus, Severity};
use crate::rules::{self, Rule};

pub(crate) const PROBE: &str = "identity";

/// What the `identity` probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentityOutcome {
    /// The chain resolved no credentials.
    Unresolved,
    /// The credentials are the node's role.
    NodeRole,
    /// STS names a role that is not the node's.
    OwnRole,
    /// Credentials resolved, but STS could not (or was not asked to) say whose.
    Unverified,
    /// The probe did not finish within the check's budget.
    TimedOut,
}

impl Outcome for IdentityOutcome {
    fn name(self) -> &'static str {
        match self {
            IdentityOutcome::Unresolved => "unresolved",
            IdentityOutcome::NodeRole => "node_role",
            IdentityOutcome::OwnRole => "own_role",
            IdentityOutcome::Unverified => "unverified",
            IdentityOutcome::TimedOut => "timeout",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            IdentityOutcome::Unresolved => Some(&rules::ID_UNRESOLVED),
            IdentityOutcome::NodeRole => Some(&rules::ID_NODE_ROLE),
            IdentityOutcome::OwnRole => Some(&rules::ID_RESOLVED),
            IdentityOutcome::Unverified => Some(&rules::ID_UNVERIFIED),
            IdentityOutcome::TimedOut => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            IdentityOutcome::Unresolved | IdentityOutcome::TimedOut => ProbeStatus::Unknown,
            IdentityOutcome::NodeRole => ProbeStatus::Leak,
            IdentityOutcome::OwnRole | IdentityOutcome::Unverified => ProbeStatus::Ok,
        }
    }
}

/// What the chain (and STS) said; judged later against the IMDS role name.
#[derive(Debug, Default)]
pub(crate) struct IdentityObservation {
    /// `pod-identity` or `imds:<role>` when credentials resolved.
    pub source: Option<String>,
    /// The resolved credentials' AccessKeyId, shortened (`ASIA…`).
    pub key_id_hint: Option<String>,
    /// Why the chain resolved nothing.
    pub chain_error: Option<String>,
    /// `GetCallerIdentity` ARN.
    pub arn: Option<String>,
    /// Why STS could not be asked (or `None` when it was, or was switched off).
    pub sts_error: Option<String>,
    /// STS switched off.
    pub sts_skipped: bool,
}

pub(crate) struct IdentitySettings {
    pub imds_endpoint: Option<String>,
    pub sts: bool,
    pub sts_endpoint: Option<String>,
    pub connect_timeout: Duration,
    pub probe_timeout: Duration,
}

pub(crate) async fn probe(
    env: Arc<dyn Env>,
    settings: &IdentitySettings,
    deadline: Instant,
) -> IdentityObservation {
    let mut obs = IdentityObservation {
        sts_skipped: !settings.sts,
        ..Default::default()
    };
    let ctx = ProviderContext::new().with_env(SharedEnv(env.clone()));
    let mut builder = CredentialChain::builder()
        .context(ctx)
        .imds_timeouts(settings.connect_timeout, settings.probe_timeout)
        // The probe's own deadline bounds the whole check; the chain's IMDS
        // deadline only has to admit one request of these timeouts.
        .imds_fetch_timeout(settings.connect_timeout + 2 * settings.probe_timeout);
    if let Some(e) = &settings.imds_endpoint {
        builder = builder.imds_endpoint(e.clone());
    }
    let chain = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            // The chain's own fix text duplicates the EPI-PI findings' fixes.
            let text = ErrorChain(&e).one_line().to_string();
            let short = text.split(" Fix: ").next().unwrap_or(&text);
            obs.chain_error = Some(short.trim_end_matches('.').to_owned());
            return obs;
        }
    };
    let chain_deadline = deadline.min(Instant::now() + settings.probe_timeout);
    match timeout_at(chain_deadline, chain.credentials()).await {
        Err(_) => {
            obs.chain_error = Some(format!(
                "no credentials within {} ms",
                settings.probe_timeout.as_millis()
            ));
            return obs;
        }
        Ok(Err(e)) => {
            obs.chain_error = Some(ErrorChain(&e).one_line().to_string());
            return obs;
        }
        Ok(Ok(creds)) => {
            obs.source = Some(chain.status().source);
            obs.key_id_hint = Some(key_id_hint(creds.access_key_id()));
        }
    }
    if !settings.sts {
        return obs;
    }
    let region = env
        .non_empty("AWS_REGION")
        .or_else(|| env.non_empty("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = settings
        .sts_endpoint
        .clone()
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL_STS"))
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL"));
    let mut conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region))
        .credentials_provider(chain.clone());
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e);
    }
    let client = aws_sdk_sts::Client::from_conf(conf.build());
    let sts_deadline = deadline.min(Instant::now() + settings.probe_timeout);
    match timeout_at(sts_deadline, client.get_caller_identity().send()).await {
        Err(_) => {
            obs.sts_error = Some(format!(
                "GetCallerIdentity: no answer within {} ms",
                settings.probe_timeout.as_millis()
            ))
        }
        Ok(Err(e)) => {
            let text = match e.as_service_error() {
                Some(se) => format!(
                    "GetCallerIdentity: {}: {}",
                    se.meta().code().unwrap_or("error"),
                    se.meta().message().unwrap_or("")
                ),
                None => format!("GetCallerIdentity: {}", ErrorChain(&e).one_line()),
            };
            obs.sts_error = Some(text.chars().take(300).collect());
        }
        Ok(Ok(out)) => obs.arn = out.arn().map(str::to_owned),
    }
    obs
}

/// Judges what the chain and STS said against the role names the IMDS
/// probes read (`imds_roles`). Pure.
pub(crate) fn classify(
    obs: &IdentityObservation,
    imds_roles: &[String],
    in_kubernetes: bool,
) -> Observation<IdentityOutcome> {
    let Some(source) = &obs.source else {
        let err = obs.chain_error.clone().unwrap_or_default();
        return Observation::same(IdentityOutcome::Unresolved, err);
    };
    let key = obs.key_id_hint.clone().unwrap_or_default();
    let chain_imds_role = source.strip_prefix("imds:").map(str::to_owned);
    let sts_role = obs.arn.as_deref().and_then(role_of_arn).map(str::to_owned);
    let node_role = chain_imds_role.clone().or_else(|| {
        sts_role
            .as_ref()
            .filter(|r| imds_roles.iter().any(|i| i == *r))
            .cloned()
    });
    let who = obs
        .arn
        .clone()
        .map(|a| format!(", STS: {a}"))
        .unwrap_or_default();
    if let Some(role) = node_role {
        let text = format!("chain source {source} (AccessKeyId {key}){who}: node role {role}");
        let seen = Observation::same(IdentityOutcome::NodeRole, text);
        return if chain_imds_role.is_some() && !in_kubernetes {
            seen.with_severity(Severity::Info).with_title(
                "the credentials resolved here are the instance role (not in a Kubernetes pod)",
            )
        } else {
            seen
        };
    }
    match (&obs.arn, &obs.sts_error) {
        (Some(arn), _) => {
            let node = if imds_roles.is_empty() {
                "node role not readable from here".to_owned()
            } else {
                format!("node role {}", imds_roles.join(", "))
            };
            Observation::same(
                IdentityOutcome::OwnRole,
                format!("chain source {source} (AccessKeyId {key}): {arn}; {node}"),
            )
        }
        (None, Some(err)) => Observation::same(
            IdentityOutcome::Unverified,
            format!("chain source {source} (AccessKeyId {key}); {err}"),
        ),
        (None, None) => {
            let why = if obs.sts_skipped {
                "STS not asked (--no-sts)"
            } else {
                "STS returned no ARN"
            };
            Observation::same(
                IdentityOutcome::Unverified,
                format!("chain source {source} (AccessKeyId {key}); {why}"),
            )
        }
    }
}

/// The role name of an `assumed-role` ARN (`arn:aws:sts::1:assumed-role/ROLE/session`)
/// or a role ARN (`arn:aws:iam::1:role/path/ROLE`).
///
/// ```
/// use eks_pod_identity_doctor::check::role_of_arn;
/// assert_eq!(role_of_arn("arn:aws:sts::123456789012:assumed-role/node-role/i-0abc"), Some("node-role"));
/// assert_eq!(role_of_arn("arn:aws:iam::123456789012:role/path/app"), Some("app"));
/// assert_eq!(role_of_arn("arn:aws:iam::123456789012:user/admin"), None);
/// ```
pub fn role_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        rest.split('/').next().filter(|s| !s.is_empty())
    } else if let Some(rest) = resource.strip_prefix("role/") {
        rest.rsplit('/').next().filter(|s| !s.is_empty())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::probe::assert_matrix;

    #[test]
    fn outcome_matrix() {
        use IdentityOutcome as I;
        use ProbeStatus::{Leak, Ok, Unknown};
        assert_matrix(&[
            (I::Unresolved, "unresolved", Some("EPI-ID-002"), Unknown),
            (I::NodeRole, "node_role", Some("EPI-ID-001"), Leak),
            (I::OwnRole, "own_role", Some("EPI-ID-003"), Ok),
            (I::Unverified, "unverified", Some("EPI-ID-004"), Ok),
            (I::TimedOut, "timeout", None, Unknown),
        ]);
    }

    fn resolved(source: &str, arn: Option<&str>) -> IdentityObservation {
        IdentityObservation {
            source: Some(source.into()),
            key_id_hint: Some("ASIA…".into()),
            arn: arn.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn classify_judges_the_identity_against_the_node_role() {
        let node = ["node-role".to_owned()];
        let unresolved = IdentityObservation {
            chain_error: Some("no source".into()),
            ..Default::default()
        };
        assert_eq!(
            classify(&unresolved, &node, true),
            Observation::same(IdentityOutcome::Unresolved, "no source")
        );

        // The chain fell back to IMDS: the node role, lowered outside Kubernetes.
        let imds = resolved("imds:node-role", None);
        let in_pod = classify(&imds, &[], true);
        assert_eq!(
            (in_pod.outcome, in_pod.severity),
            (IdentityOutcome::NodeRole, None)
        );
        assert_eq!(
            in_pod.evidence,
            "chain source imds:node-role (AccessKeyId ASIA…): node role node-role"
        );
        let on_host = classify(&imds, &[], false);
        assert_eq!(on_host.severity, Some(Severity::Info));
        assert!(on_host.title.is_some());

        // STS names the role the IMDS probes read.
        let sts_node = resolved(
            "pod-identity",
            Some("arn:aws:sts::1:assumed-role/node-role/i-1"),
        );
        assert_eq!(
            classify(&sts_node, &node, true).outcome,
            IdentityOutcome::NodeRole
        );

        // Its own role.
        let own = classify(
            &resolved("pod-identity", Some("arn:aws:sts::1:assumed-role/app/s")),
            &node,
            true,
        );
        assert_eq!(own.outcome, IdentityOutcome::OwnRole);
        assert_eq!(
            own.evidence,
            "chain source pod-identity (AccessKeyId ASIA…): arn:aws:sts::1:assumed-role/app/s; node role node-role"
        );

        // STS failed, or was not asked.
        let mut failed = resolved("pod-identity", None);
        failed.sts_error = Some("GetCallerIdentity: boom".into());
        assert_eq!(
            classify(&failed, &node, true).evidence,
            "chain source pod-identity (AccessKeyId ASIA…); GetCallerIdentity: boom"
        );
        let mut skipped = resolved("pod-identity", None);
        skipped.sts_skipped = true;
        let seen = classify(&skipped, &node, true);
        assert_eq!(seen.outcome, IdentityOutcome::Unverified);
        assert!(
            seen.evidence.ends_with("STS not asked (--no-sts)"),
            "{}",
            seen.evidence
        );
    }
}
