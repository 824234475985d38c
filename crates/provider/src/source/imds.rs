//! The IMDSv2 client: session token, role discovery, credentials.
//!
//! Used only where the [chain](crate::CredentialChain)'s fallback policy allows it:
//! inside a Kubernetes pod, IMDS credentials are the *node's* role.

use super::document::{self, Dialect};
use super::retry::RetryPolicy;
use super::{CredentialSource, Fetched};
use crate::config::Secret;
use crate::context::ProviderContext;
use crate::error::{Classify, ConfigError, ErrorChain, ImdsError, RefreshError};
use crate::protocol::{
    IMDS_ROLE_PATH, IMDS_TOKEN_HEADER, IMDS_TOKEN_PATH, IMDS_TOKEN_TTL_HEADER, IMDS_TOKEN_TTL_SECS,
    MAX_BODY_BYTES,
};
use crate::support::http::{self, BodyError, ClientSettings};
use crate::support::rfc3339;
use crate::support::time::uniform;
use reqwest::Method;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use url::Url;

/// The provider name stamped on credentials from IMDS.
pub(crate) const PROVIDER_NAME: &str = "Ec2InstanceMetadata";

/// Re-fetch the session token this long before IMDS says it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// IMDS client settings.
///
/// ```
/// use eks_pod_identity_provider::ImdsOptions;
/// use std::time::Duration;
/// let options = ImdsOptions::default().with_fetch_timeout(Duration::from_secs(5));
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImdsOptions {
    /// TCP connect timeout (default 1 s).
    pub connect_timeout: Duration,
    /// Read timeout per attempt (default 1 s).
    pub read_timeout: Duration,
    /// Deadline of a whole fetch: token, role and credentials requests,
    /// retries included (default 10 s).
    pub fetch_timeout: Duration,
    /// Per-request retries of 5xx/connect/timeouts (default 3 attempts).
    pub retry: RetryPolicy,
    /// Fall back to IMDSv1 (no token) when the token request fails other
    /// than with 403. Off by default: IMDSv1 is reachable from any pod at any
    /// hop limit.
    pub allow_imdsv1: bool,
    /// Extend credentials that arrive already expired by 10 min + up to
    /// 5 min of jitter, with a warning (IMDS serves stale credentials during
    /// its own outages; the SDKs do the same). Default on. This is the one
    /// case where credentials are used past the expiry their source stated;
    /// credentials that are still valid, however briefly, are never extended.
    pub extend_stale_credentials: bool,
}

impl Default for ImdsOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            fetch_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            allow_imdsv1: false,
            extend_stale_credentials: true,
        }
    }
}

impl ImdsOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`read_timeout`](Self::read_timeout).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets [`fetch_timeout`](Self::fetch_timeout).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`allow_imdsv1`](Self::allow_imdsv1).
    pub fn with_allow_imdsv1(mut self, allow: bool) -> Self {
        self.allow_imdsv1 = allow;
        self
    }

    /// Sets [`extend_stale_credentials`](Self::extend_stale_credentials).
    pub fn with_extend_stale_credentials(mut self, extend: bool) -> Self {
        self.extend_stale_credentials = extend;
        self
    }

    /// The deadline of one request: connect plus two reads (headers, body).
    fn exchange_deadline(&self) -> Duration {
        self.connect_timeout + self.read_timeout * 2
    }

    /// Checks the settings; the error names the offending field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::InvalidSetting { field, reason });
        for (field, value) in [
            ("imds.connect_timeout", self.connect_timeout),
            ("imds.read_timeout", self.read_timeout),
            ("imds.fetch_timeout", self.fetch_timeout),
        ] {
            if value.is_zero() {
                return invalid(field, "must be more than zero".into());
            }
        }
        if self.exchange_deadline() > self.fetch_timeout {
            return invalid(
                "imds.fetch_timeout",
                format!(
                    "{:?} is less than one request's deadline (connect + 2 × read = {:?})",
                    self.fetch_timeout,
                    self.exchange_deadline()
                ),
            );
        }
        self.retry.validate_as("imds.retry")
    }
}

struct SessionToken {
    value: Secret,
    refresh_after: SystemTime,
}

/// Fetches the instance profile's credentials from IMDSv2.
pub struct ImdsSource {
    endpoint: Url,
    client: Arc<reqwest::Client>,
    ctx: ProviderContext,
    options: ImdsOptions,
    token: Mutex<Option<SessionToken>>,
}

impl fmt::Debug for ImdsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsSource")
            .field("endpoint", &self.endpoint.as_str())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

