//! Environment → settings, with no I/O.
//!
//! This module only interprets strings: which variables are set, what the
//! URI is, whether its host may receive the token over plain HTTP. Reading
//! the token file, resolving hostnames and talking HTTP happen elsewhere, so
//! every rule here is unit-tested as a table.

use crate::error::ConfigError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use url::{Host, Url};

use crate::context::Env;

/// Names of the environment variables the provider reads.
pub mod vars {
    /// Full URI of the credentials endpoint (EKS Pod Identity sets
    /// `http://169.254.170.23/v1/credentials`).
    pub const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    /// Path on `http://169.254.170.2` (ECS task roles).
    pub const RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    /// File holding the authorization token; re-read on every fetch.
    pub const TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
    /// The authorization token itself (used only when no token file is set).
    pub const TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
    /// Set by Kubernetes in every pod; tells us IMDS would be the node's role.
    pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";
    /// Overrides the IMDS endpoint.
    pub const IMDS_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
    /// `IPv4` or `IPv6`: which default IMDS endpoint to use.
    pub const IMDS_ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
    /// `true` disables IMDS.
    pub const IMDS_DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
}

// The addresses this module checks URIs against; defined in `protocol`,
// the one home of the wire facts.
use crate::protocol::{ECS_HOST, POD_IDENTITY_AGENT_V4, POD_IDENTITY_AGENT_V6};

/// A validated credentials endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentEndpoint {
    uri: Url,
    must_resolve_to_allowed: bool,
}

impl AgentEndpoint {
    /// Validates `uri` against the SDKs' rules (see [`validate_uri`]).
    ///
    /// # Errors
    ///
    /// As [`validate_uri`].
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        validate_uri("endpoint", uri)
    }

    /// The URI requests go to.
    pub fn uri(&self) -> &Url {
        &self.uri
    }

    /// `true` when the host is a name sent over plain http: every address it
    /// resolves to must then be an allowed one (checked at connect time).
    pub fn must_resolve_to_allowed(&self) -> bool {
        self.must_resolve_to_allowed
    }

    /// `true` when the host is loopback or link-local (the agent's and ECS's
    /// addresses). Informational: requests to any credentials endpoint
    /// never use a proxy, whatever the host.
    pub fn is_local(&self) -> bool {
        match self.uri.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local(),
            Some(Host::Ipv6(ip)) => {
                ip.is_loopback()
                    || ip == POD_IDENTITY_AGENT_V6
                    || (ip.segments()[0] & 0xffc0) == 0xfe80
            }
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
    }
}

impl fmt::Debug for AgentEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AgentEndpoint")
            .field(&self.uri.as_str())
            .finish()
    }
}

impl fmt::Display for AgentEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri.as_str())
    }
}

/// A secret string whose `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// Where the authorization token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file, re-read on every fetch (the kubelet rotates it).
    File(PathBuf),
    /// A fixed value.
    Value(Secret),
}

/// Pod Identity settings found in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentialsEnv {
    /// The validated endpoint.
    pub endpoint: AgentEndpoint,
    /// Which variable the endpoint came from.
    pub endpoint_var: &'static str,
    /// The token source, if any (ECS task roles need none).
    pub token: Option<TokenSource>,
}

/// Reads the container-credentials variables exactly as the AWS SDKs do.
///
/// Returns `Ok(None)` when neither URI variable is set: Pod Identity is not
/// configured. `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` wins over
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (SDK precedence), and the token file
/// wins over the token value.
///
/// # Errors
///
/// The relative URI does not start with `/`, or the URI is refused (see
/// [`validate_uri`]).
///
/// ```
/// use eks_pod_identity_provider::config::container_credentials_from_env;
/// use eks_pod_identity_provider::MapEnv;
/// let env = MapEnv::from_iter([
///     ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"),
///     ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"),
/// ]);
/// let found = container_credentials_from_env(&env).unwrap().unwrap();
/// assert_eq!(found.endpoint.uri().as_str(), "http://169.254.170.23/v1/credentials");
///
/// let refused = MapEnv::from_iter([("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds")]);
/// assert!(container_credentials_from_env(&refused).is_err());
/// ```
pub fn container_credentials_from_env(
    env: &dyn Env,
) -> Result<Option<ContainerCredentialsEnv>, ConfigError> {
    let (endpoint, endpoint_var) = if let Some(rel) = env.non_empty(vars::RELATIVE_URI) {
        if !rel.starts_with('/') {
            return Err(ConfigError::InvalidRelativeUri { value: rel });
        }
        let uri = format!("http://{ECS_HOST}{rel}");
        (validate_uri(vars::RELATIVE_URI, &uri)?, vars::RELATIVE_URI)
    } else if let Some(full) = env.non_empty(vars::FULL_URI) {
        (validate_uri(vars::FULL_URI, &full)?, vars::FULL_URI)
    } else {
        return Ok(None);
    };
    Ok(Some(ContainerCredentialsEnv {
        endpoint,
        endpoint_var,
        token: token_from_env(env),
    }))
}

