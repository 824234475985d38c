//! Pod Identity probes: the env, the token, the agent.
//!
//! Each has its outcome enum (`EnvOutcome`, `TokenOutcome`, `AgentOutcome`)
//! and a pure classify step (`classify_endpoint`, `classify_token`,
//! `classify_agent`) after its I/O (resolving the endpoint, reading the token
//! file, calling the agent).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use eks_pod_identity_provider::config::{
    container_credentials_from_env, is_allowed_http_ip, token_from_env, vars,
    ContainerCredentialsEnv,
};
use eks_pod_identity_provider::Env;
use tokio::time::Instant;

use super::http::{self, HttpError, Response, Target};
use super::probe::{Observation, Outcome, Probe};
use super::summary::credentials_summary;
use super::token::{classify_token, read_token, TokenOutcome};

pub use super::token::{decode_claims, TokenClaims, TokenShapeError, POD_IDENTITY_AUDIENCE};
use crate::report::{ProbeStatus, Severity};
use crate::rules::{self, Rule};

pub(crate) const ENV_PROBE: &str = "pod-identity-env";
pub(crate) const TOKEN_PROBE: &str = "pod-identity-token";
pub(crate) const AGENT_PROBE: &str = "pod-identity-agent";

/// What the `pod-identity-env` probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvOutcome {
    /// Neither the endpoint nor the token variable is set, in a Kubernetes pod.
    NotConfigured,
    /// Neither is set, and this is not a Kubernetes pod: nothing to judge.
    NotConfiguredOutsideKubernetes,
    /// The endpoint variable is invalid, or its host resolves to an address
    /// plain http is not allowed to.
    EndpointInvalid,
    /// The endpoint is set and allowed.
    Configured,
    /// The probe did not finish within the check's budget.
    TimedOut,
}

impl Outcome for EnvOutcome {
    fn name(self) -> &'static str {
        match self {
            EnvOutcome::NotConfigured | EnvOutcome::NotConfiguredOutsideKubernetes => {
                "not_configured"
            }
            EnvOutcome::EndpointInvalid => "endpoint_invalid",
            EnvOutcome::Configured => "configured",
            EnvOutcome::TimedOut => "timeout",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            EnvOutcome::NotConfigured | EnvOutcome::NotConfiguredOutsideKubernetes => {
                Some(&rules::PI_NOT_CONFIGURED)
            }
            EnvOutcome::EndpointInvalid => Some(&rules::PI_ENDPOINT_INVALID),
            EnvOutcome::Configured | EnvOutcome::TimedOut => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            EnvOutcome::NotConfigured | EnvOutcome::EndpointInvalid => ProbeStatus::Misconfigured,
            EnvOutcome::NotConfiguredOutsideKubernetes | EnvOutcome::TimedOut => {
                ProbeStatus::Unknown
            }
            EnvOutcome::Configured => ProbeStatus::Ok,
        }
    }
}

/// What the `pod-identity-agent` probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentOutcome {
    /// 200 with a credentials document.
    Ok,
    /// An error status, or 200 with something else.
    Error,
    /// Connected, but no answer before the deadline.
    NoAnswer,
    /// Not resolvable or not reachable.
    Unreachable,
    /// Not called (no valid endpoint, no usable token, https, or not configured).
    Skipped,
    /// The probe did not finish within the check's budget.
    TimedOut,
}

impl Outcome for AgentOutcome {
    fn name(self) -> &'static str {
        match self {
            AgentOutcome::Ok => "agent_ok",
            AgentOutcome::Error => "agent_error",
            AgentOutcome::NoAnswer => "agent_no_answer",
            AgentOutcome::Unreachable => "agent_unreachable",
            AgentOutcome::Skipped => "skipped",
            AgentOutcome::TimedOut => "timeout",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            AgentOutcome::Ok => Some(&rules::PI_AGENT_OK),
            AgentOutcome::Error => Some(&rules::PI_AGENT_ERROR),
            AgentOutcome::NoAnswer | AgentOutcome::Unreachable => {
                Some(&rules::PI_AGENT_UNREACHABLE)
            }
            AgentOutcome::Skipped | AgentOutcome::TimedOut => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            AgentOutcome::Ok => ProbeStatus::Ok,
            AgentOutcome::Error | AgentOutcome::NoAnswer | AgentOutcome::Unreachable => {
                ProbeStatus::Misconfigured
            }
            AgentOutcome::Skipped => ProbeStatus::Skipped,
            AgentOutcome::TimedOut => ProbeStatus::Unknown,
        }
    }
}

