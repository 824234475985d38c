//! When to refresh: the advisory and mandatory windows, as pure functions.
//!
//! ```text
//!   fetched                      exp-A     exp-A/2        exp-M   exp
//!     |---------------------------|=====R=====|-------------|#####|
//!                                 background refresh at R,   callers wait
//!                                 drawn uniformly (jitter)   only here (M)
//! ```

use crate::time::{uniform, RandomSource};
use std::time::{Duration, SystemTime};

/// Tunables of the refreshing cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Inside this window before expiry callers wait for a refresh
    /// (default 60 s; capped at a quarter of the credentials' lifetime).
    /// Credentials that arrive with less than this left count as a failed
    /// fetch.
    pub mandatory_window: Duration,
    /// Draw the background refresh instant at random inside the advisory
    /// window (default `true`). Disabling it makes every pod that fetched at
    /// the same time refresh at the same time.
    pub jitter: bool,
    /// First retry ceiling after a failed background refresh (default 1 s).
    pub failure_backoff_base: Duration,
    /// Largest retry ceiling after failed refreshes (default 5 min); also
    /// bounded by a quarter of the remaining validity so several attempts
    /// fit before expiry.
    pub failure_backoff_max: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            mandatory_window: Duration::from_secs(60),
            jitter: true,
            failure_backoff_base: Duration::from_secs(1),
            failure_backoff_max: Duration::from_secs(300),
        }
    }
}

const MIN: Duration = Duration::from_secs(60);

/// The advisory window `A` for credentials of lifetime `lifetime`:
/// ≤ 20 min → 5 min, < 90 min → 15 min, else 60 min; never more than half
/// the lifetime.
pub fn advisory_window(lifetime: Duration) -> Duration {
    let a = if lifetime <= 20 * MIN {
        5 * MIN
    } else if lifetime < 90 * MIN {
        15 * MIN
    } else {
        60 * MIN
    };
    a.min(lifetime / 2)
}

impl RefreshPolicy {
    /// The mandatory window for credentials of lifetime `lifetime`.
    pub fn mandatory_window_for(&self, lifetime: Duration) -> Duration {
        self.mandatory_window.min(lifetime / 4)
    }

    /// The instant of the proactive refresh: uniform in
    /// `[exp − A, exp − A/2]`, or `exp − A` without jitter.
    pub(crate) fn refresh_at(
        &self,
        expiration: SystemTime,
        lifetime: Duration,
        rng: &dyn RandomSource,
    ) -> SystemTime {
        let a = advisory_window(lifetime);
        let lead = if self.jitter {
            uniform(rng, a / 2, a)
        } else {
            a
        };
        expiration - lead
    }

    /// Delay before retry after `failures` consecutive failed refreshes,
    /// with `remaining` validity left: full jitter under
    /// `min(max, base·2^(n−1), remaining/4)`, at least 100 ms.
    pub(crate) fn failure_backoff(
        &self,
        failures: u32,
        remaining: Duration,
        rng: &dyn RandomSource,
    ) -> Duration {
        let floor = Duration::from_millis(100);
        let exp = self
            .failure_backoff_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let mut ceiling = exp.min(self.failure_backoff_max);
        if !remaining.is_zero() {
            ceiling = ceiling.min(remaining / 4);
        }
        uniform(rng, Duration::ZERO, ceiling).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FastRandom;

    #[test]
    fn advisory_window_table() {
        let m = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(advisory_window(m(15)), m(5));
        assert_eq!(advisory_window(m(20)), m(5));
        assert_eq!(advisory_window(m(21)), Duration::from_secs(630)); // capped at L/2
        assert_eq!(advisory_window(m(31)), m(15));
        assert_eq!(advisory_window(m(60)), m(15));
        assert_eq!(advisory_window(m(89)), m(15));
        assert_eq!(advisory_window(m(90)), m(45)); // capped at L/2
        assert_eq!(advisory_window(m(120)), m(60));
        assert_eq!(advisory_window(m(360)), m(60));
        // Never more than half the lifetime.
        assert_eq!(advisory_window(m(6)), m(3));
        assert_eq!(
            advisory_window(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn mandatory_window_capped_at_quarter_lifetime() {
        let p = RefreshPolicy::default();
        assert_eq!(
            p.mandatory_window_for(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.mandatory_window_for(Duration::from_secs(120)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn jitter_stays_inside_its_window_and_spreads() {
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(42);
        let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for lifetime_min in [15u64, 60, 360] {
            let lifetime = Duration::from_secs(lifetime_min * 60);
            let a = advisory_window(lifetime);
            let draws: Vec<_> = (0..10_000)
                .map(|_| p.refresh_at(exp, lifetime, &rng))
                .collect();
            let lo = exp - a;
            let hi = exp - a / 2;
            assert!(draws.iter().all(|t| *t >= lo && *t <= hi));
            // Spread: each quarter of the window gets a fair share of draws.
            let span = (hi.duration_since(lo).unwrap()).as_secs_f64();
            let mut buckets = [0u32; 4];
            for t in &draws {
                let f = t.duration_since(lo).unwrap().as_secs_f64() / span;
                buckets[((f * 4.0) as usize).min(3)] += 1;
            }
            assert!(buckets.iter().all(|b| *b > 2_000), "{buckets:?}");
        }
        let fixed = RefreshPolicy { jitter: false, ..p };
        let lifetime = Duration::from_secs(3600);
        assert_eq!(
            fixed.refresh_at(exp, lifetime, &rng),
            exp - advisory_window(lifetime)
        );
    }

    #[test]
    fn failure_backoff_fits_several_attempts_before_expiry() {
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(1);
        for failures in 1..30 {
            let d = p.failure_backoff(failures, Duration::from_secs(120), &rng);
            assert!(d <= Duration::from_secs(30) && d >= Duration::from_millis(100));
            let d = p.failure_backoff(failures, Duration::from_secs(86_400), &rng);
            assert!(d <= p.failure_backoff_max);
        }
    }
}
