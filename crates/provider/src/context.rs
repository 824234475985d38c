//! Everything a provider takes from the outside world, in one injectable bundle.
//!
//! Like `aws-config`'s `ProviderConfig`, this separates *where* env, files,
//! time, randomness and DNS come from (the process, or a test) from *what* a
//! provider does with them.
//!
//! The five seams, each a trait with the real implementation as default:
//! environment variables ([`Env`]: [`ProcessEnv`], [`MapEnv`]), files
//! ([`FileSystem`]: [`RealFileSystem`]), DNS ([`HostResolver`]:
//! [`SystemResolver`]), the wall clock ([`Clock`]: [`SystemClock`],
//! [`TokioClock`]) and randomness ([`RandomSource`]: [`FastRandom`]).
//! Test doubles of the clock, the randomness and DNS are in `test_util`
//! (feature `test-util`).

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

// ---- Environment variables ----

/// Read access to environment variables.
pub trait Env: Send + Sync + fmt::Debug + 'static {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;

    /// The value of `key` if set and not empty (the SDKs treat an empty
    /// variable as unset).
    fn non_empty(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }
}

/// The process environment (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

/// A fixed set of variables, for tests and embedding.
///
/// ```
/// use eks_pod_identity_provider::{Env, MapEnv};
/// let env = MapEnv::from_iter([("A", "1")]);
/// assert_eq!(env.get("A").as_deref(), Some("1"));
/// ```
#[derive(Clone, Default)]
pub struct MapEnv(HashMap<String, String>);

/// Shows variable names only: values may be secrets
/// (`AWS_CONTAINER_AUTHORIZATION_TOKEN`, static keys...).
impl fmt::Debug for MapEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        f.debug_tuple("MapEnv").field(&keys).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

// ---- Files ----

/// Read access to files, injectable for tests.
///
/// Reads are synchronous: the token is a small file on a tmpfs volume, and
/// reading it costs less than handing it to a blocking thread.
pub trait FileSystem: Send + Sync + Debug + 'static {
    /// Reads at most `cap + 1` bytes of `path` (one more than the cap, so the
    /// caller can tell an over-sized file).
    fn read_capped(&self, path: &Path, cap: usize) -> std::io::Result<Vec<u8>>;
}

/// The real filesystem (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFileSystem;

impl FileSystem for RealFileSystem {
    fn read_capped(&self, path: &Path, cap: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(2048);
        std::fs::File::open(path)?
            .take(cap as u64 + 1)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }
}

// ---- DNS ----

/// Resolves hostnames; injectable so tests can map names to addresses.
pub trait HostResolver: Send + Sync + fmt::Debug + 'static {
    /// All addresses of `host`.
    fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl SystemResolver {
    /// The process-wide instance every default [`ProviderContext`](crate::ProviderContext)
    /// shares, so that their providers can share one HTTP client.
    pub(crate) fn shared() -> Arc<dyn HostResolver> {
        static SHARED: std::sync::OnceLock<Arc<dyn HostResolver>> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| Arc::new(SystemResolver)).clone()
    }
}

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

// ---- Wall clock and randomness ----

/// A source of wall-clock time.
///
/// Credential expirations are wall-clock instants, so the provider compares
/// them against this clock rather than a monotonic one.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// A cheaper reading for the hot path's "still fresh?" check: it may be
    /// *later* than [`now`](Clock::now) by a few milliseconds but is never
    /// earlier, so a check against it can only err towards refreshing early.
    /// The default is `now()`.
    fn now_not_before(&self) -> SystemTime {
        self.now()
    }
}

/// The real system clock (the default).
///
/// On Linux, [`Clock::now_not_before`] reads the coarse real-time clock plus
/// [`COARSE_CLOCK_MARGIN`]: cheaper than a precise reading, and never
/// earlier than one. Why, and what it costs: [`docs::design`](crate::docs::design#the-coarse-clock-on-the-hot-path).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// How far ahead of the coarse clock [`SystemClock::now_not_before`] reads:
/// far more than the coarse clock's observed lag (≤ 20 ms), far less than the
/// mandatory refresh window (60 s by default).
pub const COARSE_CLOCK_MARGIN: Duration = Duration::from_secs(1);

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_not_before(&self) -> SystemTime {
        use rustix::time::{clock_gettime, ClockId};
        let ts = clock_gettime(ClockId::RealtimeCoarse);
        match (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
            (Ok(secs), Ok(nanos)) if nanos < 1_000_000_000 => {
                SystemTime::UNIX_EPOCH + Duration::new(secs, nanos) + COARSE_CLOCK_MARGIN
            }
            // Before 1970 or malformed: not worth being clever.
            _ => SystemTime::now(),
        }
    }
}

