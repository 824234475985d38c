//! When to refresh: the advisory and mandatory windows, as pure functions.
//!
//! ```text
//!   fetched                      exp-A  exp-(A+M)/2      exp-M   exp
//!     |---------------------------|=====R=====|-------------|#####|
//!                                 background refresh at R,   callers wait
//!                                 drawn uniformly (jitter)   only here (M)
//! ```

use crate::context::RandomSource;
use crate::error::ConfigError;
use crate::support::time::uniform;
use std::time::{Duration, SystemTime};

/// Tunables of the refreshing cache.
///
/// Build one from [`RefreshPolicy::default()`] and the `with_*` setters;
/// settings are checked when a provider is built (see
/// [`RefreshPolicy::validate`]).
///
/// ```
/// use eks_pod_identity_provider::RefreshPolicy;
/// use std::time::Duration;
/// let policy = RefreshPolicy::default().with_mandatory_window(Duration::from_secs(30));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// The largest mandatory window `M` (default 60 s). For credentials of
    /// lifetime `L` (the validity left when they arrive) callers wait only
    /// inside `min(M, L/4)` before expiry, and credentials are accepted only
    /// when their validity exceeds that same window. At most 150 s (half
    /// the smallest advisory window), so the background refresh always
    /// lands before it.
    pub mandatory_window: Duration,
    /// Draw the background refresh instant at random inside the advisory
    /// window (default `true`). Disabling it makes every pod that fetched at
    /// the same time refresh at the same time.
    pub jitter: bool,
    /// The smallest first step of the background retry after a failed
    /// refresh, and the first step of the error backoff (default 1 s). The
    /// background retry's first step is `max(this, W/2)`, `W` the cached
    /// credentials' mandatory window, so retries scale with the lifetime:
    /// 20 s credentials retry every few seconds, hour-long ones every
    /// half minute and more.
    pub failure_backoff_base: Duration,
    /// Largest step of the background retry after failed refreshes
    /// (default 5 min). Steps are also bounded by half the remaining
    /// validity, so several attempts fit before expiry, but never made
    /// shorter than `W/8` for it.
    pub failure_backoff_max: Duration,
    /// With no valid credentials cached, callers within this backoff after a
    /// failed fetch share its error instead of starting a new fetch. The
    /// interval after `n` consecutive failures is drawn in `[c/2, c]` with
    /// `c = min(error_backoff_max, failure_backoff_base·2^(n−1))`, and
    /// resets on success (default 5 s).
    pub error_backoff_max: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            mandatory_window: Duration::from_secs(60),
            jitter: true,
            failure_backoff_base: Duration::from_secs(1),
            failure_backoff_max: Duration::from_secs(300),
            error_backoff_max: Duration::from_secs(5),
        }
    }
}

/// The largest allowed [`RefreshPolicy::mandatory_window`]: half the
/// smallest advisory window of the table in [`advisory_window`] (150 s).
pub(crate) const MAX_MANDATORY_WINDOW: Duration = Duration::from_secs(150);

impl RefreshPolicy {
    /// Sets [`mandatory_window`](Self::mandatory_window).
    pub fn with_mandatory_window(mut self, window: Duration) -> Self {
        self.mandatory_window = window;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`failure_backoff_base`](Self::failure_backoff_base).
    pub fn with_failure_backoff_base(mut self, base: Duration) -> Self {
        self.failure_backoff_base = base;
        self
    }

    /// Sets [`failure_backoff_max`](Self::failure_backoff_max).
    pub fn with_failure_backoff_max(mut self, max: Duration) -> Self {
        self.failure_backoff_max = max;
        self
    }

    /// Sets [`error_backoff_max`](Self::error_backoff_max).
    pub fn with_error_backoff_max(mut self, max: Duration) -> Self {
        self.error_backoff_max = max;
        self
    }

    /// Checks the settings; the error names the offending field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::InvalidSetting { field, reason });
        if self.mandatory_window > MAX_MANDATORY_WINDOW {
            return invalid(
                "refresh_policy.mandatory_window",
                format!(
                    "{:?} is more than half the smallest advisory window ({MAX_MANDATORY_WINDOW:?}): the background refresh could land inside it and make callers wait",
                    self.mandatory_window
                ),
            );
        }
        if self.failure_backoff_base.is_zero() {
            return invalid(
                "refresh_policy.failure_backoff_base",
                "must be more than zero, or a failing source is retried in a tight loop".into(),
            );
        }
        if self.failure_backoff_max < self.failure_backoff_base {
            return invalid(
                "refresh_policy.failure_backoff_max",
                format!(
                    "{:?} is less than failure_backoff_base ({:?})",
                    self.failure_backoff_max, self.failure_backoff_base
                ),
            );
        }
        if self.error_backoff_max.is_zero() {
            return invalid(
                "refresh_policy.error_backoff_max",
                "must be more than zero, or a failing agent gets one request per caller".into(),
            );
        }
        Ok(())
    }
}

