//! Error types, one enum per layer.
//!
//! Every message says what failed and what to do about it. None of them
//! carries a secret: tokens and keys are never formatted into an error.
//!
//! `Display` says what its layer knows, `source()` gives the next layer,
//! never both: print the whole chain with [`ErrorChain`].

use aws_credential_types::provider::error::CredentialsError;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod kind;
mod report;
#[cfg(test)]
mod tests;

pub use kind::{Classify, ErrorKind};
pub use report::ErrorChain;

/// The environment describes an endpoint or token that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URI could not be parsed.
    #[error("{var}={value:?} is not a valid URI ({reason}); set it to e.g. http://169.254.170.23/v1/credentials")]
    InvalidUri {
        /// The environment variable (or builder option) that held it.
        var: &'static str,
        /// The offending value.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// An IPv6 literal was given without brackets.
    #[error("{var}={value:?}: IPv6 addresses must be bracketed in URIs, e.g. http://[fd00:ec2::23]/v1/credentials")]
    UnbracketedIpv6 {
        /// The environment variable (or builder option) that held it.
        var: &'static str,
        /// The offending value.
        value: String,
    },
    /// The scheme is neither `http` nor `https`.
    #[error(
        "{var}: scheme {scheme:?} is not supported; use https, or http to an allowed local address"
    )]
    UnsupportedScheme {
        /// The environment variable (or builder option) that held it.
        var: &'static str,
        /// The refused scheme.
        scheme: String,
    },
    /// Plain HTTP to a host that is not an allowed credentials endpoint.
    #[error("refusing to send the credentials token over plain http to {host}: {reason}. Allowed http hosts are loopback, 169.254.170.2, 169.254.170.23 and [fd00:ec2::23]; use https for anything else")]
    DisallowedHost {
        /// The refused host.
        host: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The relative URI does not start with `/`.
    #[error("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI={value:?} must be an absolute path starting with '/'")]
    InvalidRelativeUri {
        /// The offending value.
        value: String,
    },
    /// A setting was given an empty value.
    #[error("{var} is set but empty; unset it or give it a value")]
    Empty {
        /// The environment variable that was empty.
        var: &'static str,
    },
    /// The configured endpoint could not be turned into an HTTP client.
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    /// An `https` endpoint in a build without TLS (the provider's `rustls`
    /// feature, on by default, was turned off).
    #[error("{endpoint} needs TLS, but eks-pod-identity-provider was built without it: enable its `rustls` feature (on by default; `default-features = false` turns it off), or use a plain-http endpoint (the Pod Identity Agent and IMDS are plain http)")]
    TlsNotEnabled {
        /// The endpoint's origin (scheme, host and port; never a path or
        /// user info).
        endpoint: String,
    },
    /// A builder setting (policy, timeout) is out of range.
    #[error("invalid setting {field}: {reason}")]
    InvalidSetting {
        /// The setting, e.g. `refresh_policy.mandatory_window` or `timeouts.attempt`.
        field: &'static str,
        /// What is wrong with it and what it must be.
        reason: String,
    },
}

impl Classify for ConfigError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::DisallowedHost { .. } => ErrorKind::RefusedHost,
            _ => ErrorKind::InvalidConfiguration,
        }
    }
}

/// Where a token came from, for error messages (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// A file, usually `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    File(PathBuf),
    /// The `AWS_CONTAINER_AUTHORIZATION_TOKEN` environment variable (or a builder value).
    Value,
}

impl fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenOrigin::File(p) => write!(f, "token file {}", p.display()),
            TokenOrigin::Value => f.write_str("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        }
    }
}

/// The authorization token could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read {origin}; check the projected service-account volume is mounted (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)")]
    Read {
        /// Where the token was expected.
        origin: TokenOrigin,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token is empty.
    #[error("{origin} is empty")]
    Empty {
        /// Where the token came from.
        origin: TokenOrigin,
    },
    /// The token is larger than the cap.
    #[error("{origin} is larger than {limit} bytes; it is not a service-account token")]
    TooLarge {
        /// Where the token came from.
        origin: TokenOrigin,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The token contains CR/LF (other than one trailing newline) or other
    /// bytes that cannot go in an HTTP header.
    #[error("{origin} contains a line break or control character; refusing to send it as a header (header injection)")]
    InvalidCharacters {
        /// Where the token came from.
        origin: TokenOrigin,
    },
}

impl Classify for TokenError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Token
    }
}

