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
/// On Linux, [`Clock::now_not_before`] reads `CLOCK_REALTIME_COARSE` (a vDSO
/// memory read, no timer hardware access) plus [`COARSE_CLOCK_MARGIN`]. A
/// precise clock read costs more than the rest of a cached credentials call
/// (≈ 350 ns against ≈ 40 ns on the benchmark VM). The coarse clock lags by
/// up to a tick in theory, but measured lags reach 20 ms on a loaded VM
/// (more than its reported 4 ms resolution), hence a margin of a full second:
/// credentials leave the hot path at most a second before the mandatory
/// window begins (the slow path then checks the precise clock), never after.
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
