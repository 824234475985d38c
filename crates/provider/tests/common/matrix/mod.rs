//! The fault matrix: one table of faults, one runner. Shared by
//! `fault_matrix.rs` (behaviour) and `security.rs` (secret hygiene over the
//! same faults).
//!
//! Runtime cases follow one script:
//! 1. prime the provider with valid 1 h credentials from a healthy peer;
//! 2. inject the fault and move the injected clock 30 s before expiry
//!    (inside the 60 s mandatory window) so the next call must fetch from
//!    the faulty peer: it must still return the cached credentials and
//!    record the typed error kind in `status()` (or recover with new ones);
//! 3. move the clock past expiry: the call must fail with the same kind
//!    (expired credentials are never served).
//!
//! Peers are real sockets on 127.0.0.1/[::1] in real time; credential time
//! comes from an injected manual clock, so expiry is exact and no test sleeps.
//! Hangs end on short client deadlines.
//!
//! Include with `#[path = "common/matrix/mod.rs"] mod matrix;` next to
//! `#[path = "common/peer.rs"] mod peer;`.
//!
//! Files: [`table`] (the vocabulary and the whole table), the `cases_*`
//! files (the rows, by link), [`documents`], [`fixtures`] (the provider
//! under test and the fake peers), [`faults`] (injecting a fault),
//! [`outcome`] and [`run`].

#![allow(dead_code)]

use crate::peer::{Peer, Reply, Req};
use aws_credential_types::Credentials;
use eks_pod_identity_provider::config::vars;
use eks_pod_identity_provider::context::Clock;
use eks_pod_identity_provider::test_util::{FixedRandom, ManualClock, MapResolver};
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::RefreshingCache;
use eks_pod_identity_provider::{
    AgentError, BuildError, Classify, ErrorKind, ImdsError, PodIdentityProvider, ProviderContext,
    RefreshError, RefreshPolicy, RetryPolicy, Status,
};
use eks_pod_identity_provider::{ErrorChain, ImdsOptions, ImdsSource};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Fails the case with a message when `cond` is false.
macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

mod cases_agent;
mod cases_env_and_imds;
mod cases_expiration_and_token;
mod documents;
mod faults;
mod fixtures;
mod outcome;
mod run;
mod table;

use cases_agent::*;
use cases_env_and_imds::*;
use cases_expiration_and_token::*;
pub use documents::*;
use faults::*;
use fixtures::*;
pub use outcome::Outcome;
use outcome::*;
pub use run::run;
pub use table::*;

pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYMATRIXSECRET";
pub const SESSION: &str = "FwoGZXIvYXdzEMATRIXSESSIONTOKENxyz";
pub const TOKEN_A: &str = "eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYWxwaGE.sigALPHA";
pub const TOKEN_B: &str = "eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO";
pub const IMDS_TOKEN_1: &str = "AQAEAimdsSessionTokenOne==";
pub const IMDS_TOKEN_2: &str = "AQAEAimdsSessionTokenTwo==";
/// Every secret a test hands to the provider or a peer.
pub const SECRETS: &[&str] = &[
    SECRET,
    SESSION,
    TOKEN_A,
    TOKEN_B,
    IMDS_TOKEN_1,
    IMDS_TOKEN_2,
];

const HOUR: Duration = Duration::from_secs(3600);
const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
const AGENT_PATH: &str = "/v1/credentials";