const MIN: Duration = Duration::from_secs(60);

/// The advisory window `A` for credentials of lifetime `lifetime`:
/// ≤ 20 min → 5 min, < 90 min → 15 min, else 60 min; never more than half
/// the lifetime.
pub(crate) fn advisory_window(lifetime: Duration) -> Duration {
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
    /// The advisory window `A` for credentials of lifetime `lifetime` (the
    /// same for every policy): ≤ 20 min → 5 min, < 90 min → 15 min, else
    /// 60 min; never more than half the lifetime. The background refresh
    /// lands inside it.
    pub fn advisory_window_for(&self, lifetime: Duration) -> Duration {
        advisory_window(lifetime)
    }

    /// The mandatory window for credentials of lifetime `lifetime`.
    pub fn mandatory_window_for(&self, lifetime: Duration) -> Duration {
        self.mandatory_window.min(lifetime / 4)
    }

    /// The instant of the proactive refresh: uniform in
    /// `[exp − A, exp − (A+M)/2]` (M the mandatory window for this lifetime), or `exp − A` without jitter.
    pub(crate) fn refresh_at(
        &self,
        expiration: SystemTime,
        lifetime: Duration,
        rng: &dyn RandomSource,
    ) -> SystemTime {
        let a = advisory_window(lifetime);
        // The latest instant is halfway between the advisory window's start
        // and the mandatory window's, not `exp − A/2`: for short lifetimes
        // `A/2` equals `M` (20 s credentials: A = 10 s, M = 5 s), so a late
        // draw plus the fetch's own latency would land inside the mandatory
        // window and make callers wait. Halfway keeps `(A − M)/2` for the
        // fetch and its retries; for long lifetimes it is close to `A/2`.
        let m = self.mandatory_window_for(lifetime).min(a);
        let lead = if self.jitter {
            uniform(rng, (a + m) / 2, a)
        } else {
            a
        };
        expiration - lead
    }

    /// Delay before the background retries after `failures` consecutive
    /// failed refreshes, with `remaining` validity left on credentials whose
    /// mandatory window is `window`: uniform in `[c/2, c]`,
    /// `c = min(max, step·2^(n−1), remaining/2)`, `step = max(base, window/2)`,
    /// then raised to at least `max(100 ms, window/8)` (even past
    /// `remaining/2`) and capped at `max`. With `remaining` zero (expired)
    /// the remaining validity bounds nothing: callers then wait for fetches
    /// of their own.
    ///
    /// Why these bounds: each retry is one attempt (the background fetch
    /// with valid credentials cached uses
    /// [`CredentialSource::fetch_once`](crate::CredentialSource::fetch_once)),
    /// and every pod on a node asks the same agent, so the cadence follows
    /// the credentials' own time scale instead of a fixed 1 s; half the
    /// remaining validity keeps a few attempts before expiry, and the floor
    /// keeps them from bunching up just before it (with full jitter and a
    /// quarter of the remaining validity as the only bound, 20 s credentials
    /// made 48 requests to a failing agent before they expired;
    /// BENCHMARKS.md, failing agent).
    pub(crate) fn failure_backoff(
        &self,
        failures: u32,
        remaining: Duration,
        window: Duration,
        rng: &dyn RandomSource,
    ) -> Duration {
        let floor = (window / 8).max(Duration::from_millis(100));
        let step = self.failure_backoff_base.max(window / 2);
        let exp = step.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let mut ceiling = exp.min(self.failure_backoff_max);
        if !remaining.is_zero() {
            ceiling = ceiling.min(remaining / 2);
        }
        // The floor wins over half the remaining validity (no bunching just
        // before expiry); the configured maximum wins over everything.
        uniform(rng, ceiling / 2, ceiling)
            .max(floor)
            .min(self.failure_backoff_max)
    }

    /// How long callers share the error of a failed fetch when nothing valid
    /// is cached, after `failures` consecutive failures: uniform in
    /// `[c/2, c]`, `c = min(error_backoff_max, failure_backoff_base·2^(n−1))`.
    /// Never zero, so a fast-failing agent is never asked once per caller.
    pub(crate) fn error_backoff(&self, failures: u32, rng: &dyn RandomSource) -> Duration {
        let ceiling = self
            .failure_backoff_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.error_backoff_max)
            .max(Duration::from_millis(1));
        uniform(rng, ceiling / 2, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::FastRandom;

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
        for lifetime_secs in [4u64, 20, 90, 15 * 60, 3600, 6 * 3600] {
            let lifetime = Duration::from_secs(lifetime_secs);
            let a = advisory_window(lifetime);
            let draws: Vec<_> = (0..10_000)
                .map(|_| p.refresh_at(exp, lifetime, &rng))
                .collect();
            let m = p.mandatory_window_for(lifetime);
            let lo = exp - a;
            let hi = exp - (a + m) / 2;
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
        let fixed = p.with_jitter(false);
        let lifetime = Duration::from_secs(3600);
        assert_eq!(
            fixed.refresh_at(exp, lifetime, &rng),
            exp - advisory_window(lifetime)
        );
    }

    #[test]
    fn the_latest_refresh_leaves_room_before_the_mandatory_window() {
        // With the old rule (latest = exp − A/2) 20 s credentials were
        // refreshed as late as exp − 5 s = the mandatory window's start, so
        // any fetch latency made callers wait.
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(7);
        let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for lifetime_secs in [4u64, 20, 90, 15 * 60, 3600, 6 * 3600] {
            let lifetime = Duration::from_secs(lifetime_secs);
            let a = advisory_window(lifetime);
            let m = p.mandatory_window_for(lifetime);
            let latest = (0..10_000)
                .map(|_| p.refresh_at(exp, lifetime, &rng))
                .max()
                .unwrap();
            let room = (exp - m).duration_since(latest).unwrap();
            assert!(
                room >= (a - m) / 2,
                "L = {lifetime_secs} s: only {room:?} before the mandatory window"
            );
        }
    }

    #[test]
    fn failure_backoff_fits_several_attempts_before_expiry() {
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(1);
        let window = Duration::from_secs(60);
        for failures in 1..30 {
            // At most half of what is left, never under the floor (W/8).
            let d = p.failure_backoff(failures, Duration::from_secs(120), window, &rng);
            assert!(d <= Duration::from_secs(60) && d >= Duration::from_millis(7_500));
            let d = p.failure_backoff(failures, Duration::from_secs(86_400), window, &rng);
            assert!(d <= p.failure_backoff_max);
        }
    }

    #[test]
    fn failure_backoff_follows_the_credentials_time_scale() {
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(2);
        let plenty = Duration::from_secs(86_400);
        // (mandatory window, failures, lowest, highest): step = max(1 s, W/2),
        // uniform in [c/2, c] with c = step·2^(n−1).
        for (window, n, lo, hi) in [
            (5_000u64, 1u32, 1_250u64, 2_500u64), // 20 s credentials
            (5_000, 2, 2_500, 5_000),
            (60_000, 1, 15_000, 30_000), // hour-long credentials
            (60_000, 3, 60_000, 120_000),
            (60_000, 10, 150_000, 300_000), // capped by failure_backoff_max
            (1_000, 1, 500, 1_000),         // 4 s credentials: the 1 s base
        ] {
            for _ in 0..200 {
                let d = p.failure_backoff(n, plenty, Duration::from_millis(window), &rng);
                assert!(
                    d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi),
                    "W = {window} ms, n = {n}: {d:?} outside [{lo}, {hi}] ms"
                );
            }
        }
        // Near expiry: half the remaining validity, but never under W/8, so
        // retries do not bunch up just before expiry.
        let w = Duration::from_secs(5);
        for _ in 0..200 {
            let d = p.failure_backoff(1, Duration::from_millis(400), w, &rng);
            assert_eq!(d, Duration::from_millis(625));
        }
    }

    #[test]
    fn error_backoff_grows_with_jitter_and_is_capped() {
        let p = RefreshPolicy::default();
        let rng = FastRandom::seeded(3);
        for (n, lo, hi) in [
            (1u32, 500u64, 1_000u64),
            (2, 1_000, 2_000),
            (3, 2_000, 4_000),
            (4, 2_500, 5_000),
            (30, 2_500, 5_000),
        ] {
            let draws: Vec<_> = (0..1_000).map(|_| p.error_backoff(n, &rng)).collect();
            let (lo, hi) = (Duration::from_millis(lo), Duration::from_millis(hi));
            assert!(draws.iter().all(|d| *d >= lo && *d <= hi), "n={n}");
            assert!(
                draws.iter().any(|d| *d < lo + (hi - lo) / 4),
                "jittered, n={n}"
            );
            assert!(
                draws.iter().any(|d| *d > hi - (hi - lo) / 4),
                "jittered, n={n}"
            );
        }
    }

    #[test]
    fn validation_names_the_field() {
        let field = |p: RefreshPolicy| match p.validate() {
            Err(ConfigError::InvalidSetting { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(RefreshPolicy::default().validate().is_ok());
        assert!(RefreshPolicy::default()
            .with_mandatory_window(MAX_MANDATORY_WINDOW)
            .validate()
            .is_ok());
        assert_eq!(
            field(RefreshPolicy::default().with_mandatory_window(Duration::from_secs(151))),
            "refresh_policy.mandatory_window"
        );
        assert_eq!(
            field(RefreshPolicy::default().with_failure_backoff_base(Duration::ZERO)),
            "refresh_policy.failure_backoff_base"
        );
        assert_eq!(
            field(RefreshPolicy::default().with_failure_backoff_max(Duration::from_millis(10))),
            "refresh_policy.failure_backoff_max"
        );
        assert_eq!(
            field(RefreshPolicy::default().with_error_backoff_max(Duration::ZERO)),
            "refresh_policy.error_backoff_max"
        );
    }
}
