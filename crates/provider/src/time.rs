//! Injectable time and randomness.
//!
//! The refresh schedule depends on "now" and on random jitter. Both are
//! injected so that tests (and the simulated-time benchmarks) can drive them
//! deterministically: [`TokioClock`] maps tokio's pausable clock onto wall-clock
//! time, so `tokio::time::pause()` + `advance()` move credential expiry forward
//! exactly as sleeping would.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of wall-clock time.
///
/// Credential expirations are wall-clock instants, so the provider compares
/// them against this clock rather than a monotonic one.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The real system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
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
/// use eks_pod_identity_provider::time::{Clock, TokioClock};
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

pub(crate) type SharedClock = Arc<dyn Clock>;
pub(crate) type SharedRandom = Arc<dyn RandomSource>;

/// A uniform draw in `[low, high]` (returns `low` when the range is empty).
pub(crate) fn uniform(rng: &dyn RandomSource, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    low + (high - low).mul_f64(rng.unit())
}

/// Sleeps until the wall-clock instant `at` according to `clock`.
pub(crate) async fn sleep_until(clock: &dyn Clock, at: SystemTime) {
    let delay = at.duration_since(clock.now()).unwrap_or(Duration::ZERO);
    tokio::time::sleep(delay).await;
}
