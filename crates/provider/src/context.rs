//! Everything a provider takes from the outside world, in one injectable bundle.
//!
//! Like `aws-config`'s `ProviderConfig`, this separates *where* env, files,
//! time, randomness and DNS come from (the process, or a test) from *what* a
//! provider does with them.

use crate::config::{Env, ProcessEnv};
use crate::http::{HostResolver, SystemResolver};
use crate::time::{Clock, FastRandom, RandomSource, SharedClock, SharedRandom, SystemClock};
use crate::token::{FileSystem, RealFileSystem};
use std::sync::Arc;

/// The injectable environment of a provider. `Default` is the real process.
#[derive(Debug, Clone)]
pub struct ProviderContext {
    pub(crate) env: Arc<dyn Env>,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) clock: SharedClock,
    pub(crate) rng: SharedRandom,
    pub(crate) resolver: Arc<dyn HostResolver>,
}

impl Default for ProviderContext {
    fn default() -> Self {
        Self {
            env: Arc::new(ProcessEnv),
            fs: Arc::new(RealFileSystem),
            clock: Arc::new(SystemClock),
            rng: Arc::new(FastRandom::new()),
            resolver: SystemResolver::shared(),
        }
    }
}

impl ProviderContext {
    /// The real process environment, filesystem, clock, randomness and DNS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the environment variables.
    pub fn with_env(mut self, env: impl Env) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Replaces the filesystem (token file reads).
    pub fn with_fs(mut self, fs: impl FileSystem) -> Self {
        self.fs = Arc::new(fs);
        self
    }

    /// Replaces the wall clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the random source used for jitter.
    pub fn with_random(mut self, rng: impl RandomSource) -> Self {
        self.rng = Arc::new(rng);
        self
    }

    /// Replaces the DNS resolver used for plain-http hostnames.
    pub fn with_resolver(mut self, resolver: impl HostResolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// The environment variables in use.
    pub fn env(&self) -> &dyn Env {
        &*self.env
    }

    /// The clock in use.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}
