//! Shared test doubles.
#![allow(dead_code)]

use aws_credential_types::Credentials;
use eks_pod_identity_provider::context::{Clock, FastRandom, TokioClock};
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{Classify, ErrorKind, RefreshError, RefreshPolicy};
use eks_pod_identity_provider::{CredentialSource, Fetched};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const HOUR: Duration = Duration::from_secs(3600);
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
pub const SESSION: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";

/// What the scripted source does on a fetch.
#[derive(Debug, Clone)]
pub enum Step {
    /// Credentials valid for this long from now.
    Ok(Duration),
    /// Fail with this kind.
    Fail(ErrorKind),
}

#[derive(Debug, thiserror::Error)]
#[error("scripted failure ({0})")]
pub struct ScriptedError(pub ErrorKind);

impl Classify for ScriptedError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

#[derive(Debug)]
pub struct Script {
    pub clock: TokioClock,
    pub steps: Mutex<VecDeque<Step>>,
    pub default: Mutex<Step>,
    pub delay: Mutex<Duration>,
    pub calls: AtomicUsize,
    /// Of `calls`, those made through `fetch_once` (the background refresh).
    pub once_calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

/// An in-process source driven by a script, for cache tests under paused time.
#[derive(Debug, Clone)]
pub struct ScriptedSource(pub Arc<Script>);

impl ScriptedSource {
    pub fn new(clock: TokioClock, default: Step) -> Self {
        Self(Arc::new(Script {
            clock,
            steps: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            delay: Mutex::new(Duration::from_millis(50)),
            calls: AtomicUsize::new(0),
            once_calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }))
    }
    pub fn push(&self, step: Step) {
        self.0.steps.lock().unwrap().push_back(step);
    }
    pub fn set_default(&self, step: Step) {
        *self.0.default.lock().unwrap() = step;
    }
    pub fn set_delay(&self, d: Duration) {
        *self.0.delay.lock().unwrap() = d;
    }
    pub fn calls(&self) -> usize {
        self.0.calls.load(Ordering::SeqCst)
    }
    /// Fetches made through `fetch_once` (included in `calls`).
    pub fn once_calls(&self) -> usize {
        self.0.once_calls.load(Ordering::SeqCst)
    }
}

impl CredentialSource for ScriptedSource {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn fetch_once(&self) -> Result<Fetched, RefreshError> {
        self.0.once_calls.fetch_add(1, Ordering::SeqCst);
        self.fetch().await
    }

    async fn fetch(&self) -> Result<Fetched, RefreshError> {
        let s = &self.0;
        let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let now_in = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now_in, Ordering::SeqCst);
        let delay = *s.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        let step = s
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| s.default.lock().unwrap().clone());
        match step {
            Step::Ok(valid_for) => {
                let expiration = s.clock.now() + valid_for;
                Ok(Fetched {
                    credentials: Credentials::new(
                        format!("ASIA{n:012}"),
                        SECRET,
                        Some(SESSION.to_owned()),
                        Some(expiration),
                        "scripted",
                    ),
                    expiration,
                    label: "scripted".into(),
                })
            }
            Step::Fail(kind) => Err(RefreshError::new("scripted", ScriptedError(kind))),
        }
    }
}

pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn cache(source: ScriptedSource, policy: RefreshPolicy) -> RefreshingCache<ScriptedSource> {
    let clock = source.0.clock;
    RefreshingCache::new(
        source,
        policy,
        Arc::new(clock),
        Arc::new(FastRandom::seeded(99)),
    )
}
