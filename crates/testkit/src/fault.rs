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
    /// `200` with a body that is not credentials (see [`BadBody`]).
    Body(BadBody),
}

/// A `200` answer whose body cannot be used as credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadBody {
    /// `text/plain` prose, as from a misrouted service or a captive proxy.
    PlainText,
    /// `Content-Length` announces a whole credentials document, half of it is
    /// sent, then the connection closes (a peer that died mid-answer).
    CutOff,
    /// An `application/json` document of this many bytes (a runaway peer:
    /// clients cap what they read).
    Oversized(usize),
}

/// The plain-text body of [`BadBody::PlainText`].
pub const PLAIN_TEXT_BODY: &str = "OK: Pod Identity Agent is healthy\n";

/// The document that [`BadBody::CutOff`] announces in full and sends half of.
const CUT_OFF_DOCUMENT: &str = concat!(
    r#"{"AccessKeyId":"ASIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","#,
    r#""Token":"IQoJb3JpZ2luX2VjEXAMPLETOKEN","AccountId":"123456789012","Expiration":"2099-01-01T00:00:00Z"}"#
);

impl BadBody {
    /// The response for this body.
    pub(crate) fn response(self) -> crate::server::Resp {
        use crate::server;
        match self {
            BadBody::PlainText => server::raw(200, "text/plain; charset=utf-8", PLAIN_TEXT_BODY),
            BadBody::CutOff => server::cut_off(
                200,
                "application/json",
                bytes::Bytes::from_static(CUT_OFF_DOCUMENT.as_bytes()),
                CUT_OFF_DOCUMENT.len() / 2,
            ),
            BadBody::Oversized(len) => server::raw(200, "application/json", oversized(len)),
        }
    }
}

/// A syntactically valid JSON object of exactly `len` bytes (at least 12) that
/// holds no credentials.
fn oversized(len: usize) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"Padding":""#;
    const TAIL: &[u8] = br#""}"#;
    let mut body = Vec::with_capacity(len.max(HEAD.len() + TAIL.len()));
    body.extend_from_slice(HEAD);
    body.resize(len.saturating_sub(TAIL.len()).max(HEAD.len()), b'x');
    body.extend_from_slice(TAIL);
    body
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

    /// An upstream (EKS Auth) error as the agent relays it: `status` with the
    /// `text/plain` body `[<requestId>]: (<code>): <message>, fault: <fault>`.
    pub fn upstream(status: u16, code: &str, message: &str, fault: &str) -> Self {
        Fault::Status(
            status,
            format!(
                "[{}]: ({code}): {message}, fault: {fault}",
                crate::server::request_id()
            ),
        )
    }

    /// `400` `ExpiredTokenException` from EKS Auth (its documented message):
    /// what the agent answers when the token expired upstream.
    pub fn expired_token_exception() -> Self {
        Self::upstream(
            400,
            "ExpiredTokenException",
            "The specified Kubernetes service account token is expired.",
            "client",
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
            Fault::Body(BadBody::PlainText) => "plain_text_body",
            Fault::Body(BadBody::CutOff) => "cut_off_body",
            Fault::Body(BadBody::Oversized(_)) => "oversized_body",
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