/// The token source named by the environment: the file wins over the value.
/// Reads variables only (the file is read on every fetch, not here).
pub fn token_from_env(env: &dyn Env) -> Option<TokenSource> {
    if let Some(file) = env.non_empty(vars::TOKEN_FILE) {
        Some(TokenSource::File(PathBuf::from(file)))
    } else {
        env.non_empty(vars::TOKEN)
            .map(|t| TokenSource::Value(Secret::new(t)))
    }
}

/// Whether plain HTTP may carry the token to `ip`: loopback, the ECS
/// endpoint `169.254.170.2`, and the EKS agent `169.254.170.23` /
/// `fd00:ec2::23` (the IPv6 one unconditionally: conditional acceptance
/// broke IPv6 clusters in another SDK).
///
/// ```
/// use eks_pod_identity_provider::config::is_allowed_http_ip;
/// assert!(is_allowed_http_ip("169.254.170.23".parse().unwrap()));
/// assert!(is_allowed_http_ip("fd00:ec2::23".parse().unwrap()));
/// assert!(!is_allowed_http_ip("169.254.169.254".parse().unwrap()));
/// ```
pub fn is_allowed_http_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4 == ECS_HOST || v4 == POD_IDENTITY_AGENT_V4,
        IpAddr::V6(v6) => v6.is_loopback() || v6 == POD_IDENTITY_AGENT_V6,
    }
}

/// Validates a credentials URI: `https` to any host; `http` only to an
/// allowed address (see [`is_allowed_http_ip`]) or to a hostname that must
/// resolve only to allowed addresses.
///
/// # Errors
///
/// A [`ConfigError`] naming `var` and the fix: the URI does not parse (an
/// unbracketed IPv6 address gets its own error), its scheme is not
/// `http`/`https`, or plain `http` goes to an address that may not receive
/// the token.
pub fn validate_uri(var: &'static str, raw: &str) -> Result<AgentEndpoint, ConfigError> {
    let raw = raw.trim();
    let uri = Url::parse(raw).map_err(|e| {
        if looks_like_unbracketed_ipv6(raw) {
            ConfigError::UnbracketedIpv6 {
                var,
                value: raw.to_owned(),
            }
        } else {
            ConfigError::InvalidUri {
                var,
                value: raw.to_owned(),
                reason: e.to_string(),
            }
        }
    })?;
    let host = uri.host().ok_or_else(|| ConfigError::InvalidUri {
        var,
        value: raw.to_owned(),
        reason: "no host".into(),
    })?;
    let must_resolve_to_allowed = match uri.scheme() {
        "https" => false,
        "http" => match host {
            Host::Ipv4(ip) => {
                check_ip(IpAddr::V4(ip))?;
                false
            }
            Host::Ipv6(ip) => {
                check_ip(IpAddr::V6(ip))?;
                false
            }
            Host::Domain(_) => true,
        },
        other => {
            return Err(ConfigError::UnsupportedScheme {
                var,
                scheme: other.to_owned(),
            })
        }
    };
    Ok(AgentEndpoint {
        uri,
        must_resolve_to_allowed,
    })
}

fn check_ip(ip: IpAddr) -> Result<(), ConfigError> {
    if is_allowed_http_ip(ip) {
        return Ok(());
    }
    let reason = match ip {
        IpAddr::V4(v4) if v4 == Ipv4Addr::new(169, 254, 169, 254) => {
            "that is the EC2 instance metadata service, not a container credentials endpoint"
        }
        IpAddr::V4(v4) if v4.is_link_local() => "not one of the allowed link-local addresses",
        _ => "not a loopback or container credentials address",
    };
    Err(ConfigError::DisallowedHost {
        host: match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        },
        reason,
    })
}

