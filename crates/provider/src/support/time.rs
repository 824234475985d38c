//! Time and randomness helpers over the injected seams (see
//! [`context`](crate::context)): jittered draws and sleeping until a
//! wall-clock instant.

use crate::context::{Clock, RandomSource};
use std::time::{Duration, SystemTime};

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
