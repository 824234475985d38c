//! Pluggable credential minting shared by [`FakeAgent`](crate::agent::FakeAgent) and
//! [`FakeImds`](crate::imds::FakeImds).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::ProvideErrorMetadata as _;

/// A wall clock: returns "now". Injected so tests can control `Expiration`.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The default [`Clock`]: [`SystemTime::now`].
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// moto's (and the fixtures') AWS account id.
pub const ACCOUNT_ID: &str = "123456789012";

/// Temporary credentials handed out by a fake.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedCredentials {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey` (never printed by `Debug`).
    pub secret_access_key: String,
    /// Session `Token` (never printed by `Debug`).
    pub session_token: String,
    /// `AccountId`.
    pub account_id: String,
    /// `Expiration`.
    pub expiration: SystemTime,
}

impl fmt::Debug for MintedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("account_id", &self.account_id)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// What a minter is asked for.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    /// Role to assume.
    pub role_arn: &'a str,
    /// STS `RoleSessionName` (already sanitized).
    pub session_name: String,
    /// Requested lifetime (STS `DurationSeconds`).
    pub lifetime: Duration,
    /// Session tags (`sts:TagSession`), as EKS Pod Identity passes them.
    pub tags: Vec<(String, String)>,
}

/// An upstream failure, shaped like an EKS Auth / STS error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MintError {
    /// HTTP status the agent should answer with.
    pub status: u16,
    /// Error code, e.g. `AccessDeniedException`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// `client` or `server`.
    pub fault: &'static str,
}

/// How a fake mints credentials.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Minter {
    /// Generated fake keys (`ASIA…`), unique per fetch. No network; for unit tests
    /// and benchmarks.
    #[default]
    Static,
    /// STS `AssumeRole` against an endpoint (moto) with an admin access key, so the
    /// credentials handed out are real moto credentials.
    Sts(StsMinter),
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Minter::Static => f.write_str("Static"),
            Minter::Sts(s) => f.debug_tuple("Sts").field(s).finish(),
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_string(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect()
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Minter {
    /// An STS minter against `endpoint` using the given admin access key.
    pub fn sts(
        endpoint: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        Minter::Sts(StsMinter::new(endpoint, access_key_id, secret_access_key))
    }

    /// Mints credentials expiring at `now + lifetime` (the STS variant uses the
    /// same expiration so an injected clock stays authoritative; moto does not
    /// enforce expiry).
    pub async fn mint(
        &self,
        req: MintRequest<'_>,
        now: SystemTime,
    ) -> Result<MintedCredentials, MintError> {
        let expiration = now + req.lifetime;
        match self {
            Minter::Static => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                let mut id = format!("ASIA{}", random_string(UPPER_DIGITS, 16));
                // Guarantee uniqueness even across identical random draws.
                id.truncate(20 - 4);
                id.push_str(&format!("{:04X}", n % 0x10000));
                Ok(MintedCredentials {
                    access_key_id: id,
                    secret_access_key: random_string(SECRET_CHARS, 40),
                    session_token: format!("FQoGZXIvYXdzE{}", random_string(SECRET_CHARS, 120)),
                    account_id: account_of(req.role_arn).unwrap_or(ACCOUNT_ID).to_owned(),
                    expiration,
                })
            }
            Minter::Sts(sts) => {
                let mut c = sts.assume_role(&req).await?;
                c.expiration = expiration;
                Ok(c)
            }
        }
    }
}

/// The account id in an ARN (`arn:aws:iam::<account>:role/...`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Sanitizes `raw` into a valid STS `RoleSessionName` (`[\w+=,.@-]`, 2–64 chars).
pub fn session_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    while s.len() < 2 {
        s.push('x');
    }
    s
}

/// STS `AssumeRole` with an admin key (SigV4-signed by `aws-sdk-sts`).
#[derive(Clone)]
pub struct StsMinter {
    client: aws_sdk_sts::Client,
    endpoint: String,
    access_key_id: String,
}

impl fmt::Debug for StsMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsMinter")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl StsMinter {
    /// Builds a client for `endpoint` (region `us-east-1`).
    pub fn new(
        endpoint: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        let endpoint = endpoint.into();
        let access_key_id = access_key_id.into();
        let creds = aws_credential_types::Credentials::new(
            access_key_id.clone(),
            secret_access_key.into(),
            None,
            None,
            "eks-pod-identity-testkit-admin",
        );
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(endpoint.clone())
            .build();
        Self {
            client: aws_sdk_sts::Client::from_conf(conf),
            endpoint,
            access_key_id,
        }
    }

    async fn assume_role(&self, req: &MintRequest<'_>) -> Result<MintedCredentials, MintError> {
        let mut call = self
            .client
            .assume_role()
            .role_arn(req.role_arn)
            .role_session_name(&req.session_name)
            .duration_seconds(req.lifetime.as_secs().clamp(1, i32::MAX as u64) as i32);
        for (k, v) in &req.tags {
            let tag = aws_sdk_sts::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| internal(format!("bad session tag: {e}")))?;
            call = call.tags(tag);
        }
        let out = call.send().await.map_err(|e| {
            if let Some(se) = e.as_service_error() {
                let code = se.code().unwrap_or("Unknown").to_owned();
                let message = se.message().unwrap_or("").to_owned();
                let (status, code) = match code.as_str() {
                    "AccessDenied" => (400, "AccessDeniedException".to_owned()),
                    "ExpiredToken" | "ExpiredTokenException" => {
                        (400, "ExpiredTokenException".to_owned())
                    }
                    "NoSuchEntity" | "NoSuchEntityException" => {
                        (404, "ResourceNotFoundException".to_owned())
                    }
                    "Throttling" | "ThrottlingException" => (429, "ThrottlingException".into()),
                    _ => (500, "InternalServerException".to_owned()),
                };
                MintError {
                    status,
                    fault: if status >= 500 { "server" } else { "client" },
                    code,
                    message: format!("STS AssumeRole failed: {message}"),
                }
            } else {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                MintError {
                    status: 503,
                    code: "ServiceUnavailableException".into(),
                    message: format!("STS AssumeRole at {} failed: {msg}", self.endpoint),
                    fault: "server",
                }
            }
        })?;
        let c = out
            .credentials()
            .ok_or_else(|| internal("STS AssumeRole returned no credentials".into()))?;
        let expiration =
            SystemTime::try_from(*c.expiration()).unwrap_or_else(|_| SystemTime::now());
        Ok(MintedCredentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().to_owned(),
            account_id: account_of(req.role_arn).unwrap_or(ACCOUNT_ID).to_owned(),
            expiration,
        })
    }
}

fn internal(message: String) -> MintError {
    MintError {
        status: 500,
        code: "InternalServerException".into(),
        message,
        fault: "server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_is_unique() {
        let m = Minter::Static;
        let now = SystemTime::now();
        let req = || MintRequest {
            role_arn: "arn:aws:iam::111122223333:role/r",
            session_name: "s".into(),
            lifetime: Duration::from_secs(60),
            tags: vec![],
        };
        let a = m.mint(req(), now).await.unwrap();
        let b = m.mint(req(), now).await.unwrap();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_eq!(a.access_key_id.len(), 20);
        assert_eq!(a.account_id, "111122223333");
        assert_eq!(a.expiration, now + Duration::from_secs(60));
        assert!(!format!("{a:?}").contains(&a.secret_access_key));
    }

    #[test]
    fn session_names() {
        assert_eq!(session_name("eks-ns-sa"), "eks-ns-sa");
        assert_eq!(session_name("a/b c"), "a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