fn looks_like_unbracketed_ipv6(raw: &str) -> bool {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    !authority.starts_with('[') && authority.matches(':').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MapEnv;

    fn env(pairs: &[(&str, &str)]) -> MapEnv {
        pairs.iter().copied().collect()
    }

    #[test]
    fn uri_table() {
        // (uri, Ok(must_resolve) | Err(kind substring))
        let cases: &[(&str, Result<bool, &str>)] = &[
            ("http://169.254.170.23/v1/credentials", Ok(false)),
            ("http://169.254.170.2/v2/credentials/abc", Ok(false)),
            ("http://[fd00:ec2::23]/v1/credentials", Ok(false)),
            ("http://[fd00:ec2::23]:80/v1/credentials", Ok(false)),
            ("http://127.0.0.1:8080/creds", Ok(false)),
            ("http://127.1.2.3/creds", Ok(false)),
            ("http://[::1]:9000/creds", Ok(false)),
            ("http://localhost:9000/creds", Ok(true)),
            ("http://agent.internal/creds", Ok(true)),
            ("https://creds.example.com/v1", Ok(false)),
            ("https://10.1.2.3/v1", Ok(false)),
            ("http://169.254.169.254/latest", Err("instance metadata")),
            ("http://169.254.170.24/v1/credentials", Err("link-local")),
            ("http://10.0.0.1/creds", Err("not a loopback")),
            ("http://[fd00:ec2::254]/creds", Err("not a loopback")),
            ("http://[::ffff:10.0.0.1]/creds", Err("not a loopback")),
            ("http://fd00:ec2::23/v1/credentials", Err("bracketed")),
            ("ftp://127.0.0.1/creds", Err("scheme")),
            ("not a uri", Err("not a valid URI")),
        ];
        for (uri, expected) in cases {
            match (validate_uri(vars::FULL_URI, uri), expected) {
                (Ok(ep), Ok(must)) => assert_eq!(ep.must_resolve_to_allowed(), *must, "{uri}"),
                (Err(e), Err(needle)) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(needle),
                        "{uri}: {msg:?} should mention {needle:?}"
                    )
                }
                (got, want) => panic!("{uri}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn refused_host_error_names_host_and_rule() {
        let err = validate_uri(vars::FULL_URI, "http://10.0.0.1/creds").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("10.0.0.1") && msg.contains("169.254.170.23") && msg.contains("https"),
            "{msg}"
        );
        assert_eq!(
            crate::error::Classify::kind(&err),
            crate::error::ErrorKind::RefusedHost
        );
    }

    #[test]
    fn not_configured_without_uri_vars() {
        assert_eq!(container_credentials_from_env(&env(&[])).unwrap(), None);
        // A token alone does not configure anything.
        assert_eq!(
            container_credentials_from_env(&env(&[(vars::TOKEN_FILE, "/t")])).unwrap(),
            None
        );
        // Empty means unset, as in the SDKs.
        assert_eq!(
            container_credentials_from_env(&env(&[(vars::FULL_URI, "")])).unwrap(),
            None
        );
    }

    #[test]
    fn relative_uri_uses_ecs_host_and_wins_over_full() {
        let c = container_credentials_from_env(&env(&[
            (vars::RELATIVE_URI, "/v2/credentials/x"),
            (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.endpoint.uri().as_str(),
            "http://169.254.170.2/v2/credentials/x"
        );
        assert_eq!(c.endpoint_var, vars::RELATIVE_URI);
        assert!(container_credentials_from_env(&env(&[(vars::RELATIVE_URI, "v2/x")])).is_err());
    }

    #[test]
    fn token_file_wins_over_token_value() {
        let both = env(&[
            (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
            (vars::TOKEN_FILE, "/var/run/token"),
            (vars::TOKEN, "inline"),
        ]);
        let c = container_credentials_from_env(&both).unwrap().unwrap();
        assert_eq!(c.token, Some(TokenSource::File("/var/run/token".into())));
        let value_only = env(&[
            (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
            (vars::TOKEN, "inline"),
        ]);
        let c = container_credentials_from_env(&value_only)
            .unwrap()
            .unwrap();
        assert_eq!(c.token, Some(TokenSource::Value(Secret::new("inline"))));
        assert!(
            !format!("{c:?}").contains("inline"),
            "Debug must redact the token"
        );
    }

    #[test]
    fn local_endpoints_bypass_proxies() {
        for (uri, local) in [
            ("http://169.254.170.23/v1/credentials", true),
            ("http://[fd00:ec2::23]/v1/credentials", true),
            ("http://127.0.0.1:1/x", true),
            ("http://localhost:1/x", true),
            ("https://creds.example.com/x", false),
        ] {
            assert_eq!(
                AgentEndpoint::parse(uri).unwrap().is_local(),
                local,
                "{uri}"
            );
        }
    }
}

/// Where IMDS is, or that it is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImdsEndpointSetting {
    /// Use this endpoint (scheme, host and port; paths are appended).
    Endpoint(Url),
    /// `AWS_EC2_METADATA_DISABLED=true`.
    Disabled,
}

use crate::protocol::{IMDS_ENDPOINT_V4 as IMDS_IPV4, IMDS_ENDPOINT_V6 as IMDS_IPV6};

/// Resolves the IMDS endpoint, first match wins:
/// `AWS_EC2_METADATA_DISABLED=true` (disabled), `override_uri`,
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`
/// (`IPv4` / `IPv6`), then IPv4.
///
/// # Errors
///
/// The endpoint mode is neither `IPv4` nor `IPv6`, or the endpoint URI
/// does not parse (an unbracketed IPv6 address gets its own error) or is
/// not `http`/`https`.
///
/// ```
/// use eks_pod_identity_provider::config::{imds_endpoint_from_env, ImdsEndpointSetting};
/// use eks_pod_identity_provider::MapEnv;
/// let env = MapEnv::from_iter([("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")]);
/// let ImdsEndpointSetting::Endpoint(uri) = imds_endpoint_from_env(&env, None).unwrap() else { panic!() };
/// assert_eq!(uri.as_str(), "http://[fd00:ec2::254]/");
/// ```
pub fn imds_endpoint_from_env(
    env: &dyn Env,
    override_uri: Option<&str>,
) -> Result<ImdsEndpointSetting, ConfigError> {
    if env
        .non_empty(vars::IMDS_DISABLED)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Ok(ImdsEndpointSetting::Disabled);
    }
    let (var, raw) = if let Some(uri) = override_uri {
        ("imds endpoint", uri.to_owned())
    } else if let Some(uri) = env.non_empty(vars::IMDS_ENDPOINT) {
        (vars::IMDS_ENDPOINT, uri)
    } else if let Some(mode) = env.non_empty(vars::IMDS_ENDPOINT_MODE) {
        match mode.trim().to_ascii_lowercase().as_str() {
            "ipv4" => (vars::IMDS_ENDPOINT_MODE, IMDS_IPV4.to_owned()),
            "ipv6" => (vars::IMDS_ENDPOINT_MODE, IMDS_IPV6.to_owned()),
            _ => {
                return Err(ConfigError::InvalidUri {
                    var: vars::IMDS_ENDPOINT_MODE,
                    value: mode,
                    reason: "expected IPv4 or IPv6".into(),
                })
            }
        }
    } else {
        ("default", IMDS_IPV4.to_owned())
    };
    let uri = Url::parse(raw.trim()).map_err(|e| {
        if looks_like_unbracketed_ipv6(&raw) {
            ConfigError::UnbracketedIpv6 {
                var,
                value: raw.clone(),
            }
        } else {
            ConfigError::InvalidUri {
                var,
                value: raw.clone(),
                reason: e.to_string(),
            }
        }
    })?;
    if !matches!(uri.scheme(), "http" | "https") {
        return Err(ConfigError::UnsupportedScheme {
            var,
            scheme: uri.scheme().to_owned(),
        });
    }
    Ok(ImdsEndpointSetting::Endpoint(uri))
}

#[cfg(test)]
mod imds_tests {
    use super::*;

    #[test]
    fn imds_endpoint_precedence() {
        let e = |pairs: &[(&str, &str)], o: Option<&str>| match imds_endpoint_from_env(
            &pairs.iter().copied().collect::<crate::context::MapEnv>(),
            o,
        ) {
            Ok(ImdsEndpointSetting::Endpoint(u)) => u.to_string(),
            Ok(ImdsEndpointSetting::Disabled) => "disabled".into(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(e(&[], None), "http://169.254.169.254/");
        assert_eq!(
            e(&[(vars::IMDS_ENDPOINT_MODE, "IPv6")], None),
            "http://[fd00:ec2::254]/"
        );
        assert_eq!(
            e(&[(vars::IMDS_ENDPOINT_MODE, "ipv4")], None),
            "http://169.254.169.254/"
        );
        assert_eq!(
            e(
                &[
                    (vars::IMDS_ENDPOINT_MODE, "IPv6"),
                    (vars::IMDS_ENDPOINT, "http://127.0.0.1:1234")
                ],
                None
            ),
            "http://127.0.0.1:1234/"
        );
        assert_eq!(
            e(
                &[(vars::IMDS_ENDPOINT, "http://127.0.0.1:1234")],
                Some("http://[::1]:9")
            ),
            "http://[::1]:9/"
        );
        assert_eq!(
            e(
                &[
                    (vars::IMDS_DISABLED, "true"),
                    (vars::IMDS_ENDPOINT, "http://127.0.0.1:1")
                ],
                Some("http://[::1]:9")
            ),
            "disabled"
        );
        assert_eq!(
            e(&[(vars::IMDS_DISABLED, "false")], None),
            "http://169.254.169.254/"
        );
        assert!(e(&[(vars::IMDS_ENDPOINT_MODE, "IPv5")], None).contains("expected IPv4 or IPv6"));
        assert!(e(&[(vars::IMDS_ENDPOINT, "http://fd00:ec2::254")], None).contains("bracketed"));
    }
}
