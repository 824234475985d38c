//! Credentials for Amazon EKS Pod Identity, kept fresh without stalling requests.
//!
//! [`PodIdentityProvider`] implements the AWS SDK's
//! [`ProvideCredentials`](aws_credential_types::provider::ProvideCredentials)
//! on top of a [`RefreshingCache`]: lock-free reads, proactive jittered
//! background refresh, one shared fetch for all waiters, and cached
//! credentials served through agent faults until they expire.
//! [`CredentialChain`] adds IMDSv2 where it is safe, and
//! [`SdkIdentityCache`] puts the cache in front of an SDK client.
//!
//! The public modules are [`config`] (environment → settings, pure),
//! [`context`] (the injectable seams: env, files, DNS, clock, randomness),
//! [`protocol`] (the wire facts of the agent and IMDS) and [`docs`]
//! (design, guarantees, limitations); with the `test-util` feature,
//! `test_util` holds test doubles of the seams. Everything else is
//! re-exported here.
//!
//! Inside, the flow runs one way: `config` → `source` (the agent and IMDS
//! clients behind the [`CredentialSource`] trait) → `cache` (the refreshing
//! cache over any source) → `chain` / `provider`, with `context`, `error`,
//! `status` and `support` (HTTP, time, RFC 3339) underneath.
//!
//! Errors follow the standard convention: `Display` says what its own layer
//! knows (and the fix it can name), [`std::error::Error::source`] gives the
//! next layer. Print them with [`ErrorChain`] to show every cause once.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod context;
pub mod docs;
pub mod protocol;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

mod cache;
mod chain;
mod error;
mod provider;
mod source;
mod status;
mod support;

pub use cache::refreshing::RefreshingCache;
pub use cache::schedule::RefreshPolicy;
pub use cache::sdk_identity::SdkIdentityCache;
pub use cache::task::TaskWatch;
pub use chain::{ChainError, CredentialChain, CredentialChainBuilder, FallbackPolicy};
pub use context::{Env, MapEnv, ProcessEnv, ProviderContext};
pub use error::{
    AgentError, Classify, ConfigError, ErrorChain, ErrorKind, ExpiresTooSoon, FetchAborted,
    ImdsError, ParseError, RefreshError, TokenError, TokenOrigin,
};
pub use provider::{PodIdentityProvider, PodIdentityProviderBuilder};
pub use source::agent::{BuildError, Timeouts};
pub use source::imds::{ImdsOptions, ImdsSource};
pub use source::retry::RetryPolicy;
pub use source::{CredentialSource, Fetched, DEFAULT_FETCH_TIMEOUT};
pub use status::Status;