enum Auth {
    Token(Secret),
    V1,
}

impl ImdsSource {
    /// An IMDS client for `endpoint`. Most users want
    /// [`CredentialChain`](crate::CredentialChain) instead.
    ///
    /// # Errors
    ///
    /// When `options` are out of range ([`ImdsOptions::validate`]), or
    /// `endpoint` is `https` in a build without the `rustls` feature
    /// ([`ConfigError::TlsNotEnabled`]).
    pub fn new(
        endpoint: Url,
        ctx: ProviderContext,
        options: ImdsOptions,
    ) -> Result<Self, ConfigError> {
        options.validate()?;
        http::require_tls_support(&endpoint)?;
        // The shared hardening (no redirects, no proxy) plus a read timeout:
        // a token PUT that connects and then hangs must end quickly.
        let client = http::shared_client(ClientSettings {
            connect_timeout: options.connect_timeout,
            read_timeout: Some(options.read_timeout),
            restrict_resolution: None,
            https: endpoint.scheme() == "https",
        })
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            endpoint,
            client,
            ctx,
            options,
            token: Mutex::new(None),
        })
    }

    /// The IMDS endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn endpoint_str(&self) -> String {
        self.endpoint.as_str().trim_end_matches('/').to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.endpoint_str(), path)
    }

    /// One HTTP exchange. Returns status, headers' TTL, and body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        header: Option<(&'static str, &str)>,
    ) -> Result<(u16, Option<String>, Vec<u8>), ImdsError> {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some((k, v)) = header {
            let mut value =
                reqwest::header::HeaderValue::from_str(v).map_err(|_| ImdsError::Malformed {
                    endpoint: self.endpoint_str(),
                    detail: format!("the {k} header value is not a valid header"),
                })?;
            value.set_sensitive(k == IMDS_TOKEN_HEADER);
            req = req.header(k, value);
        }
        let deadline = self.options.exchange_deadline();
        let fut = async {
            let resp = req
                .send()
                .await
                .map_err(|e| self.transport_error(e, &method, path))?;
            let status = resp.status().as_u16();
            let ttl = resp
                .headers()
                .get(IMDS_TOKEN_TTL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = http::read_capped(resp, MAX_BODY_BYTES)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge => ImdsError::BodyTooLarge {
                        endpoint: self.endpoint_str(),
                        path: path.to_owned(),
                        limit: MAX_BODY_BYTES,
                    },
                    BodyError::Transport(e) => self.transport_error(e, &method, path),
                })?;
            Ok((status, ttl, body))
        };
        tokio::time::timeout(deadline, fut)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(&method, path, deadline)))
    }

    fn timeout_error(&self, method: &Method, path: &str, after: Duration) -> ImdsError {
        if *method == Method::PUT {
            ImdsError::TokenUnanswered {
                endpoint: self.endpoint_str(),
                after,
            }
        } else {
            ImdsError::Timeout {
                endpoint: self.endpoint_str(),
                path: path.to_owned(),
                after,
            }
        }
    }

    fn transport_error(&self, e: reqwest::Error, method: &Method, path: &str) -> ImdsError {
        if http::is_tls_error(&e) {
            return ImdsError::Tls {
                endpoint: self.endpoint_str(),
                detail: http::root_cause(&e),
            };
        }
        if e.is_connect() {
            if e.is_timeout() {
                ImdsError::Timeout {
                    endpoint: self.endpoint_str(),
                    path: path.to_owned(),
                    after: self.options.connect_timeout,
                }
            } else {
                ImdsError::Connect {
                    endpoint: self.endpoint_str(),
                    detail: http::root_cause(&e),
                }
            }
        } else if e.is_timeout() {
            // Connected, then no answer: for the token PUT this is the
            // signature of a hop limit of 1 seen from a pod.
            self.timeout_error(method, path, self.options.read_timeout)
        } else {
            ImdsError::Transport {
                endpoint: self.endpoint_str(),
                detail: http::root_cause(&e),
            }
        }
    }

    /// One exchange whose 5xx/429 answers count as (retryable) errors, so
    /// [`with_retries`](Self::with_retries) retries them like transport
    /// failures.
    async fn exchange_retryable(
        &self,
        method: Method,
        path: &str,
        header: Option<(&'static str, &str)>,
    ) -> Result<(u16, Option<String>, Vec<u8>), ImdsError> {
        let (status, ttl, body) = self.exchange(method, path, header).await?;
        if status >= 500 || status == 429 {
            return Err(ImdsError::Status {
                endpoint: self.endpoint_str(),
                path: path.to_owned(),
                status,
            });
        }
        Ok((status, ttl, body))
    }

    /// Runs `op` with jittered retries of retryable errors, at most
    /// `max_attempts` attempts.
    async fn with_retries<T, F, Fut>(&self, max_attempts: u32, mut op: F) -> Result<T, ImdsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ImdsError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < max_attempts => {
                    let delay = self.options.retry.backoff(attempt, &*self.ctx.rng);
                    tracing::debug!(source = "imds", attempt, error_kind = e.kind().as_str(), error = %ErrorChain(&e).one_line(), "IMDS request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The cached session token, or a new one.
    async fn auth(&self, max_attempts: u32) -> Result<Auth, ImdsError> {
        let now = self.ctx.clock.now();
        if let Some(t) = self
            .token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if now < t.refresh_after {
                return Ok(Auth::Token(t.value.clone()));
            }
        }
        let ttl = IMDS_TOKEN_TTL_SECS.to_string();
        let result = self
            .with_retries(max_attempts, || {
                self.exchange_retryable(
                    Method::PUT,
                    IMDS_TOKEN_PATH,
                    Some((IMDS_TOKEN_TTL_HEADER, &ttl)),
                )
            })
            .await;
        let (status, ttl_header, body) = match result {
            Ok(r) => r,
            Err(e @ ImdsError::TokenUnanswered { .. }) | Err(e @ ImdsError::Connect { .. })
                if !self.options.allow_imdsv1 =>
            {
                return Err(e)
            }
            Err(e) if self.options.allow_imdsv1 => {
                tracing::warn!(source = "imds", error = %ErrorChain(&e).one_line(), "IMDSv2 token request failed; using IMDSv1 as explicitly allowed");
                return Ok(Auth::V1);
            }
            Err(e) => return Err(e),
        };
        match status {
            200 => {}
            403 => {
                return Err(ImdsError::Disabled {
                    endpoint: self.endpoint_str(),
                })
            }
            _ if self.options.allow_imdsv1 => {
                tracing::warn!(
                    source = "imds",
                    status,
                    "IMDSv2 token request rejected; using IMDSv1 as explicitly allowed"
                );
                return Ok(Auth::V1);
            }
            _ => {
                return Err(ImdsError::Status {
                    endpoint: self.endpoint_str(),
                    path: IMDS_TOKEN_PATH.into(),
                    status,
                })
            }
        }
        let ttl_secs: u64 = ttl_header
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ImdsError::MissingTtlHeader {
                endpoint: self.endpoint_str(),
            })?;
        let value = String::from_utf8(body)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b)))
            .ok_or_else(|| ImdsError::Malformed {
                endpoint: self.endpoint_str(),
                detail: "the session token is empty or not printable ASCII".into(),
            })?;
        let value = Secret::new(value);
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(SessionToken {
            value: value.clone(),
            refresh_after: token_refresh_after(now, ttl_secs),
        });
        Ok(Auth::Token(value))
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// GET with the session token; on 401 get a new token and retry once.
    async fn get(&self, path: &str, max_attempts: u32) -> Result<(u16, Vec<u8>), ImdsError> {
        let mut renewed = false;
        loop {
            let auth = self.auth(max_attempts).await?;
            let (status, _, body) = match &auth {
                Auth::Token(t) => {
                    let t = t.expose().to_owned();
                    self.with_retries(max_attempts, || {
                        self.exchange_retryable(Method::GET, path, Some((IMDS_TOKEN_HEADER, &t)))
                    })
                    .await?
                }
                Auth::V1 => {
                    self.with_retries(max_attempts, || {
                        self.exchange_retryable(Method::GET, path, None)
                    })
                    .await?
                }
            };
            if status == 401 && !renewed && matches!(auth, Auth::Token(_)) {
                renewed = true;
                self.forget_token();
                continue;
            }
            return Ok((status, body));
        }
    }

    /// One fetch: each request (token, role, credentials) with at most
    /// `max_attempts` attempts.
    async fn fetch_inner(&self, max_attempts: u32) -> Result<Fetched, ImdsError> {
        let (status, body) = self.get(IMDS_ROLE_PATH, max_attempts).await?;
        if status == 404 {
            return Err(ImdsError::NoInstanceProfile {
                endpoint: self.endpoint_str(),
                detail: "404",
            });
        }
        self.expect_ok(status, IMDS_ROLE_PATH)?;
        let role = String::from_utf8_lossy(&body)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ImdsError::NoInstanceProfile {
                endpoint: self.endpoint_str(),
                detail: "empty",
            })?;
        if role.contains('/') || role.contains("..") {
            return Err(ImdsError::Malformed {
                endpoint: self.endpoint_str(),
                detail: format!("role name {role:?} is not a valid IAM role name"),
            });
        }
        let path = format!("{IMDS_ROLE_PATH}{role}");
        let (status, body) = self.get(&path, max_attempts).await?;
        self.expect_ok(status, &path)?;
        let doc =
            document::parse(&body, Dialect::Imds).map_err(|source| ImdsError::InvalidResponse {
                endpoint: self.endpoint_str(),
                role: role.clone(),
                source,
            })?;
        let mut expiration = doc.expiration;
        let now = self.ctx.clock.now();
        // Only credentials that are really expired: anything still valid is
        // the cache's to accept or refetch, never extended.
        if self.options.extend_stale_credentials && expiration <= now {
            let extended = now
                + Duration::from_secs(600)
                + uniform(&*self.ctx.rng, Duration::ZERO, Duration::from_secs(300));
            tracing::warn!(
                source = "imds",
                role = role.as_str(),
                expiration = %rfc3339::format(expiration),
                extended_to = %rfc3339::format(extended),
                "IMDS served expired credentials (likely an IMDS outage); using them until the extended time as the AWS SDKs do"
            );
            expiration = extended;
        }
        let mut credentials = doc.into_credentials(PROVIDER_NAME);
        *credentials.expiry_mut() = Some(expiration);
        Ok(Fetched {
            credentials,
            expiration,
            label: format!("imds:{role}"),
        })
    }

    fn expect_ok(&self, status: u16, path: &str) -> Result<(), ImdsError> {
        if status == 200 {
            Ok(())
        } else {
            Err(ImdsError::Status {
                endpoint: self.endpoint_str(),
                path: path.to_owned(),
                status,
            })
        }
    }
}

