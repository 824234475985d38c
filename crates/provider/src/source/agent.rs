//! The HTTP client of the EKS Pod Identity Agent (and the ECS endpoint,
//! which speaks the same protocol).

use super::document::{self, CredentialsDocument};
use super::retry::RetryPolicy;
use super::token;
use super::{CredentialSource, Fetched};
use crate::config::{self, vars, AgentEndpoint, TokenSource};
use crate::context::ProviderContext;
use crate::error::{
    is_token_expired_message, AgentError, Classify, ConfigError, ErrorChain, RefreshError,
    TokenError, TokenOrigin,
};
use crate::protocol::MAX_BODY_BYTES;
use crate::support::http::{self, BodyError, ClientSettings};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The provider name stamped on credentials from the agent.
pub(crate) const PROVIDER_NAME: &str = "EksPodIdentity";

/// Timeouts of agent requests.
///
/// ```
/// use eks_pod_identity_provider::Timeouts;
/// use std::time::Duration;
/// let t = Timeouts::default().with_attempt(Duration::from_secs(3));
/// assert!(t.validate().is_ok());
/// assert!(Timeouts::default().with_attempt(Duration::from_secs(20)).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// TCP connect timeout (default 1 s: the agent is node-local).
    pub connect: Duration,
    /// Deadline of one attempt, headers and body (default 5 s: longer than
    /// the agent's own 1 s call to EKS Auth).
    pub attempt: Duration,
    /// Deadline of a whole fetch, all attempts and backoff (default 12 s).
    pub fetch: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            attempt: Duration::from_secs(5),
            fetch: Duration::from_secs(12),
        }
    }
}

impl Timeouts {
    /// Sets [`connect`](Self::connect).
    pub fn with_connect(mut self, timeout: Duration) -> Self {
        self.connect = timeout;
        self
    }

    /// Sets [`attempt`](Self::attempt).
    pub fn with_attempt(mut self, timeout: Duration) -> Self {
        self.attempt = timeout;
        self
    }

    /// Sets [`fetch`](Self::fetch).
    pub fn with_fetch(mut self, timeout: Duration) -> Self {
        self.fetch = timeout;
        self
    }

    /// Checks the settings: every timeout above zero, and
    /// `connect ≤ attempt ≤ fetch`. The error names the offending field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::InvalidSetting { field, reason });
        for (field, value) in [
            ("timeouts.connect", self.connect),
            ("timeouts.attempt", self.attempt),
            ("timeouts.fetch", self.fetch),
        ] {
            if value.is_zero() {
                return invalid(field, "must be more than zero".into());
            }
        }
        if self.connect > self.attempt {
            return invalid(
                "timeouts.connect",
                format!(
                    "{:?} is more than the attempt timeout ({:?}), which includes the connect",
                    self.connect, self.attempt
                ),
            );
        }
        if self.attempt > self.fetch {
            return invalid(
                "timeouts.attempt",
                format!(
                    "{:?} is more than the fetch timeout ({:?}), which includes every attempt",
                    self.attempt, self.fetch
                ),
            );
        }
        Ok(())
    }
}

/// Why a Pod Identity provider (or its source) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither the environment nor the builder names an endpoint.
    #[error("EKS Pod Identity is not configured: neither {full} nor {relative} is set (EKS sets them in pods whose service account has a pod identity association; check the association and that the pod was created after it)", full = vars::FULL_URI, relative = vars::RELATIVE_URI)]
    NotConfigured,
    /// The configuration is present but invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What an [`AgentSource`] is built from: the values a builder was given;
/// the environment (through `ctx`) fills in the endpoint and token they
/// leave out. Shared by the provider's builder and the chain's, which both
/// build their agent source with [`AgentSource::from_settings`].
#[derive(Debug, Default, Clone)]
pub(crate) struct AgentSettings {
    pub(crate) endpoint: Option<String>,
    pub(crate) token: Option<TokenSource>,
    pub(crate) ctx: ProviderContext,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeouts: Timeouts,
}

