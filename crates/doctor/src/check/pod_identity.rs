//! Pod Identity probes: the env, the token, the agent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use eks_pod_identity_provider::config::{
    container_credentials_from_env, is_allowed_http_ip, token_from_env, vars,
    ContainerCredentialsEnv, TokenSource,
};
use eks_pod_identity_provider::Env;
use tokio::time::Instant;

use super::http::{self, HttpError, Target};
use super::imds::credentials_summary;
use super::probe::{fmt_time, Probe};
use crate::report::{Finding, Location, ProbeStatus, Severity};
use crate::rules;

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

pub(crate) struct PodIdentityObservation {
    pub probes: Vec<Probe>,
}

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
    let env_loc = |target: Option<String>| Location::probe(ENV_PROBE, target);

    let config = match container_credentials_from_env(env) {
        Ok(None) => {
            let mut f = Finding::new(
                &rules::PI_NOT_CONFIGURED,
                format!("{} and {} are not set", vars::FULL_URI, vars::TOKEN_FILE),
                env_loc(None),
            );
            if !in_kubernetes {
                f = f.with_severity(Severity::Info);
            }
            env_p.finding(f);
            env_p.outcome(
                "not_configured",
                if in_kubernetes {
                    ProbeStatus::Misconfigured
                } else {
                    ProbeStatus::Unknown
                },
                "Pod Identity env not set",
            );
            token_p.outcome(
                "skipped",
                ProbeStatus::Skipped,
                "Pod Identity not configured",
            );
            agent_p.outcome(
                "skipped",
                ProbeStatus::Skipped,
                "Pod Identity not configured",
            );
            return PodIdentityObservation {
                probes: vec![env_p, token_p, agent_p],
            };
        }
        Err(e) => {
            env_p.finding(Finding::new(
                &rules::PI_ENDPOINT_INVALID,
                e.to_string(),
                env_loc(None),
            ));
            env_p.outcome(
                "endpoint_invalid",
                ProbeStatus::Misconfigured,
                e.to_string(),
            );
            None
        }
        Ok(Some(c)) => Some(c),
    };

    let mut endpoint_ok = false;
    if let Some(c) = &config {
        let uri = c.endpoint.uri().to_string();
        if c.endpoint.must_resolve_to_allowed() {
            match Target::from_url(c.endpoint.uri()).await {
                Ok(t) => {
                    let bad: Vec<String> = t
                        .addrs
                        .iter()
                        .filter(|a| !is_allowed_http_ip(a.ip()))
                        .map(|a| a.ip().to_string())
                        .collect();
                    if bad.is_empty() {
                        endpoint_ok = true;
                    } else {
                        let text = format!(
                            "{}={uri}: the host resolves to {} (plain http is allowed only to loopback and the agent/ECS addresses)",
                            c.endpoint_var,
                            bad.join(", ")
                        );
                        env_p.finding(Finding::new(
                            &rules::PI_ENDPOINT_INVALID,
                            text.clone(),
                            env_loc(Some(uri.clone())),
                        ));
                        env_p.outcome("endpoint_invalid", ProbeStatus::Misconfigured, text);
                    }
                }
                Err(e) => {
                    let text = format!("{}={uri}: {e}", c.endpoint_var);
                    env_p.finding(Finding::new(
                        &rules::PI_ENDPOINT_INVALID,
                        text.clone(),
                        env_loc(Some(uri.clone())),
                    ));
                    env_p.outcome("endpoint_invalid", ProbeStatus::Misconfigured, text);
                }
            }
        } else {
            endpoint_ok = true;
        }
        if endpoint_ok {
            env_p.outcome(
                "configured",
                ProbeStatus::Ok,
                format!("{}={uri}", c.endpoint_var),
            );
        }
    }

    // The token: from the file (preferred) or the value.
    let token_source = config
        .as_ref()
        .map(|c| c.token.clone())
        .unwrap_or_else(|| token_from_env(env));
    let token = check_token(&mut token_p, token_source, now);

    match (&config, endpoint_ok, token) {
        (Some(c), true, Some(token)) => {
            call_agent(&mut agent_p, c, &token, connect_timeout, deadline).await
        }
        (_, _, None) => agent_p.outcome("skipped", ProbeStatus::Skipped, "no usable token"),
        _ => agent_p.outcome("skipped", ProbeStatus::Skipped, "no valid endpoint"),
    }
    PodIdentityObservation {
        probes: vec![env_p, token_p, agent_p],
    }
}

