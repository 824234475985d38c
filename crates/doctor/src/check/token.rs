//! The `pod-identity-token` probe: the service-account token is present,
//! readable, JWT-shaped, for Pod Identity's audience and not expired.
//!
//! `read_token` does the I/O (the token file); `classify_token` judges what
//! it read. Pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use eks_pod_identity_provider::config::{vars, TokenSource};

use super::probe::{fmt_time, Observation, Outcome};
use crate::report::ProbeStatus;
use crate::rules::{self, Rule};

/// The audience EKS Auth accepts.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

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
pub(crate) fn read_token(source: Option<TokenSource>) -> TokenRead {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::probe::assert_matrix;

    #[test]
    fn outcome_matrix() {
        use ProbeStatus::{Misconfigured, Ok, Skipped, Unknown};
        use TokenOutcome as T;
        assert_matrix(&[
            (
                T::NotSet,
                "token_not_set",
                Some("EPI-PI-003"),
                Misconfigured,
            ),
            (
                T::Unreadable,
                "token_unreadable",
                Some("EPI-PI-004"),
                Misconfigured,
            ),
            (
                T::Malformed,
                "token_malformed",
                Some("EPI-PI-005"),
                Misconfigured,
            ),
            (
                T::WrongAudience,
                "token_wrong_audience",
                Some("EPI-PI-006"),
                Misconfigured,
            ),
            (
                T::Expired,
                "token_expired",
                Some("EPI-PI-007"),
                Misconfigured,
            ),
            (T::Valid, "token_valid", None, Ok),
            (T::Skipped, "skipped", None, Skipped),
            (T::TimedOut, "timeout", None, Unknown),
        ]);
    }

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(claims))
    }

    fn read(raw: String) -> TokenRead {
        TokenRead::Read {
            raw,
            origin: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t".into(),
            file: Some("/t".into()),
        }
    }

    fn names(seen: &[Observation<TokenOutcome>]) -> Vec<&'static str> {
        seen.iter().map(|o| o.outcome.name()).collect()
    }

    #[test]
    fn classify_tells_every_token_apart() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let good =
            jwt(r#"{"aud":"pods.eks.amazonaws.com","sub":"system:serviceaccount:a:b","exp":2000}"#);

        let (seen, token) = classify_token(&read(format!("{good}\n")), now);
        assert_eq!(names(&seen), ["token_valid"]);
        assert_eq!(
            seen[0].detail,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t: system:serviceaccount:a:b, aud pods.eks.amazonaws.com, expires 1970-01-01T00:33:20Z"
        );
        assert_eq!(
            token.as_deref(),
            Some(good.as_str()),
            "trailing newline trimmed"
        );

        // Wrong audience and expired: both said, and the token is still sent.
        let bad = jwt(r#"{"aud":["sts.amazonaws.com"],"exp":500}"#);
        let (seen, token) = classify_token(&read(bad.clone()), now);
        assert_eq!(names(&seen), ["token_wrong_audience", "token_expired"]);
        assert_eq!(seen[0].target.as_deref(), Some("/t"));
        assert_eq!(
            seen[1].evidence,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t: expired at 1970-01-01T00:08:20Z (no sub)"
        );
        assert_eq!(token, Some(bad));

        // Not sent at all: malformed, unreadable, empty, not set.
        let (seen, token) = classify_token(&read("a.b".into()), now);
        assert_eq!((names(&seen), token), (vec!["token_malformed"], None));
        assert_eq!(
            seen[0].evidence,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t: not a JWT: 2 dot-separated part(s) instead of 3"
        );
        let (seen, token) =
            classify_token(&TokenRead::FileError("/t".into(), "denied".into()), now);
        assert_eq!((names(&seen), token), (vec!["token_unreadable"], None));
        assert_eq!(
            (seen[0].detail.as_str(), seen[0].target.as_deref()),
            ("token file: denied", Some("/t"))
        );
        let (seen, _) = classify_token(&TokenRead::FileEmpty("/t".into()), now);
        assert_eq!(
            (names(&seen), seen[0].detail.as_str()),
            (vec!["token_unreadable"], "token file empty")
        );
        let (seen, token) = classify_token(&TokenRead::NotSet, now);
        assert_eq!((names(&seen), token), (vec!["token_not_set"], None));
    }
}
