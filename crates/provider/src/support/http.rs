//! The HTTP client shared by the agent and IMDS sources.
//!
//! Hardening that every credential endpoint gets: no redirects (a redirect
//! could carry the token elsewhere), never a proxy, whatever the host form
//! (a proxy from `HTTP_PROXY` would receive the token, and the allow-list
//! check of a hostname would apply to the proxy instead of the real
//! target), short connect timeouts, a capped body, and,
//! for plain-http hostnames, a resolver that refuses any address that is not
//! an allowed credentials endpoint *at connect time* (no resolve-then-connect
//! race).

use crate::config::is_allowed_http_ip;
use crate::context::HostResolver;
use crate::error::ConfigError;
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Refuses an `https` endpoint when this build has no TLS stack (the
/// `rustls` feature is off), when the provider is built rather than on its
/// first fetch.
pub(crate) fn require_tls_support(uri: &url::Url) -> Result<(), ConfigError> {
    if uri.scheme() == "https" && !cfg!(feature = "rustls") {
        return Err(ConfigError::TlsNotEnabled {
            endpoint: uri.origin().ascii_serialization(),
        });
    }
    Ok(())
}

/// Raised by [`AllowListResolver`] when a name resolves to a refused address.
#[derive(Debug)]
pub(crate) struct RefusedResolution {
    pub(crate) host: String,
    pub(crate) addr: IpAddr,
}

impl fmt::Display for RefusedResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolved to refused address {}", self.host, self.addr)
    }
}

impl StdError for RefusedResolution {}

/// A reqwest resolver that fails unless every address is allowed.
#[derive(Debug)]
struct AllowListResolver(Arc<dyn HostResolver>);

impl reqwest::dns::Resolve for AllowListResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let fut = self.0.resolve(host.clone());
        Box::pin(async move {
            let addrs = fut.await?;
            if addrs.is_empty() {
                return Err(format!("{host} resolved to no address").into());
            }
            if let Some(addr) = addrs.iter().copied().find(|a| !is_allowed_http_ip(*a)) {
                return Err(Box::new(RefusedResolution { host, addr }) as _);
            }
            let addrs: Vec<SocketAddr> =
                addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Connect timeout, read timeout, resolver identity, https.
type ClientKey = (Duration, Option<Duration>, Option<usize>, bool);

/// Settings of one HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub(crate) connect_timeout: Duration,
    /// Per-read timeout (IMDS: a token PUT that connects and hangs must end fast).
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) restrict_resolution: Option<Arc<dyn HostResolver>>,
    /// The endpoint is `https`: the client needs the platform's root
    /// certificates. The agent and IMDS are plain http, and loading the roots
    /// costs about 260 KiB of heap for the life of the client (BENCHMARKS.md,
    /// `memory`), so a plain-http client is built without them.
    pub(crate) https: bool,
}

impl ClientSettings {
    /// Two settings build interchangeable clients exactly when their keys are
    /// equal. The resolver is compared by identity: the client keeps it alive,
    /// so its address cannot be reused while the client is registered.
    fn key(&self) -> ClientKey {
        (
            self.connect_timeout,
            self.read_timeout,
            self.restrict_resolution
                .as_ref()
                .map(|r| Arc::as_ptr(r).cast::<()>() as usize),
            self.https,
        )
    }
}

/// Clients alive in this process, by settings. Held weakly: a client lives as
/// long as some source uses it.
static CLIENTS: Mutex<Vec<(ClientKey, Weak<reqwest::Client>)>> = Mutex::new(Vec::new());

/// A client for `settings`, shared with every other source that uses the same
/// settings.
///
/// Why shared: a `reqwest::Client` carries its own connection pool and TLS
/// configuration; with the platform's root certificates (https endpoints)
/// that is about 277 KiB, without them (plain http, see `builder`) about
/// 17 KiB (284,085 B and 17,608 B measured with a counting allocator). Built per provider, it dominated the provider's footprint (see
/// BENCHMARKS.md, `memory`); processes that build one provider per tenant or
/// per task paid it each time. Requests carry their own token header, so
/// nothing leaks between users of a client. Shared clients keep no idle
/// connections (see `builder`).
pub(crate) fn shared_client(
    settings: ClientSettings,
) -> Result<Arc<reqwest::Client>, reqwest::Error> {
    let key = settings.key();
    let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    clients.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(client) = clients
        .iter()
        .filter(|(k, _)| *k == key)
        .find_map(|(_, weak)| weak.upgrade())
    {
        return Ok(client);
    }
    let client = Arc::new(builder(settings).build()?);
    clients.push((key, Arc::downgrade(&client)));
    Ok(client)
}