/// A request to the Pod Identity Agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The token could not be read.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A hostname resolved to an address that is not allowed.
    #[error("refusing to contact {host}: it resolved to {addr}, which is not an allowed credentials endpoint for plain http (loopback, 169.254.170.2, 169.254.170.23, fd00:ec2::23); use https")]
    RefusedAddress {
        /// The hostname.
        host: String,
        /// The refused address.
        addr: std::net::IpAddr,
    },
    /// The TCP connection failed.
    #[error("could not connect to the Pod Identity Agent at {uri}: {detail}; is the eks-pod-identity-agent add-on running on this node?")]
    Connect {
        /// The agent URI.
        uri: String,
        /// The underlying error.
        detail: String,
    },
    /// The request timed out.
    #[error("the Pod Identity Agent at {uri} did not answer within {after:?}")]
    Timeout {
        /// The agent URI.
        uri: String,
        /// How long we waited.
        after: Duration,
    },
    /// The agent answered with an error status.
    #[error("the Pod Identity Agent at {uri} answered {status}: {message}{hint}", hint = status_hint(*status, message))]
    Status {
        /// The agent URI.
        uri: String,
        /// The HTTP status code.
        status: u16,
        /// The agent's text/plain message, trimmed and truncated.
        message: String,
    },
    /// The response body exceeded the cap.
    #[error("the Pod Identity Agent at {uri} sent a body over {limit} bytes")]
    BodyTooLarge {
        /// The agent URI.
        uri: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The 200 response could not be parsed.
    #[error("the Pod Identity Agent at {uri} sent an invalid credentials document")]
    InvalidResponse {
        /// The agent URI.
        uri: String,
        /// What was wrong.
        source: ParseError,
    },
    /// The TLS handshake failed (https endpoints only).
    #[error("TLS handshake with the credentials endpoint at {uri} failed: {detail}; check the endpoint speaks https and its certificate is trusted")]
    Tls {
        /// The agent URI.
        uri: String,
        /// The underlying error.
        detail: String,
    },
    /// Any other transport failure (a broken or truncated response).
    #[error("request to the Pod Identity Agent at {uri} failed: {detail}")]
    Transport {
        /// The agent URI.
        uri: String,
        /// The underlying error.
        detail: String,
    },
}

fn status_hint(status: u16, message: &str) -> &'static str {
    if status == 400 && is_token_expired_message(message) {
        " (the projected service-account token is expired: is the kubelet rotating it?)"
    } else if status == 403 {
        " (the agent only answers requests addressed to 169.254.170.23 or [fd00:ec2::23])"
    } else if status == 404 && message.contains("ResourceNotFound") {
        " (no pod identity association for this service account: create one with `aws eks create-pod-identity-association`)"
    } else if status == 400 && message.contains("AccessDenied") {
        " (check the role's trust policy allows pods.eks.amazonaws.com sts:AssumeRole and sts:TagSession)"
    } else {
        ""
    }
}

/// Whether an agent 400 message says the service-account token expired.
pub(crate) fn is_token_expired_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("token is expired") || m.contains("expiredtoken")
}

impl AgentError {
    /// Whether another attempt may succeed (5xx, 429, connect errors, timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            AgentError::Connect { .. } | AgentError::Timeout { .. } => true,
            AgentError::Transport { .. } => true,
            AgentError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The HTTP status, when the agent answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AgentError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Classify for AgentError {
    fn kind(&self) -> ErrorKind {
        match self {
            AgentError::Token(e) => e.kind(),
            AgentError::RefusedAddress { .. } => ErrorKind::RefusedHost,
            AgentError::Connect { .. } => ErrorKind::Connect,
            AgentError::Timeout { .. } => ErrorKind::Timeout,
            AgentError::Status {
                status, message, ..
            } => match *status {
                429 => ErrorKind::Throttled,
                400 if is_token_expired_message(message) => ErrorKind::TokenExpired,
                s if s >= 500 => ErrorKind::ServerError,
                _ => ErrorKind::ClientError,
            },
            AgentError::BodyTooLarge { .. } | AgentError::InvalidResponse { .. } => {
                ErrorKind::InvalidResponse
            }
            AgentError::Tls { .. } => ErrorKind::Tls,
            AgentError::Transport { .. } => ErrorKind::Transport,
        }
    }
}

/// A credentials document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A required field is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or is empty.
    #[error("field {field} must be a non-empty string")]
    WrongType {
        /// The field name.
        field: &'static str,
    },
    /// The expiration is not an RFC 3339 timestamp.
    #[error("Expiration {value:?} is not an RFC 3339 timestamp with a time zone")]
    InvalidExpiration {
        /// The offending value (timestamps are not secret).
        value: String,
    },
    /// The IMDS document's `Code` is not `Success`.
    #[error("Code is {code:?}, not \"Success\"")]
    NotSuccess {
        /// The code the peer sent.
        code: String,
    },
}

