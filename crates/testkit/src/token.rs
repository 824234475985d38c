//! JWT-shaped fixture service-account tokens.
//!
//! Real EKS Pod Identity tokens are projected service-account JWTs signed by the
//! cluster's OIDC issuer. The fixtures minted here have the same shape
//! (`header.payload.signature`, each part base64url without padding) and the same
//! claims, but a fake signature: nothing in the test stack verifies signatures, only
//! the claims (`aud`, `sub`, `exp`), exactly what the real agent checks locally
//! before it calls EKS Auth.
//!
//! ```
//! use eks_pod_identity_testkit::token;
//! let jwt = token::mint("my-app-namespace", "my-app-sa");
//! let claims = token::decode(&jwt).unwrap();
//! assert_eq!(claims.namespace(), Some("my-app-namespace"));
//! assert_eq!(claims.service_account(), Some("my-app-sa"));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The audience EKS projects into Pod Identity tokens.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// A plausible issuer for fixture tokens.
pub const DEFAULT_ISSUER: &str =
    "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

/// Lifetime of a projected Pod Identity token (the kubelet's default: 24 h).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Builder for a fixture token. Defaults: audience [`POD_IDENTITY_AUDIENCE`],
/// issued now, valid for [`DEFAULT_TOKEN_LIFETIME`].
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    namespace: String,
    service_account: String,
    audience: Vec<String>,
    issuer: String,
    issued_at: SystemTime,
    expires_at: Option<SystemTime>,
    lifetime: Duration,
}

impl TokenBuilder {
    /// Starts a token for `system:serviceaccount:<namespace>:<service_account>`.
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            service_account: service_account.into(),
            audience: vec![POD_IDENTITY_AUDIENCE.to_owned()],
            issuer: DEFAULT_ISSUER.to_owned(),
            issued_at: SystemTime::now(),
            expires_at: None,
            lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }

    /// Replaces the audience with a single value.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = vec![aud.into()];
        self
    }

    /// Replaces the audience with several values (serialized as a JSON array).
    pub fn audiences<I, S>(mut self, aud: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audience = aud.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the `iss` claim.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = iss.into();
        self
    }

    /// Sets the `iat`/`nbf` instant (default: now).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = at;
        self
    }

    /// Sets the lifetime; `exp = iat + lifetime` (ignored when [`Self::expires_at`] is set).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets `exp` explicitly.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Encodes the token.
    pub fn build(&self) -> String {
        let iat = unix(self.issued_at);
        let exp = unix(self.expires_at.unwrap_or(self.issued_at + self.lifetime));
        let aud = if self.audience.len() == 1 {
            serde_json::Value::String(self.audience[0].clone())
        } else {
            serde_json::Value::from(self.audience.clone())
        };
        let payload = serde_json::json!({
            "aud": aud,
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": self.issuer,
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.service_account),
            "kubernetes.io": {
                "namespace": self.namespace,
                "serviceaccount": { "name": self.service_account, "uid": "00000000-0000-4000-8000-000000000000" },
            },
        });
        let header = serde_json::json!({"alg": "RS256", "kid": "testkit-fixture", "typ": "JWT"});
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(b"testkit-fake-signature-not-verified")
        )
    }
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A valid token (default audience, issued now, 24 h life) for `namespace`/`service_account`.
pub fn mint(namespace: &str, service_account: &str) -> String {
    TokenBuilder::new(namespace, service_account).build()
}

/// A token that expired an hour ago (issued 25 h ago).
pub fn mint_expired(namespace: &str, service_account: &str) -> String {
    let now = SystemTime::now();
    TokenBuilder::new(namespace, service_account)
        .issued_at(now - Duration::from_secs(25 * 3600))
        .expires_at(now - Duration::from_secs(3600))
        .build()
}

/// A valid token whose audience is `sts.amazonaws.com` (an IRSA token, not a Pod
/// Identity one).
pub fn mint_wrong_audience(namespace: &str, service_account: &str) -> String {
    TokenBuilder::new(namespace, service_account)
        .audience("sts.amazonaws.com")
        .build()
}

