//! The agent's token bucket (`rate.NewLimiter(1000, 500)`), on `tokio::time`.

use tokio::time::Instant;

/// A token bucket like the agent's (`rate.NewLimiter(1000, 500)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Refill rate, tokens per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 1000.0,
            burst: 500,
        }
    }
}

#[derive(Debug)]
pub(super) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    pub(super) fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn token_bucket_refills_with_tokio_time() {
        let mut b = TokenBucket::new(RateLimit::default());
        for _ in 0..500 {
            assert!(b.try_take());
        }
        assert!(!b.try_take(), "burst of 500 exhausted");
        tokio::time::advance(Duration::from_millis(10)).await;
        for _ in 0..10 {
            assert!(b.try_take(), "1000/s refills 10 tokens in 10 ms");
        }
        assert!(!b.try_take());
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..500 {
            assert!(b.try_take());
        }
        assert!(!b.try_take(), "never more than the burst");
    }
}