/// When to renew a session token that IMDS says lives `ttl_secs`: the TTL
/// is capped at what we asked for, so a hostile or broken header
/// (`9999999999999999999`) cannot overflow the clock.
fn token_refresh_after(now: SystemTime, ttl_secs: u64) -> SystemTime {
    let lifetime =
        Duration::from_secs(ttl_secs.min(IMDS_TOKEN_TTL_SECS)).saturating_sub(TOKEN_REFRESH_MARGIN);
    now.checked_add(lifetime).unwrap_or(now)
}

impl CredentialSource for ImdsSource {
    fn name(&self) -> &'static str {
        "imds"
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(self.options.retry.max_attempts).await
    }

    async fn fetch_once(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(1).await
    }

    fn fetch_timeout(&self) -> Duration {
        self.options.fetch_timeout
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.options.retry.clone()
    }
}

impl ImdsSource {
    /// One fetch under the overall deadline, each request with at most
    /// `max_attempts` attempts.
    async fn fetch_with(&self, max_attempts: u32) -> Result<Fetched, RefreshError> {
        let deadline = self.options.fetch_timeout;
        tokio::time::timeout(deadline, self.fetch_inner(max_attempts))
            .await
            .unwrap_or_else(|_| {
                Err(ImdsError::Timeout {
                    endpoint: self.endpoint_str(),
                    path: "(whole fetch)".into(),
                    after: deadline,
                })
            })
            .map_err(|e| RefreshError::new("imds", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_token_ttls_are_capped_not_overflowed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let capped = now + Duration::from_secs(IMDS_TOKEN_TTL_SECS) - TOKEN_REFRESH_MARGIN;
        assert_eq!(token_refresh_after(now, 9_999_999_999_999_999_999), capped);
        assert_eq!(token_refresh_after(now, u64::MAX), capped);
        assert_eq!(token_refresh_after(now, 21_600), capped);
        assert_eq!(token_refresh_after(now, 60), now);
        assert_eq!(
            token_refresh_after(now, 300),
            now + Duration::from_secs(180)
        );
    }

    #[test]
    fn options_validation_names_the_field() {
        let field = |o: ImdsOptions| match o.validate() {
            Err(ConfigError::InvalidSetting { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(ImdsOptions::default().validate().is_ok());
        assert_eq!(
            field(ImdsOptions::default().with_fetch_timeout(Duration::from_secs(2))),
            "imds.fetch_timeout"
        );
        assert_eq!(
            field(ImdsOptions::default().with_read_timeout(Duration::ZERO)),
            "imds.read_timeout"
        );
        assert_eq!(
            field(ImdsOptions::default().with_retry(RetryPolicy::default().with_max_attempts(0))),
            "imds.retry.max_attempts"
        );
    }
}
