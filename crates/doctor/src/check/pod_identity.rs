//! Pod Identity probes: the env, the token, the agent.
//!
//! Each has its outcome enum (`EnvOutcome`, `TokenOutcome`, `AgentOutcome`)
//! and a pure classify step (`classify_endpoint`, `classify_token`,
//! `classify_agent`) after its I/O (resolving the endpoint, reading the token
//! file, calling the agent).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use eks_pod_identity_provider::config::{
    container_credentials_from_env, is_allowed_http_ip, token_from_env, vars,
    ContainerCredentialsEnv, TokenSource,
};
use eks_pod_identity_provider::Env;
use tokio::time::Instant;

use super::http::{self, HttpError, Response, Target};
use super::probe::{fmt_time, Observation, Outcome, Probe};
use super::summary::credentials_summary;
use crate::report::{ProbeStatus, Severity};
use crate::rules::{self, Rule};

/// The audience EKS Auth accepts.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

pub(crate) const ENV_PROBE: &str = "pod-identity-env";
pub(crate) const TOKEN_PROBE: &str = "pod-identity-token";
pub(crate) const AGENT_PROBE: &str = "pod-identity-agent";

/// The claims the doctor looks at (signature not verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Audiences (`aud`, string or array).
    pub aud: Vec<String>,
    /// Subject, e.g. `system:serviceaccount:ns:sa`.
    pub sub: Option<String>,
    /// Expiry (`exp`, seconds since the epoch).
    pub exp: Option<i64>,
}

/// Why a token is not JWT-shaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenShapeError {
    /// Empty after trimming one trailing newline.
    #[error("the token is empty")]
    Empty,
    /// A CR or LF inside the token (header injection).
    #[error("the token contains a line break")]
    LineBreak,
    /// Not three dot-separated parts.
    #[error("not a JWT: {0} dot-separated part(s) instead of 3")]
    Parts(usize),
    /// The payload is not base64url JSON.
    #[error("the JWT payload is not base64url-encoded JSON: {0}")]
    Payload(String),
}