pub(crate) struct PodIdentityObservation {
    pub probes: Vec<Probe>,
}

/// Runs the three Pod Identity probes: the env, the token, the agent.
pub(crate) async fn probe(
    env: &dyn Env,
    now: SystemTime,
    connect_timeout: Duration,
    deadline: Instant,
) -> PodIdentityObservation {
    let in_kubernetes = env.non_empty(vars::KUBERNETES_SERVICE_HOST).is_some();
    let mut env_p = Probe::new(ENV_PROBE, None);
    let mut token_p = Probe::new(TOKEN_PROBE, None);
    let mut agent_p = Probe::new(AGENT_PROBE, None);

    let config = match container_credentials_from_env(env) {
        Ok(None) => {
            env_p.record(not_configured(in_kubernetes));
            let why = "Pod Identity not configured";
            token_p.record(Observation::same(TokenOutcome::Skipped, why));
            agent_p.record(Observation::same(AgentOutcome::Skipped, why));
            return PodIdentityObservation {
                probes: vec![env_p, token_p, agent_p],
            };
        }
        Err(e) => {
            env_p.record(Observation::same(
                EnvOutcome::EndpointInvalid,
                e.to_string(),
            ));
            None
        }
        Ok(Some(c)) => Some(c),
    };

    let mut endpoint_ok = false;
    if let Some(c) = &config {
        let resolved = if c.endpoint.must_resolve_to_allowed() {
            Some(
                Target::from_url(c.endpoint.uri())
                    .await
                    .map(|t| t.addrs.iter().map(|a| a.ip()).collect::<Vec<_>>()),
            )
        } else {
            None
        };
        let seen = classify_endpoint(c, resolved.as_ref());
        endpoint_ok = seen.outcome == EnvOutcome::Configured;
        env_p.record(seen);
    }

    // The token: from the file (preferred) or the value.
    let token_source = config
        .as_ref()
        .map(|c| c.token.clone())
        .unwrap_or_else(|| token_from_env(env));
    let (seen, token) = classify_token(&read_token(token_source), now);
    token_p.record_all(seen);

    match (&config, endpoint_ok, token) {
        (Some(c), true, Some(token)) => {
            call_agent(&mut agent_p, c, &token, connect_timeout, deadline).await
        }
        (_, _, None) => agent_p.record(Observation::same(AgentOutcome::Skipped, "no usable token")),
        _ => agent_p.record(Observation::same(
            AgentOutcome::Skipped,
            "no valid endpoint",
        )),
    }
    PodIdentityObservation {
        probes: vec![env_p, token_p, agent_p],
    }
}

/// Neither variable set: a problem in a Kubernetes pod, a note elsewhere.
pub(crate) fn not_configured(in_kubernetes: bool) -> Observation<EnvOutcome> {
    let evidence = format!("{} and {} are not set", vars::FULL_URI, vars::TOKEN_FILE);
    let detail = "Pod Identity env not set";
    if in_kubernetes {
        Observation::new(EnvOutcome::NotConfigured, evidence, detail)
    } else {
        Observation::new(EnvOutcome::NotConfiguredOutsideKubernetes, evidence, detail)
            .with_severity(Severity::Info)
    }
}