/// A refresh failed. Shared by every caller that waited on the same fetch.
///
/// Cheap to clone; the source's own typed error is available through
/// [`RefreshError::source_error`] for downcasting (e.g. to [`AgentError`]).
/// `Display` names the source that failed; [`source()`](StdError::source)
/// is that source's error, so print it with [`ErrorChain`].
#[derive(Debug, Clone)]
pub struct RefreshError {
    kind: ErrorKind,
    source: Arc<dyn StdError + Send + Sync + 'static>,
    source_name: &'static str,
}

impl RefreshError {
    /// Wraps a source's typed error (custom [`CredentialSource`](crate::CredentialSource)s use this).
    pub fn new<E>(source_name: &'static str, error: E) -> Self
    where
        E: StdError + Classify + Send + Sync + 'static,
    {
        Self {
            kind: error.kind(),
            source: Arc::new(error),
            source_name,
        }
    }

    /// The stable classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The underlying typed error (downcast it to [`AgentError`], [`TokenError`]...).
    pub fn source_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The credential source that failed (`pod-identity`, `imds`, ...).
    pub fn source_name(&self) -> &'static str {
        self.source_name
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not get credentials from {}", self.source_name)
    }
}

impl StdError for RefreshError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// The SDK's error for a failed refresh, keeping the refresh error as its
/// source: not configured → `not_loaded`, a configuration the provider
/// refuses → `invalid_configuration`, anything else → `provider_error`.
impl From<RefreshError> for CredentialsError {
    fn from(err: RefreshError) -> Self {
        match err.kind() {
            ErrorKind::NotConfigured => CredentialsError::not_loaded(err),
            ErrorKind::InvalidConfiguration
            | ErrorKind::RefusedHost
            | ErrorKind::FallbackDenied => CredentialsError::invalid_configuration(err),
            _ => CredentialsError::provider_error(err),
        }
    }
}

/// Credentials arrived that cannot be used because they expire too soon.
#[derive(Debug, thiserror::Error)]
#[error("received credentials expiring at {expiration} ({remaining}), inside the {window:?} mandatory refresh window; treating the fetch as failed")]
pub struct ExpiresTooSoon {
    /// When the received credentials expire (RFC 3339).
    pub expiration: String,
    /// Human-readable remaining lifetime ("already expired" or "in 12s").
    pub remaining: String,
    /// The mandatory refresh window.
    pub window: Duration,
}

impl ExpiresTooSoon {
    pub(crate) fn new(expiration: SystemTime, now: SystemTime, window: Duration) -> Self {
        let remaining = match expiration.duration_since(now) {
            Ok(d) if !d.is_zero() => format!("in {}s", d.as_secs()),
            Ok(_) => "already expired".to_owned(),
            Err(e) => format!("already expired {}s ago", e.duration().as_secs()),
        };
        Self {
            expiration: crate::support::rfc3339::format(expiration),
            remaining,
            window,
        }
    }
}

impl Classify for ExpiresTooSoon {
    fn kind(&self) -> ErrorKind {
        ErrorKind::ExpiresTooSoon
    }
}

/// A fetch that ended without an answer from its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchAborted {
    /// The task running the fetch was dropped before it completed, usually
    /// because the tokio runtime it ran on shut down.
    #[error("the credentials fetch was cancelled before it completed (the tokio runtime running it shut down); the next call starts a new fetch")]
    Cancelled,
    /// The credential source panicked.
    #[error("the credential source {source_name} panicked during the fetch (a bug in that source); the next call starts a new fetch")]
    Panicked {
        /// The source's name.
        source_name: &'static str,
    },
    /// The fetch did not finish within its deadline plus a margin: the
    /// runtime running it is no longer driven.
    #[error("the credentials fetch did not finish within {after:?} (the tokio runtime running it is blocked or no longer driven); the next call starts a new fetch")]
    Stalled {
        /// How long the caller waited.
        after: Duration,
    },
    /// The source did not complete the fetch within its deadline.
    #[error("the credential source did not complete a fetch within {after:?}")]
    DeadlineExceeded {
        /// The source's fetch deadline.
        after: Duration,
    },
    /// Credentials were needed outside any tokio runtime.
    #[error("credentials must be fetched but no tokio runtime is running: call from inside a tokio runtime (with time and I/O drivers enabled)")]
    NoRuntime,
}

impl Classify for FetchAborted {
    fn kind(&self) -> ErrorKind {
        match self {
            FetchAborted::Cancelled | FetchAborted::Panicked { .. } => ErrorKind::Internal,
            FetchAborted::Stalled { .. } | FetchAborted::DeadlineExceeded { .. } => {
                ErrorKind::Timeout
            }
            FetchAborted::NoRuntime => ErrorKind::NoRuntime,
        }
    }
}