/// Decodes a JWT's claims without verifying its signature. One trailing
/// newline is trimmed (as the SDKs do); any other line break is rejected.
///
/// # Errors
///
/// [`TokenShapeError`] when the token is empty, holds a line break, is not
/// three dot-separated parts, or its payload is not base64url JSON.
///
/// ```
/// use eks_pod_identity_doctor::check::pod_identity::decode_claims;
/// // {"alg":"none"} . {"aud":"pods.eks.amazonaws.com","exp":1} . sig
/// let t = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJwb2RzLmVrcy5hbWF6b25hd3MuY29tIiwiZXhwIjoxfQ.c2ln\n";
/// let c = decode_claims(t).unwrap();
/// assert_eq!(c.aud, ["pods.eks.amazonaws.com"]);
/// assert_eq!(c.exp, Some(1));
/// assert!(decode_claims("not-a-jwt").is_err());
/// ```
pub fn decode_claims(raw: &str) -> Result<TokenClaims, TokenShapeError> {
    let t = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(raw);
    if t.trim().is_empty() {
        return Err(TokenShapeError::Empty);
    }
    if t.contains(['\r', '\n']) {
        return Err(TokenShapeError::LineBreak);
    }
    let parts: Vec<&str> = t.trim().split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(TokenShapeError::Parts(parts.len()));
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = engine
        .decode(parts[1].trim_end_matches('='))
        .map_err(|e| TokenShapeError::Payload(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| TokenShapeError::Payload(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| TokenShapeError::Payload("not a JSON object".into()))?;
    let aud = match obj.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(TokenClaims {
        aud,
        sub: obj.get("sub").and_then(|s| s.as_str()).map(str::to_owned),
        exp: obj.get("exp").and_then(|e| e.as_i64()),
    })
}

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

/// What the `pod-identity-token` probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenOutcome {
    /// Neither the token file nor the token variable is set.
    NotSet,
    /// The token file cannot be read, or is empty.
    Unreadable,
    /// The token is not JWT-shaped.
    Malformed,
    /// The token's audience is not Pod Identity's.
    WrongAudience,
    /// The token has expired.
    Expired,
    /// Audience and expiry are right.
    Valid,
    /// Pod Identity is not configured.
    Skipped,
    /// The probe did not finish within the check's budget.
    TimedOut,
}

impl Outcome for TokenOutcome {
    fn name(self) -> &'static str {
        match self {
            TokenOutcome::NotSet => "token_not_set",
            TokenOutcome::Unreadable => "token_unreadable",
            TokenOutcome::Malformed => "token_malformed",
            TokenOutcome::WrongAudience => "token_wrong_audience",
            TokenOutcome::Expired => "token_expired",
            TokenOutcome::Valid => "token_valid",
            TokenOutcome::Skipped => "skipped",
            TokenOutcome::TimedOut => "timeout",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            TokenOutcome::NotSet => Some(&rules::PI_TOKEN_NOT_SET),
            TokenOutcome::Unreadable => Some(&rules::PI_TOKEN_UNREADABLE),
            TokenOutcome::Malformed => Some(&rules::PI_TOKEN_MALFORMED),
            TokenOutcome::WrongAudience => Some(&rules::PI_TOKEN_WRONG_AUDIENCE),
            TokenOutcome::Expired => Some(&rules::PI_TOKEN_EXPIRED),
            TokenOutcome::Valid | TokenOutcome::Skipped | TokenOutcome::TimedOut => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            TokenOutcome::NotSet
            | TokenOutcome::Unreadable
            | TokenOutcome::Malformed
            | TokenOutcome::WrongAudience
            | TokenOutcome::Expired => ProbeStatus::Misconfigured,
            TokenOutcome::Valid => ProbeStatus::Ok,
            TokenOutcome::Skipped => ProbeStatus::Skipped,
            TokenOutcome::TimedOut => ProbeStatus::Unknown,
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

/// What reading the token gave.
#[derive(Debug)]
pub(crate) enum TokenRead {
    /// Neither the file nor the value is set.
    NotSet,
    /// The file (as shown) is empty.
    FileEmpty(String),
    /// The file (as shown) cannot be read: why.
    FileError(String, String),
    /// The token text, where it came from (`VAR=path` or `VAR`), and the file shown.
    Read {
        raw: String,
        origin: String,
        file: Option<String>,
    },
}

/// Reads the token from its file, or takes the value.
fn read_token(source: Option<TokenSource>) -> TokenRead {
    match source {
        None => TokenRead::NotSet,
        Some(TokenSource::File(path)) => {
            let shown = path.display().to_string();
            match std::fs::read(&path) {
                Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                    TokenRead::FileEmpty(shown)
                }
                Ok(bytes) => TokenRead::Read {
                    raw: String::from_utf8_lossy(&bytes).into_owned(),
                    origin: format!("{}={shown}", vars::TOKEN_FILE),
                    file: Some(shown),
                },
                Err(e) => TokenRead::FileError(shown, e.to_string()),
            }
        }
        Some(TokenSource::Value(secret)) => TokenRead::Read {
            raw: secret.expose().to_owned(),
            origin: vars::TOKEN.to_owned(),
            file: None,
        },
    }
}

/// Judges the token; returns it too when it can be sent to the agent at all
/// (present and JWT-shaped: an expired or wrong-audience token is still sent,
/// so the agent's own answer is reported too). Pure.
pub(crate) fn classify_token(
    read: &TokenRead,
    now: SystemTime,
) -> (Vec<Observation<TokenOutcome>>, Option<String>) {
    let (raw, origin, target) = match read {
        TokenRead::NotSet => {
            let seen = Observation::new(
                TokenOutcome::NotSet,
                format!("neither {} nor {} is set", vars::TOKEN_FILE, vars::TOKEN),
                "no token configured",
            );
            return (vec![seen], None);
        }
        TokenRead::FileEmpty(shown) => {
            let seen = Observation::new(
                TokenOutcome::Unreadable,
                format!("{}={shown}: the file is empty", vars::TOKEN_FILE),
                "token file empty",
            )
            .with_target(Some(shown.clone()));
            return (vec![seen], None);
        }
        TokenRead::FileError(shown, e) => {
            let seen = Observation::new(
                TokenOutcome::Unreadable,
                format!("{}={shown}: {e}", vars::TOKEN_FILE),
                format!("token file: {e}"),
            )
            .with_target(Some(shown.clone()));
            return (vec![seen], None);
        }
        TokenRead::Read { raw, origin, file } => (raw, origin, file),
    };
    let claims = match decode_claims(raw) {
        Ok(c) => c,
        Err(e) => {
            let seen = Observation::new(
                TokenOutcome::Malformed,
                format!("{origin}: {e}"),
                e.to_string(),
            )
            .with_target(target.clone());
            return (vec![seen], None);
        }
    };
    let mut seen = Vec::new();
    let sub = claims.sub.clone().unwrap_or_else(|| "no sub".into());
    if !claims.aud.iter().any(|a| a == POD_IDENTITY_AUDIENCE) {
        let text = format!(
            "{origin}: aud {:?}, expected {POD_IDENTITY_AUDIENCE}",
            claims.aud
        );
        seen.push(Observation::same(TokenOutcome::WrongAudience, text).with_target(target.clone()));
    }
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let exp_text = claims
        .exp
        .map(|e| fmt_time(UNIX_EPOCH + Duration::from_secs(e.max(0) as u64)))
        .unwrap_or_else(|| "no exp claim".into());
    if let Some(exp) = claims.exp {
        if exp <= now_s {
            let text = format!("{origin}: expired at {exp_text} ({sub})");
            seen.push(Observation::same(TokenOutcome::Expired, text).with_target(target.clone()));
        }
    }
    if seen.is_empty() {
        seen.push(Observation::same(
            TokenOutcome::Valid,
            format!("{origin}: {sub}, aud {POD_IDENTITY_AUDIENCE}, expires {exp_text}"),
        ));
    }
    let t = raw.strip_suffix('\n').unwrap_or(raw);
    (
        seen,
        Some(t.strip_suffix('\r').unwrap_or(t).trim().to_owned()),
    )
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