/// Whether a configured endpoint may be used: `resolved` holds the addresses
/// its host resolved to (`None`: it needs no resolution). Pure.
pub(crate) fn classify_endpoint(
    c: &ContainerCredentialsEnv,
    resolved: Option<&Result<Vec<IpAddr>, HttpError>>,
) -> Observation<EnvOutcome> {
    let uri = c.endpoint.uri().to_string();
    let invalid = |text: String| {
        Observation::same(EnvOutcome::EndpointInvalid, text).with_target(Some(uri.clone()))
    };
    match resolved {
        Some(Ok(ips)) => {
            let bad: Vec<String> = ips
                .iter()
                .filter(|ip| !is_allowed_http_ip(**ip))
                .map(|ip| ip.to_string())
                .collect();
            if !bad.is_empty() {
                return invalid(format!(
                    "{}={uri}: the host resolves to {} (plain http is allowed only to loopback and the agent/ECS addresses)",
                    c.endpoint_var,
                    bad.join(", ")
                ));
            }
        }
        Some(Err(e)) => return invalid(format!("{}={uri}: {e}", c.endpoint_var)),
        None => {}
    }
    Observation::same(EnvOutcome::Configured, format!("{}={uri}", c.endpoint_var))
}

async fn call_agent(
    p: &mut Probe,
    c: &ContainerCredentialsEnv,
    token: &str,
    connect_timeout: Duration,
    deadline: Instant,
) {
    let uri = c.endpoint.uri();
    p.target = Some(uri.to_string());
    if uri.scheme() != "http" {
        p.record(Observation::same(
            AgentOutcome::Skipped,
            "https endpoints are not probed (the agent speaks plain http)",
        ));
        return;
    }
    let result = match Target::from_url(uri).await {
        Ok(t) => {
            let mut path = uri.path().to_owned();
            if let Some(q) = uri.query() {
                path.push('?');
                path.push_str(q);
            }
            http::request(
                &t,
                "GET",
                &path,
                &[("Authorization", token)],
                connect_timeout,
                deadline,
            )
            .await
        }
        Err(e) => Err(e),
    };
    p.record(classify_agent(&result, token, uri.path()));
}