impl AgentSettings {
    /// Resolves endpoint and token: the settings' values first, then the
    /// environment.
    fn resolve(&self) -> Result<(AgentEndpoint, Option<TokenSource>), BuildError> {
        let env = self.ctx.env();
        let (endpoint, env_token) = match &self.endpoint {
            Some(uri) => (
                config::validate_uri("endpoint", uri)?,
                config::token_from_env(env),
            ),
            None => match config::container_credentials_from_env(env)? {
                Some(found) => (found.endpoint, found.token),
                None => return Err(BuildError::NotConfigured),
            },
        };
        Ok((endpoint, self.token.clone().or(env_token)))
    }
}

/// Fetches credentials from the Pod Identity Agent.
pub struct AgentSource {
    endpoint: AgentEndpoint,
    token: Option<TokenSource>,
    client: Arc<reqwest::Client>,
    ctx: ProviderContext,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl fmt::Debug for AgentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSource")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl AgentSource {
    /// The agent source the settings describe: checks the retry policy and
    /// the timeouts (the error names the offending field), then resolves
    /// endpoint and token. Nothing is fetched.
    pub(crate) fn from_settings(settings: &AgentSettings) -> Result<Self, BuildError> {
        settings.retry.validate()?;
        settings.timeouts.validate()?;
        let (endpoint, token) = settings.resolve()?;
        Ok(Self::new(
            endpoint,
            token,
            settings.ctx.clone(),
            settings.retry.clone(),
            settings.timeouts.clone(),
        )?)
    }

