//! Per-fetch retry policy: exponential backoff with full jitter.

use crate::context::RandomSource;
use crate::error::ConfigError;
use crate::support::time::uniform;
use std::time::Duration;

/// How one fetch retries transient failures (5xx, 429, connect errors,
/// timeouts, and credentials that arrive already expired). Other 4xx are
/// never retried.
///
/// ```
/// use eks_pod_identity_provider::RetryPolicy;
/// use std::time::Duration;
/// let retry = RetryPolicy::default().with_max_attempts(5).with_max_delay(Duration::from_secs(2));
/// assert!(retry.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`base_delay`](Self::base_delay).
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Checks the settings; `prefix` names the policy in the error
    /// (`retry_policy`, `imds.retry`).
    pub(crate) fn validate_as(&self, prefix: &'static str) -> Result<(), ConfigError> {
        let field = |name: &'static str| -> &'static str {
            match (prefix, name) {
                ("imds.retry", "max_attempts") => "imds.retry.max_attempts",
                ("imds.retry", _) => "imds.retry.max_delay",
                (_, "max_attempts") => "retry_policy.max_attempts",
                _ => "retry_policy.max_delay",
            }
        };
        if self.max_attempts == 0 {
            return Err(ConfigError::InvalidSetting {
                field: field("max_attempts"),
                reason: "must be at least 1 (the first attempt counts)".into(),
            });
        }
        if self.max_delay < self.base_delay {
            return Err(ConfigError::InvalidSetting {
                field: field("max_delay"),
                reason: format!(
                    "{:?} is less than base_delay ({:?})",
                    self.max_delay, self.base_delay
                ),
            });
        }
        Ok(())
    }

    /// Checks the settings; the error names the offending field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_as("retry_policy")
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
    use crate::context::FastRandom;

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
