//! Fault injection for the fakes: a script of per-request actions consumed in order,
//! and/or a seeded random rate.

use std::collections::VecDeque;
use std::time::Duration;

/// What a fake does to one request instead of (or on top of) answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and `text/plain` body (a trailing newline is added).
    Status(u16, String),
    /// `429 Too Many Requests`.
    TooManyRequests,
    /// Accept the request and never answer (the connection stays open).
    Hang,
    /// `200` with a body that is not valid JSON.
    Malformed,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer normally but with credentials that already expired.
    ExpiredCredentials,
    /// Answer normally but with credentials expiring in this long.
    ExpiresIn(Duration),
    /// Close the connection without answering.
    Drop,
}

impl Fault {
    /// `500` with an EKS-Auth-style `InternalServerException` body.
    pub fn internal_error() -> Self {
        Fault::Status(
            500,
            "[00000000-0000-0000-0000-000000000000]: (InternalServerException): internal error, fault: server".into(),
        )
    }

    /// `503` with an EKS-Auth-style `ServiceUnavailableException` body.
    pub fn service_unavailable() -> Self {
        Fault::Status(
            503,
            "[00000000-0000-0000-0000-000000000000]: (ServiceUnavailableException): service unavailable, fault: server".into(),
        )
    }

    /// A short name for logs and stats.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Status(..) => "status",
            Fault::TooManyRequests => "too_many_requests",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::Slow(_) => "slow",
            Fault::ExpiredCredentials => "expired_credentials",
            Fault::ExpiresIn(_) => "expires_in",
            Fault::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone)]
struct RateFault {
    probability: f64,
    faults: Vec<Fault>,
    rng: fastrand::Rng,
}

/// A fault plan: first the script (one action per request, in order), then, for
/// every later request, the seeded rate (if any), else normal behaviour.
///
/// ```
/// use eks_pod_identity_testkit::fault::{Fault, FaultPlan};
/// let plan = FaultPlan::new()
///     .then(Fault::TooManyRequests)
///     .then_times(Fault::internal_error(), 2)
///     .with_rate(0.1, [Fault::Hang], 42);
/// assert_eq!(plan.script_len(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    script: VecDeque<Option<Fault>>,
    rate: Option<RateFault>,
}

impl FaultPlan {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A plan from a script of faults.
    pub fn script(faults: impl IntoIterator<Item = Fault>) -> Self {
        Self {
            script: faults.into_iter().map(Some).collect(),
            rate: None,
        }
    }

    /// Appends a fault for the next unscripted request.
    pub fn then(mut self, fault: Fault) -> Self {
        self.script.push_back(Some(fault));
        self
    }

    /// Appends `n` copies of a fault.
    pub fn then_times(mut self, fault: Fault, n: usize) -> Self {
        for _ in 0..n {
            self.script.push_back(Some(fault.clone()));
        }
        self
    }

    /// Appends `n` normal (fault-free) requests to the script.
    pub fn then_ok(mut self, n: usize) -> Self {
        for _ in 0..n {
            self.script.push_back(None);
        }
        self
    }

    /// After the script, each request gets a fault with `probability` (0.0–1.0),
    /// picked uniformly from `faults`, from a generator seeded with `seed`.
    pub fn with_rate(
        mut self,
        probability: f64,
        faults: impl IntoIterator<Item = Fault>,
        seed: u64,
    ) -> Self {
        let faults: Vec<Fault> = faults.into_iter().collect();
        self.rate = (!faults.is_empty()).then(|| RateFault {
            probability: probability.clamp(0.0, 1.0),
            faults,
            rng: fastrand::Rng::with_seed(seed),
        });
        self
    }

    /// Entries left in the script.
    pub fn script_len(&self) -> usize {
        self.script.len()
    }

    /// Takes the action for the next request (`None` = behave normally).
    pub fn next_fault(&mut self) -> Option<Fault> {
        if let Some(step) = self.script.pop_front() {
            return step;
        }
        let rate = self.rate.as_mut()?;
        if rate.rng.f64() < rate.probability {
            let i = rate.rng.usize(..rate.faults.len());
            Some(rate.faults[i].clone())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_then_normal() {
        let mut p = FaultPlan::new()
            .then(Fault::Hang)
            .then_ok(1)
            .then(Fault::Drop);
        assert_eq!(p.next_fault(), Some(Fault::Hang));
        assert_eq!(p.next_fault(), None);
        assert_eq!(p.next_fault(), Some(Fault::Drop));
        assert_eq!(p.next_fault(), None);
    }

    #[test]
    fn seeded_rate_is_deterministic() {
        let draw = || {
            let mut p = FaultPlan::new().with_rate(0.5, [Fault::TooManyRequests], 7);
            (0..100)
                .map(|_| p.next_fault().is_some())
                .collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        let n = a.iter().filter(|x| **x).count();
        assert!((20..80).contains(&n), "{n}");
    }
}
