//! Per-fetch retry policy: exponential backoff with full jitter.

use crate::time::{uniform, RandomSource};
use std::time::Duration;

/// How one fetch retries transient failures (5xx, 429, connect errors,
/// timeouts). Other 4xx are never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per fetch, including the first (default 3).
    pub max_attempts: u32,
    /// The backoff ceiling for the first retry (default 100 ms).
    pub base_delay: Duration,
    /// The largest backoff ceiling (default 1 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based): uniform in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]` ("full jitter", so a
    /// fleet of pods that failed together does not retry together).
    pub(crate) fn backoff(&self, retry: u32, rng: &dyn RandomSource) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        uniform(rng, Duration::ZERO, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FastRandom;

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let p = RetryPolicy::default();
        let rng = FastRandom::seeded(7);
        for retry in 1..=8u32 {
            let ceiling = (p.base_delay * 2u32.pow(retry - 1)).min(p.max_delay);
            let draws: Vec<_> = (0..500).map(|_| p.backoff(retry, &rng)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "retry {retry}");
            // Full jitter: draws spread over the whole range, not clustered at the top.
            assert!(draws.iter().any(|d| *d < ceiling / 4), "retry {retry}");
            assert!(draws.iter().any(|d| *d > ceiling * 3 / 4), "retry {retry}");
        }
    }
}