    fn new(
        endpoint: AgentEndpoint,
        token: Option<TokenSource>,
        ctx: ProviderContext,
        retry: RetryPolicy,
        timeouts: Timeouts,
    ) -> Result<Self, ConfigError> {
        http::require_tls_support(endpoint.uri())?;
        let client = http::shared_client(ClientSettings {
            connect_timeout: timeouts.connect,
            read_timeout: None,
            restrict_resolution: endpoint
                .must_resolve_to_allowed()
                .then(|| ctx.resolver.clone()),
            https: endpoint.uri().scheme() == "https",
        })
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            endpoint,
            token,
            client,
            ctx,
            retry,
            timeouts,
        })
    }

    /// The agent endpoint.
    pub fn endpoint(&self) -> &AgentEndpoint {
        &self.endpoint
    }

    fn uri(&self) -> String {
        self.endpoint.uri().to_string()
    }

    /// One request, re-reading the token.
    async fn attempt(&self) -> Result<CredentialsDocument, AgentError> {
        let mut request = self
            .client
            .get(self.endpoint.uri().clone())
            .header(ACCEPT, "application/json");
        let mut sent_token = None;
        if let Some(source) = &self.token {
            let secret = token::load(source, &*self.ctx.fs)?;
            let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
                TokenError::InvalidCharacters {
                    origin: match source {
                        TokenSource::File(p) => TokenOrigin::File(p.clone()),
                        TokenSource::Value(_) => TokenOrigin::Value,
                    },
                }
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
            sent_token = Some(secret);
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let body = http::read_capped(response, MAX_BODY_BYTES)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge => AgentError::BodyTooLarge {
                        uri: self.uri(),
                        limit: MAX_BODY_BYTES,
                    },
                    BodyError::Transport(e) => self.transport_error(e),
                })?;
            Ok::<_, AgentError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeouts.attempt, exchange)
            .await
            .map_err(|_| AgentError::Timeout {
                uri: self.uri(),
                after: self.timeouts.attempt,
            })??;
        if status == 200 {
            document::parse_container(&body).map_err(|source| AgentError::InvalidResponse {
                uri: self.uri(),
                source,
            })
        } else {
            Err(AgentError::Status {
                uri: self.uri(),
                status,
                message: error_message(&body, sent_token.as_ref().map(|t| t.expose())),
            })
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> AgentError {
        if let Some(refused) = http::find_refusal(&e) {
            return AgentError::RefusedAddress {
                host: refused.host.clone(),
                addr: refused.addr,
            };
        }
        if e.is_timeout() {
            AgentError::Timeout {
                uri: self.uri(),
                after: self.timeouts.connect,
            }
        } else if http::is_tls_error(&e) {
            AgentError::Tls {
                uri: self.uri(),
                detail: http::root_cause(&e),
            }
        } else if e.is_connect() {
            AgentError::Connect {
                uri: self.uri(),
                detail: http::root_cause(&e),
            }
        } else {
            AgentError::Transport {
                uri: self.uri(),
                detail: http::root_cause(&e),
            }
        }
    }

    /// One fetch: up to `max_attempts` attempts with jittered backoff, plus
    /// one immediate re-read-and-retry when the agent says the token expired
    /// (a rotated file is a fix, not a retry, so single-attempt fetches get
    /// it too).
    async fn fetch_document(&self, max_attempts: u32) -> Result<CredentialsDocument, AgentError> {
        let mut attempt = 1;
        let mut reread_token = false;
        loop {
            let err = match self.attempt().await {
                Ok(doc) => return Ok(doc),
                Err(err) => err,
            };
            let token_expired = matches!(&err, AgentError::Status { status: 400, message, .. } if is_token_expired_message(message));
            if token_expired && !reread_token && self.token.is_some() {
                // The kubelet may have rotated the file since we read it.
                reread_token = true;
                tracing::warn!(source = "pod-identity", attempt, error_kind = err.kind().as_str(), "agent rejected the token as expired; re-reading the token file and retrying once");
                continue;
            }
            if !err.is_retryable() || attempt >= max_attempts {
                return Err(err);
            }
            let delay = self.retry.backoff(attempt, &*self.ctx.rng);
            tracing::debug!(source = "pod-identity", attempt, error_kind = err.kind().as_str(), error = %ErrorChain(&err).one_line(), delay_ms = delay.as_millis() as u64, "agent request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One fetch of at most `max_attempts` attempts, under the fetch deadline.
    async fn fetch_with(&self, max_attempts: u32) -> Result<Fetched, RefreshError> {
        let doc = tokio::time::timeout(self.timeouts.fetch, self.fetch_document(max_attempts))
            .await
            .unwrap_or_else(|_| {
                Err(AgentError::Timeout {
                    uri: self.uri(),
                    after: self.timeouts.fetch,
                })
            })
            .map_err(|e| RefreshError::new(self.name(), e))?;
        let expiration = doc.expiration;
        Ok(Fetched {
            credentials: doc.into_credentials(PROVIDER_NAME),
            expiration,
            label: "pod-identity".to_owned(),
        })
    }
}

/// The agent's text/plain error, trimmed and bounded for logs. A peer that
/// echoes the token back (a misrouted request, a hostile or debugging
/// server) must not get it into our errors and logs: it is redacted.
fn error_message(body: &[u8], token: Option<&str>) -> String {
    let text = String::from_utf8_lossy(body);
    let text = match token {
        Some(t) if !t.is_empty() => text.replace(t, "** redacted **"),
        _ => text.into_owned(),
    };
    let text = text.trim();
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(512).collect();
    if text.chars().count() > 512 {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(empty body)");
    }
    out
}

impl CredentialSource for AgentSource {
    fn name(&self) -> &'static str {
        "pod-identity"
    }

    fn fetch_timeout(&self) -> Duration {
        self.timeouts.fetch
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry.clone()
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(self.retry.max_attempts).await
    }

    async fn fetch_once(&self) -> Result<Fetched, RefreshError> {
        self.fetch_with(1).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::error::ErrorKind;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// An agent answering 500 to everything, and its credentials URI.
    pub(crate) async fn agent_answering_500() -> (MockServer, String) {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(500).set_body_string("agent unavailable"))
            .mount(&server)
            .await;
        let uri = format!("{}/v1/credentials", server.uri());
        (server, uri)
    }

    /// The background refresh's `fetch_once` is one request; a waiting
    /// caller's `fetch` gets the whole retry policy.
    #[tokio::test]
    async fn fetch_once_makes_one_request_and_fetch_the_whole_retry_policy() {
        let (server, uri) = agent_answering_500().await;
        let source = AgentSource::new(
            config::validate_uri("endpoint", &uri).unwrap(),
            Some(TokenSource::Value(Secret::new("token"))),
            ProviderContext::default(),
            RetryPolicy::default(),
            Timeouts::default(),
        )
        .unwrap();
        let requests = || async { server.received_requests().await.unwrap().len() };

        let err = source.fetch_once().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerError);
        assert_eq!(requests().await, 1);

        let err = source.fetch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerError);
        let attempts = RetryPolicy::default().max_attempts as usize;
        assert!(attempts > 1);
        assert_eq!(requests().await, 1 + attempts);
    }
}