/// Checks the token; returns it when it can be sent to the agent at all
/// (present and JWT-shaped: an expired or wrong-audience token is still sent,
/// so the agent's own answer is reported too).
fn check_token(p: &mut Probe, source: Option<TokenSource>, now: SystemTime) -> Option<String> {
    let (raw, origin, target) = match source {
        None => {
            p.finding(Finding::new(
                &rules::PI_TOKEN_NOT_SET,
                format!("neither {} nor {} is set", vars::TOKEN_FILE, vars::TOKEN),
                Location::probe(TOKEN_PROBE, None),
            ));
            p.outcome(
                "token_not_set",
                ProbeStatus::Misconfigured,
                "no token configured",
            );
            return None;
        }
        Some(TokenSource::File(path)) => {
            let shown = path.display().to_string();
            match std::fs::read(&path) {
                Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                    p.finding(Finding::new(
                        &rules::PI_TOKEN_UNREADABLE,
                        format!("{}={shown}: the file is empty", vars::TOKEN_FILE),
                        Location::probe(TOKEN_PROBE, Some(shown.clone())),
                    ));
                    p.outcome(
                        "token_unreadable",
                        ProbeStatus::Misconfigured,
                        "token file empty",
                    );
                    return None;
                }
                Ok(bytes) => (
                    String::from_utf8_lossy(&bytes).into_owned(),
                    format!("{}={shown}", vars::TOKEN_FILE),
                    Some(shown),
                ),
                Err(e) => {
                    p.finding(Finding::new(
                        &rules::PI_TOKEN_UNREADABLE,
                        format!("{}={shown}: {e}", vars::TOKEN_FILE),
                        Location::probe(TOKEN_PROBE, Some(shown.clone())),
                    ));
                    p.outcome(
                        "token_unreadable",
                        ProbeStatus::Misconfigured,
                        format!("token file: {e}"),
                    );
                    return None;
                }
            }
        }
        Some(TokenSource::Value(secret)) => {
            (secret.expose().to_owned(), vars::TOKEN.to_owned(), None)
        }
    };
    let loc = || Location::probe(TOKEN_PROBE, target.clone());
    let claims = match decode_claims(&raw) {
        Ok(c) => c,
        Err(e) => {
            p.finding(Finding::new(
                &rules::PI_TOKEN_MALFORMED,
                format!("{origin}: {e}"),
                loc(),
            ));
            p.outcome("token_malformed", ProbeStatus::Misconfigured, e.to_string());
            return None;
        }
    };
    let sub = claims.sub.clone().unwrap_or_else(|| "no sub".into());
    let mut good = true;
    if !claims.aud.iter().any(|a| a == POD_IDENTITY_AUDIENCE) {
        good = false;
        let text = format!(
            "{origin}: aud {:?}, expected {POD_IDENTITY_AUDIENCE}",
            claims.aud
        );
        p.finding(Finding::new(
            &rules::PI_TOKEN_WRONG_AUDIENCE,
            text.clone(),
            loc(),
        ));
        p.outcome("token_wrong_audience", ProbeStatus::Misconfigured, text);
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
            good = false;
            let text = format!("{origin}: expired at {exp_text} ({sub})");
            p.finding(Finding::new(&rules::PI_TOKEN_EXPIRED, text.clone(), loc()));
            p.outcome("token_expired", ProbeStatus::Misconfigured, text);
        }
    }
    if good {
        p.outcome(
            "token_valid",
            ProbeStatus::Ok,
            format!("{origin}: {sub}, aud {POD_IDENTITY_AUDIENCE}, expires {exp_text}"),
        );
    }
    let t = raw.strip_suffix('\n').unwrap_or(&raw);
    Some(t.strip_suffix('\r').unwrap_or(t).trim().to_owned())
}

async fn call_agent(
    p: &mut Probe,
    c: &ContainerCredentialsEnv,
    token: &str,
    connect_timeout: Duration,
    deadline: Instant,
) {
    let uri = c.endpoint.uri();
    let shown = uri.to_string();
    p.target = Some(shown.clone());
    let loc = || Location::probe(AGENT_PROBE, Some(shown.clone()));
    if uri.scheme() != "http" {
        p.outcome(
            "skipped",
            ProbeStatus::Skipped,
            "https endpoints are not probed (the agent speaks plain http)",
        );
        return;
    }
    let redact = |s: &str| s.replace(token, "<token>");
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
    match result {
        Ok(r) if r.status == 200 => {
            let summary = credentials_summary(&r);
            if summary.starts_with("AccessKeyId") {
                p.finding(Finding::new(&rules::PI_AGENT_OK, summary.clone(), loc()));
                p.outcome("agent_ok", ProbeStatus::Ok, format!("200: {summary}"));
            } else {
                let text = format!("HTTP 200 with {summary}");
                p.finding(Finding::new(&rules::PI_AGENT_ERROR, text.clone(), loc()));
                p.outcome("agent_error", ProbeStatus::Misconfigured, text);
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
            let text = format!("HTTP {}: {line}", r.status);
            p.finding(Finding::new(&rules::PI_AGENT_ERROR, text.clone(), loc()));
            p.outcome("agent_error", ProbeStatus::Misconfigured, text);
        }
        Err(e) => {
            let outcome = match e {
                HttpError::NoAnswer => "agent_no_answer",
                _ => "agent_unreachable",
            };
            let text = redact(&format!("GET {}: {e}", uri.path()));
            p.finding(Finding::new(
                &rules::PI_AGENT_UNREACHABLE,
                text.clone(),
                loc(),
            ));
            p.outcome(outcome, ProbeStatus::Misconfigured, text);
        }
    }
}
