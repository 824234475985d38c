//! The stable classification of failures, shared by every source's errors.

use std::fmt;

/// A stable, machine-readable classification of a failure.
///
/// Used as the `error.kind` field of `tracing` events and in
/// [`Status`](crate::Status); the string forms never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source is not configured (its environment variables are absent).
    NotConfigured,
    /// The configuration is present but invalid (bad URI, refused host...).
    InvalidConfiguration,
    /// The service-account token could not be read or is malformed.
    Token,
    /// The TCP connection could not be established.
    Connect,
    /// A connect, response or overall deadline passed.
    Timeout,
    /// The peer answered 429 (throttled).
    Throttled,
    /// The peer answered 5xx.
    ServerError,
    /// The peer answered a 4xx other than 429.
    ClientError,
    /// The agent rejected the service-account token as expired.
    TokenExpired,
    /// The peer's answer could not be understood.
    InvalidResponse,
    /// Credentials arrived already expired or too close to expiry to use.
    ExpiresTooSoon,
    /// A host or resolved address is not an allowed credentials endpoint.
    RefusedHost,
    /// IMDS answered 403 to the token request (disabled or forbidden).
    ImdsDisabled,
    /// IMDS has no instance profile attached.
    NoInstanceProfile,
    /// Falling back to IMDS was refused by the fallback policy.
    FallbackDenied,
    /// The refresh could not complete (task cancelled or the source panicked).
    Internal,
    /// The TLS handshake with an `https` endpoint failed (certificate,
    /// protocol, or a peer that does not speak TLS).
    Tls,
    /// The connection broke after it was established (a truncated body, a
    /// reset mid-response, an HTTP protocol error).
    Transport,
    /// Credentials were needed outside any tokio runtime.
    NoRuntime,
}

impl ErrorKind {
    /// The stable string form, e.g. `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotConfigured => "not_configured",
            ErrorKind::InvalidConfiguration => "invalid_configuration",
            ErrorKind::Token => "token",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Throttled => "throttled",
            ErrorKind::ServerError => "server_error",
            ErrorKind::ClientError => "client_error",
            ErrorKind::TokenExpired => "token_expired",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::ExpiresTooSoon => "expires_too_soon",
            ErrorKind::RefusedHost => "refused_host",
            ErrorKind::ImdsDisabled => "imds_disabled",
            ErrorKind::NoInstanceProfile => "no_instance_profile",
            ErrorKind::FallbackDenied => "fallback_denied",
            ErrorKind::Internal => "internal",
            ErrorKind::Tls => "tls",
            ErrorKind::Transport => "transport",
            ErrorKind::NoRuntime => "no_runtime",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every error a credential source can produce.
pub trait Classify {
    /// The stable classification of this error.
    fn kind(&self) -> ErrorKind;
}
