//! The HTTP client shared by the agent and IMDS sources.
//!
//! Hardening that every credential endpoint gets: no redirects (a redirect
//! could carry the token elsewhere), no proxy for loopback/link-local targets
//! (a proxy from `HTTP_PROXY` would see the token and could not reach a
//! link-local address anyway), short connect timeouts, a capped body, and,
//! for plain-http hostnames, a resolver that refuses any address that is not
//! an allowed credentials endpoint *at connect time* (no resolve-then-connect
//! race).

use crate::config::is_allowed_http_ip;
use futures_util::future::BoxFuture;
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Response bodies larger than this are refused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Resolves hostnames; injectable so tests can map names to addresses.
pub trait HostResolver: Send + Sync + fmt::Debug + 'static {
    /// All addresses of `host`.
    fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
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

/// Settings of one HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) bypass_proxy: bool,
    pub(crate) restrict_resolution: Option<Arc<dyn HostResolver>>,
}

pub(crate) fn build_client(settings: ClientSettings) -> Result<reqwest::Client, reqwest::Error> {
    builder(settings).build()
}

pub(crate) fn build_client_with_read_timeout(
    settings: ClientSettings,
    read_timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    builder(settings).read_timeout(read_timeout).build()
}

fn builder(settings: ClientSettings) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("eks-pod-identity/", env!("CARGO_PKG_VERSION")));
    if settings.bypass_proxy {
        b = b.no_proxy();
    }
    if let Some(resolver) = settings.restrict_resolution {
        b = b.dns_resolver(AllowListResolver(resolver));
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

/// The innermost error message, without the noisy wrapper chain.
pub(crate) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