/// What the agent's answer to `GET path` means; `token` is redacted from
/// anything shown. Pure.
pub(crate) fn classify_agent(
    result: &Result<Response, HttpError>,
    token: &str,
    path: &str,
) -> Observation<AgentOutcome> {
    let redact = |s: &str| s.replace(token, "<token>");
    match result {
        Ok(r) if r.status == 200 => {
            let summary = credentials_summary(r);
            if summary.starts_with("AccessKeyId") {
                Observation::new(AgentOutcome::Ok, summary.clone(), format!("200: {summary}"))
            } else {
                Observation::same(AgentOutcome::Error, format!("HTTP 200 with {summary}"))
            }
        }
        Ok(r) => {
            // Redact before cutting the line short: a token echoed past the cut
            // would otherwise survive as a prefix that no longer matches it.
            let body = redact(&r.body);
            let line: String = body
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(300)
                .collect();
            Observation::same(AgentOutcome::Error, format!("HTTP {}: {line}", r.status))
        }
        Err(e) => {
            let outcome = match e {
                HttpError::NoAnswer => AgentOutcome::NoAnswer,
                _ => AgentOutcome::Unreachable,
            };
            Observation::same(outcome, redact(&format!("GET {path}: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::probe::assert_matrix;
    use eks_pod_identity_provider::MapEnv;

    #[test]
    fn outcome_matrices() {
        use ProbeStatus::{Misconfigured, Ok, Skipped, Unknown};
        use {AgentOutcome as A, EnvOutcome as E};
        assert_matrix(&[
            (
                E::NotConfigured,
                "not_configured",
                Some("EPI-PI-001"),
                Misconfigured,
            ),
            (
                E::NotConfiguredOutsideKubernetes,
                "not_configured",
                Some("EPI-PI-001"),
                Unknown,
            ),
            (
                E::EndpointInvalid,
                "endpoint_invalid",
                Some("EPI-PI-002"),
                Misconfigured,
            ),
            (E::Configured, "configured", None, Ok),
            (E::TimedOut, "timeout", None, Unknown),
        ]);
        assert_matrix(&[
            (A::Ok, "agent_ok", Some("EPI-PI-010"), Ok),
            (A::Error, "agent_error", Some("EPI-PI-009"), Misconfigured),
            (
                A::NoAnswer,
                "agent_no_answer",
                Some("EPI-PI-008"),
                Misconfigured,
            ),
            (
                A::Unreachable,
                "agent_unreachable",
                Some("EPI-PI-008"),
                Misconfigured,
            ),
            (A::Skipped, "skipped", None, Skipped),
            (A::TimedOut, "timeout", None, Unknown),
        ]);
    }

    #[test]
    fn not_configured_is_a_problem_only_in_kubernetes() {
        let pod = not_configured(true);
        assert_eq!(
            (pod.outcome, pod.severity),
            (EnvOutcome::NotConfigured, None)
        );
        let host = not_configured(false);
        assert_eq!(
            (host.outcome, host.severity),
            (
                EnvOutcome::NotConfiguredOutsideKubernetes,
                Some(Severity::Info)
            )
        );
        assert_eq!(
            host.evidence,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE are not set"
        );
    }

    #[test]
    fn classify_endpoint_checks_what_the_host_resolves_to() {
        let env: MapEnv = [(vars::FULL_URI, "http://agent.internal/v1/credentials")]
            .into_iter()
            .collect();
        let c = container_credentials_from_env(&env).unwrap().unwrap();
        let agent: IpAddr = "169.254.170.23".parse().unwrap();
        let elsewhere: IpAddr = "10.0.0.1".parse().unwrap();

        let ok = classify_endpoint(&c, Some(&Result::Ok(vec![agent])));
        assert_eq!(ok.outcome, EnvOutcome::Configured);
        assert_eq!(
            ok.detail,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://agent.internal/v1/credentials"
        );
        assert_eq!(classify_endpoint(&c, None).outcome, EnvOutcome::Configured);

        let bad = classify_endpoint(&c, Some(&Result::Ok(vec![agent, elsewhere])));
        assert_eq!(bad.outcome, EnvOutcome::EndpointInvalid);
        assert!(
            bad.evidence
                .contains("the host resolves to 10.0.0.1 (plain http"),
            "{}",
            bad.evidence
        );
        assert_eq!(
            bad.target.as_deref(),
            Some("http://agent.internal/v1/credentials")
        );

        let unresolved = classify_endpoint(
            &c,
            Some(&Err(HttpError::Resolve("agent.internal: nope".into()))),
        );
        assert_eq!(unresolved.outcome, EnvOutcome::EndpointInvalid);
        assert!(
            unresolved
                .evidence
                .ends_with("cannot resolve host: agent.internal: nope"),
            "{}",
            unresolved.evidence
        );
    }

    #[test]
    fn classify_agent_tells_every_answer_apart_and_never_shows_the_token() {
        let token = "eyJ.secret.sig";
        let answer = |status, body: &str| {
            Result::Ok(Response {
                status,
                headers: vec![],
                body: body.into(),
            })
        };
        let creds = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#;
        let ok = classify_agent(&answer(200, creds), token, "/v1/credentials");
        assert_eq!(ok.outcome, AgentOutcome::Ok);
        assert_eq!(
            ok.detail,
            "200: AccessKeyId ASIA…, expires 2026-11-27T10:00:00Z"
        );

        let not_creds = classify_agent(&answer(200, "hello"), token, "/v1/credentials");
        assert_eq!(not_creds.outcome, AgentOutcome::Error);
        assert_eq!(
            not_creds.evidence,
            "HTTP 200 with a body that is not a credentials document"
        );

        let refused = classify_agent(
            &answer(400, &format!("bad token {token}\nmore")),
            token,
            "/v1/credentials",
        );
        assert_eq!(refused.outcome, AgentOutcome::Error);
        assert_eq!(refused.evidence, "HTTP 400: bad token <token>");

        let silent = classify_agent(&Err(HttpError::NoAnswer), token, "/v1/credentials");
        assert_eq!(silent.outcome, AgentOutcome::NoAnswer);
        let refused = classify_agent(
            &Err(HttpError::Connect(
                crate::check::http::ConnectFailure::Refused,
            )),
            token,
            "/v1/credentials",
        );
        assert_eq!(refused.outcome, AgentOutcome::Unreachable);
        assert!(
            refused.evidence.starts_with("GET /v1/credentials: "),
            "{}",
            refused.evidence
        );
        for seen in [ok, not_creds, silent, refused] {
            assert!(!seen.evidence.contains(token) && !seen.detail.contains(token));
        }
    }
}