/// Claims decoded from a fixture (or real) service-account token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `aud`, normalized to a list.
    pub aud: Vec<String>,
    /// `sub`, e.g. `system:serviceaccount:ns:sa`.
    pub sub: String,
    /// `exp` (Unix seconds), if present.
    pub exp: Option<i64>,
    /// `iat` (Unix seconds), if present.
    pub iat: Option<i64>,
    /// `iss`, if present.
    pub iss: Option<String>,
}

impl Claims {
    fn sub_parts(&self) -> Option<(&str, &str)> {
        let rest = self.sub.strip_prefix("system:serviceaccount:")?;
        let (ns, sa) = rest.split_once(':')?;
        (!ns.is_empty() && !sa.is_empty() && !sa.contains(':')).then_some((ns, sa))
    }

    /// The namespace from `sub`, if `sub` is a service-account subject.
    pub fn namespace(&self) -> Option<&str> {
        self.sub_parts().map(|(ns, _)| ns)
    }

    /// The service-account name from `sub`, if `sub` is a service-account subject.
    pub fn service_account(&self) -> Option<&str> {
        self.sub_parts().map(|(_, sa)| sa)
    }

    /// Whether `exp` is at or before `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.exp.is_some_and(|exp| exp <= unix(now))
    }

    /// Whether `aud` contains `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        self.aud.iter().any(|a| a == audience)
    }

    /// `exp` as a [`SystemTime`].
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.map(|exp| {
            if exp >= 0 {
                UNIX_EPOCH + Duration::from_secs(exp as u64)
            } else {
                UNIX_EPOCH - Duration::from_secs(exp.unsigned_abs())
            }
        })
    }
}

/// Why a token could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The token is empty (or whitespace).
    #[error("token is empty")]
    Empty,
    /// Not three dot-separated parts.
    #[error("token is not a JWT: expected 3 dot-separated parts, found {0}")]
    NotJwt(usize),
    /// A part is not base64url.
    #[error("token {0} is not base64url")]
    Base64(&'static str),
    /// The payload is not the expected JSON.
    #[error("token payload is not valid JSON claims: {0}")]
    Json(String),
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    aud: Option<Aud>,
    sub: String,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    iss: Option<String>,
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|_| DecodeError::Base64(what))
}

/// Decodes the claims of a JWT without verifying its signature.
pub fn decode(token: &str) -> Result<Claims, DecodeError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(DecodeError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(DecodeError::NotJwt(parts.len()));
    }
    let header = b64(parts[0], "header")?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&header)
        .map_err(|e| DecodeError::Json(format!("header: {e}")))?;
    let payload = b64(parts[1], "payload")?;
    b64(parts[2], "signature")?;
    let raw: RawClaims =
        serde_json::from_slice(&payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(Claims {
        aud: match raw.aud {
            None => Vec::new(),
            Some(Aud::One(a)) => vec![a],
            Some(Aud::Many(v)) => v,
        },
        sub: raw.sub,
        exp: raw.exp,
        iat: raw.iat,
        iss: raw.iss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = mint("ns", "sa");
        assert_eq!(t.split('.').count(), 3);
        let c = decode(&t).unwrap();
        assert_eq!(c.aud, vec![POD_IDENTITY_AUDIENCE]);
        assert_eq!(c.sub, "system:serviceaccount:ns:sa");
        assert!(!c.is_expired_at(SystemTime::now()));
        assert!(decode(&mint_expired("ns", "sa"))
            .unwrap()
            .is_expired_at(SystemTime::now()));
        assert!(!decode(&mint_wrong_audience("a", "b"))
            .unwrap()
            .has_audience(POD_IDENTITY_AUDIENCE));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("abc"), Err(DecodeError::NotJwt(1)));
        assert!(decode("a.b.c").is_err());
        assert!(decode("!!.!!.!!").is_err());
    }

    #[test]
    fn multiple_audiences() {
        let t = TokenBuilder::new("n", "s")
            .audiences(["x", POD_IDENTITY_AUDIENCE])
            .build();
        assert!(decode(&t).unwrap().has_audience(POD_IDENTITY_AUDIENCE));
    }
}