/// A wall clock driven by tokio's clock, for tests and simulations.
///
/// `now()` is `base + (tokio::time::Instant::now() - start)`. Under
/// `tokio::time::pause()` the clock only moves when tokio time advances, so
/// background refreshes and expirations happen at exactly reproducible
/// instants without real waiting.
///
/// ```
/// use eks_pod_identity_provider::context::{Clock, TokioClock};
/// use std::time::{Duration, SystemTime};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::starting_at(SystemTime::UNIX_EPOCH);
/// tokio::time::advance(Duration::from_secs(90)).await;
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(90));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now and advancing with tokio time.
    ///
    /// Must be called inside a tokio runtime with the `time` driver enabled.
    pub fn starting_at(base: SystemTime) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
}

/// A source of uniformly distributed random numbers, used for jitter.
pub trait RandomSource: Send + Sync + Debug + 'static {
    /// A uniformly distributed value in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// The default random source: `fastrand`, optionally seeded for
/// reproducible runs.
#[derive(Debug)]
pub struct FastRandom(Mutex<fastrand::Rng>);

impl FastRandom {
    /// A generator seeded from the operating system.
    pub fn new() -> Self {
        Self(Mutex::new(fastrand::Rng::new()))
    }

    /// A generator with a fixed seed (reproducible jitter).
    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(fastrand::Rng::with_seed(seed)))
    }
}

impl Default for FastRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomSource for FastRandom {
    fn unit(&self) -> f64 {
        // Only used off the hot path (scheduling and backoff), so a mutex is fine.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).f64()
    }
}

/// The clock as shared by a provider and its cache (what
/// [`RefreshingCache::new`](crate::RefreshingCache::new) takes).
pub type SharedClock = Arc<dyn Clock>;
/// The random source as shared by a provider and its cache (what
/// [`RefreshingCache::new`](crate::RefreshingCache::new) takes).
pub type SharedRandom = Arc<dyn RandomSource>;

// ---- The bundle ----

/// The injectable environment of a provider. `Default` is the real process.
#[derive(Debug, Clone)]
pub struct ProviderContext {
    pub(crate) env: Arc<dyn Env>,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) clock: SharedClock,
    pub(crate) rng: SharedRandom,
    pub(crate) resolver: Arc<dyn HostResolver>,
}

impl Default for ProviderContext {
    fn default() -> Self {
        Self {
            env: Arc::new(ProcessEnv),
            fs: Arc::new(RealFileSystem),
            clock: Arc::new(SystemClock),
            rng: Arc::new(FastRandom::new()),
            resolver: SystemResolver::shared(),
        }
    }
}

impl ProviderContext {
    /// The real process environment, filesystem, clock, randomness and DNS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the environment variables.
    pub fn with_env(mut self, env: impl Env) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Replaces the filesystem (token file reads).
    pub fn with_fs(mut self, fs: impl FileSystem) -> Self {
        self.fs = Arc::new(fs);
        self
    }

    /// Replaces the wall clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the random source used for jitter.
    pub fn with_random(mut self, rng: impl RandomSource) -> Self {
        self.rng = Arc::new(rng);
        self
    }

    /// Replaces the DNS resolver used for plain-http hostnames.
    pub fn with_resolver(mut self, resolver: impl HostResolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// The environment variables in use.
    pub fn env(&self) -> &dyn Env {
        &*self.env
    }

    /// The clock in use.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_fast_reading_is_never_earlier_than_the_precise_one() {
        let clock = SystemClock;
        for _ in 0..100_000 {
            let precise = SystemTime::now();
            let fast = clock.now_not_before();
            assert!(fast >= precise, "{fast:?} < {precise:?}");
            // ...and not later than the margin allows.
            assert!(fast <= SystemTime::now() + COARSE_CLOCK_MARGIN);
        }
    }

    #[test]
    fn default_fast_reading_is_now() {
        #[derive(Debug)]
        struct Fixed;
        impl Clock for Fixed {
            fn now(&self) -> SystemTime {
                SystemTime::UNIX_EPOCH
            }
        }
        assert_eq!(Fixed.now_not_before(), SystemTime::UNIX_EPOCH);
    }
}