fn builder(settings: ClientSettings) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Never a proxy: it would receive the token (see the module docs).
        .no_proxy()
        .connect_timeout(settings.connect_timeout)
        // No idle connections: a shared client outlives runtimes and local
        // endpoints, and a pooled connection from a runtime that has shut
        // down (or to a port since reused) fails the next request, which a
        // clean-clone CI run caught. A fetch every few minutes to a
        // node-local agent gains nothing from keep-alive.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("eks-pod-identity/", env!("CARGO_PKG_VERSION")));
    if let Some(read_timeout) = settings.read_timeout {
        b = b.read_timeout(read_timeout);
    }
    if let Some(resolver) = settings.restrict_resolution {
        b = b.dns_resolver(AllowListResolver(resolver));
    }
    // No trusted roots for a plain-http endpoint: it never speaks TLS
    // (redirects are off), and the platform's store would be parsed into
    // memory for nothing. An https URL through such a client would fail
    // certificate verification, never succeed unverified.
    #[cfg(feature = "rustls")]
    if !settings.https {
        b = b.tls_certs_only(Vec::new());
    }
    b
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a response body, refusing more than `cap` bytes without buffering them.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Finds a [`RefusedResolution`] in an error's source chain.
pub(crate) fn find_refusal<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a RefusedResolution> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<RefusedResolution>() {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// Whether a TLS failure is in an error's source chain (a certificate
/// problem, or a peer that does not speak TLS). `io::Error` hides its inner
/// error from `source()`, so it is opened explicitly.
pub(crate) fn is_tls_error(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        // Without the `rustls` feature no request speaks TLS.
        #[cfg(feature = "rustls")]
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_tls_error(inner) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// The innermost error message, without the noisy wrapper chain.
pub(crate) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::SystemResolver;

    fn build_https_provider() -> Result<crate::PodIdentityProvider, crate::BuildError> {
        crate::PodIdentityProvider::builder()
            .endpoint("https://user:pw@creds.example.com:8443/v1/credentials")
            .token("not-a-real-token")
            .build()
    }

    /// Without the `rustls` feature, an https endpoint is refused when the
    /// provider is built, with an error naming the feature and no secret.
    #[cfg(not(feature = "rustls"))]
    #[test]
    fn https_without_the_tls_feature_is_a_typed_build_error() {
        let err = build_https_provider().unwrap_err();
        let crate::BuildError::Config(ConfigError::TlsNotEnabled { endpoint }) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(endpoint, "https://creds.example.com:8443");
        let msg = err.to_string();
        assert!(msg.contains("`rustls` feature"), "{msg}");
        assert!(
            !msg.contains("pw") && !msg.contains("/v1/credentials"),
            "{msg}"
        );
        // IMDS over https is refused the same way.
        let imds = crate::source::imds::ImdsSource::new(
            url::Url::parse("https://imds.example.com").unwrap(),
            crate::ProviderContext::default(),
            crate::source::imds::ImdsOptions::default(),
        );
        assert!(matches!(imds, Err(ConfigError::TlsNotEnabled { .. })));
        // Plain http (the agent's and IMDS's real addresses) still builds.
        crate::PodIdentityProvider::builder()
            .endpoint("http://169.254.170.23/v1/credentials")
            .token("not-a-real-token")
            .build()
            .expect("plain http needs no TLS");
    }

    /// With the `rustls` feature (the default), https endpoints build.
    #[cfg(feature = "rustls")]
    #[test]
    fn https_with_the_tls_feature_builds() {
        build_https_provider().expect("https builds with the rustls feature");
    }

    fn settings(connect_ms: u64) -> ClientSettings {
        ClientSettings {
            connect_timeout: Duration::from_millis(connect_ms),
            read_timeout: None,
            restrict_resolution: None,
            https: false,
        }
    }

    #[test]
    fn clients_are_shared_per_settings_and_released_with_their_users() {
        // Unusual timeouts so that no other test shares these entries.
        let a = shared_client(settings(1_234)).unwrap();
        let b = shared_client(settings(1_234)).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same settings: one client");
        let c = shared_client(settings(1_235)).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "other settings: another client");

        let resolver = SystemResolver::shared();
        let restricted = |r: &Arc<dyn HostResolver>| ClientSettings {
            restrict_resolution: Some(r.clone()),
            ..settings(1_234)
        };
        let d = shared_client(restricted(&resolver)).unwrap();
        assert!(!Arc::ptr_eq(&a, &d), "a resolver is part of the settings");
        assert!(Arc::ptr_eq(
            &d,
            &shared_client(restricted(&resolver)).unwrap()
        ));
        let other: Arc<dyn HostResolver> = Arc::new(SystemResolver);
        assert!(!Arc::ptr_eq(
            &d,
            &shared_client(restricted(&other)).unwrap()
        ));

        let https = ClientSettings {
            https: true,
            ..settings(1_234)
        };
        let e = shared_client(https.clone()).unwrap();
        assert!(
            !Arc::ptr_eq(&a, &e),
            "https clients carry root certificates"
        );
        assert!(Arc::ptr_eq(&e, &shared_client(https).unwrap()));
        drop(e);

        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "the registry holds clients weakly"
        );
        let fresh = shared_client(settings(1_234)).unwrap();
        assert_eq!(Arc::strong_count(&fresh), 1);
    }
}
