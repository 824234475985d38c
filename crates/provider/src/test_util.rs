//! Test doubles of the seams in [`context`](crate::context), for this
//! crate's tests and yours (feature `test-util`, as in `aws-smithy-async`).
//!
//! * [`ManualClock`]: a wall clock the test sets or advances by hand.
//! * [`FixedRandom`]: the same draw every time, for reproducible jitter.
//! * [`MapResolver`]: DNS answers the test sets (and changes) per host.
//!
//! [`parsers`] exposes the crate's pure parsers to property tests. Nothing
//! here is covered by semver.
//!
//! ```
//! use eks_pod_identity_provider::context::Clock;
//! use eks_pod_identity_provider::test_util::{FixedRandom, ManualClock, MapResolver};
//! use eks_pod_identity_provider::ProviderContext;
//! use std::time::{Duration, SystemTime};
//!
//! let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
//! let resolver = MapResolver::default();
//! resolver.set("agent.local", &["169.254.170.23"]);
//! let ctx = ProviderContext::new()
//!     .with_clock(clock.clone())
//!     .with_random(FixedRandom(0.5))
//!     .with_resolver(resolver);
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(ctx.clock().now(), SystemTime::UNIX_EPOCH + Duration::from_secs(90));
//! ```

use crate::context::{Clock, HostResolver, RandomSource};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A wall clock the test moves by hand. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock reading `at` until it is moved.
    pub fn new(at: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// A clock reading the real time now, until it is moved.
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Sets the time.
    pub fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Always the same draw in `[0, 1)`: `FixedRandom(0.0)` puts jitter at the
/// bottom of its range, `FixedRandom(0.999)` near the top.
#[derive(Debug, Clone, Copy)]
pub struct FixedRandom(pub f64);

impl RandomSource for FixedRandom {
    fn unit(&self) -> f64 {
        self.0
    }
}

/// A resolver whose answers the test sets, and may change between fetches.
/// Clones share the answers; an unknown host fails to resolve.
#[derive(Debug, Clone, Default)]
pub struct MapResolver(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>);

impl MapResolver {
    /// Answers `addrs` for `host` from now on.
    ///
    /// # Panics
    ///
    /// When an address does not parse as an IP address.
    pub fn set(&self, host: &str, addrs: &[&str]) {
        let addrs = addrs
            .iter()
            .map(|a| a.parse().expect("an IP address"))
            .collect();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_owned(), addrs);
    }

    /// A resolver with the given answers.
    pub fn from_hosts<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a [&'a str])>) -> Self {
        let resolver = Self::default();
        for (host, addrs) in hosts {
            resolver.set(host, addrs);
        }
        resolver
    }
}

impl HostResolver for MapResolver {
    fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let r = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host)
            .cloned()
            .ok_or_else(|| std::io::Error::other("unknown host"));
        Box::pin(async move { r })
    }
}

/// The crate's pure parsers of untrusted input, for property tests. (The
/// timestamp format is public: [`protocol::rfc3339`](crate::protocol::rfc3339).)
pub mod parsers {
    pub use crate::source::document::{parse_container, CredentialsDocument};
    pub use crate::source::token::validate as validate_token;
}