/// A request to the EC2 instance metadata service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImdsError {
    /// The token PUT connected but was never answered.
    #[error("IMDS at {endpoint} accepted the connection but never answered the token request within {after:?}. From a Kubernetes pod this is what an IMDSv2 hop limit of 1 looks like (the answer dies one hop early), which protects the node's IAM role: configure EKS Pod Identity for this pod instead of IMDS")]
    TokenUnanswered {
        /// The IMDS endpoint.
        endpoint: String,
        /// How long we waited.
        after: Duration,
    },
    /// The token PUT was answered 403.
    #[error("IMDS at {endpoint} refused the token request (403): IMDS is disabled or forbidden on this instance")]
    Disabled {
        /// The IMDS endpoint.
        endpoint: String,
    },
    /// The token response lacked the TTL header.
    #[error("IMDS at {endpoint} answered the token request without the x-aws-ec2-metadata-token-ttl-seconds header; this is not a conforming IMDSv2 endpoint")]
    MissingTtlHeader {
        /// The IMDS endpoint.
        endpoint: String,
    },
    /// No instance profile is attached.
    #[error("IMDS at {endpoint} has no IAM instance profile (security-credentials is {detail}): attach an instance profile, or configure EKS Pod Identity")]
    NoInstanceProfile {
        /// The IMDS endpoint.
        endpoint: String,
        /// `404` or `empty`.
        detail: &'static str,
    },
    /// The connection failed.
    #[error("could not connect to IMDS at {endpoint}: {detail}")]
    Connect {
        /// The IMDS endpoint.
        endpoint: String,
        /// The underlying error.
        detail: String,
    },
    /// A connect or read deadline passed.
    #[error("IMDS at {endpoint} did not answer {path} within {after:?}")]
    Timeout {
        /// The IMDS endpoint.
        endpoint: String,
        /// The request path.
        path: String,
        /// How long we waited.
        after: Duration,
    },
    /// An unexpected status.
    #[error("IMDS at {endpoint} answered {status} to {path}{hint}", hint = if *status == 401 { " (token rejected twice)" } else if *status == 400 { " (invalid request)" } else { "" })]
    Status {
        /// The IMDS endpoint.
        endpoint: String,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body exceeded the cap.
    #[error("IMDS at {endpoint} sent a body over {limit} bytes for {path}")]
    BodyTooLarge {
        /// The IMDS endpoint.
        endpoint: String,
        /// The request path.
        path: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The credentials document was invalid.
    #[error("IMDS at {endpoint} sent invalid credentials for role {role}")]
    InvalidResponse {
        /// The IMDS endpoint.
        endpoint: String,
        /// The role name.
        role: String,
        /// What was wrong.
        source: ParseError,
    },
    /// Any other transport failure (a broken or truncated response, TLS).
    #[error("request to IMDS at {endpoint} failed: {detail}")]
    Transport {
        /// The IMDS endpoint.
        endpoint: String,
        /// The underlying error.
        detail: String,
    },
    /// The TLS handshake failed (an `https` IMDS endpoint override).
    #[error("TLS handshake with IMDS at {endpoint} failed: {detail}; check the endpoint speaks https and its certificate is trusted")]
    Tls {
        /// The IMDS endpoint.
        endpoint: String,
        /// The underlying error.
        detail: String,
    },
    /// IMDS answered something that is not what the protocol says (an
    /// unusable session token, an invalid role name).
    #[error("IMDS at {endpoint} sent an invalid answer: {detail}")]
    Malformed {
        /// The IMDS endpoint.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
}

impl ImdsError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ImdsError::Connect { .. } | ImdsError::Timeout { .. } | ImdsError::Transport { .. } => {
                true
            }
            ImdsError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl Classify for ImdsError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImdsError::TokenUnanswered { .. } | ImdsError::Timeout { .. } => ErrorKind::Timeout,
            ImdsError::Disabled { .. } => ErrorKind::ImdsDisabled,
            ImdsError::NoInstanceProfile { .. } => ErrorKind::NoInstanceProfile,
            ImdsError::Connect { .. } => ErrorKind::Connect,
            ImdsError::Transport { .. } => ErrorKind::Transport,
            ImdsError::Tls { .. } => ErrorKind::Tls,
            ImdsError::Status { status, .. } if *status >= 500 => ErrorKind::ServerError,
            ImdsError::Status { status: 429, .. } => ErrorKind::Throttled,
            ImdsError::Status { .. } => ErrorKind::ClientError,
            ImdsError::MissingTtlHeader { .. }
            | ImdsError::BodyTooLarge { .. }
            | ImdsError::InvalidResponse { .. }
            | ImdsError::Malformed { .. } => ErrorKind::InvalidResponse,
        }
    }
}
