//! Credentials for Amazon EKS Pod Identity, kept fresh without stalling requests.
//!
//! [`PodIdentityProvider`] implements the AWS SDK's
//! [`ProvideCredentials`](aws_credential_types::provider::ProvideCredentials)
//! on top of a [`RefreshingCache`](cache::RefreshingCache): lock-free reads,
//! proactive jittered background refresh, one shared fetch for all waiters,
//! and cached credentials served through agent faults until they expire.
//!
//! Modules are split by concept: [`config`] (environment → settings, pure),
//! [`token`], [`document`] and [`rfc3339`] (parsing), `agent` (the HTTP
//! client), [`cache`] and [`schedule`] (refresh), [`identity_cache`] (the cache
//! offered to the SDK as its identity cache), [`time`] and [`context`]
//! (injection points for tests).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
pub mod cache;
pub mod chain;
pub mod config;
pub mod context;
pub mod document;
mod error;
mod http;
pub mod identity_cache;
pub mod imds;
pub mod protocol;
mod provider;
pub mod retry;
pub mod rfc3339;
pub mod schedule;
pub mod source;
mod status;
pub mod time;
pub mod token;

pub use chain::{ChainError, CredentialChain, CredentialChainBuilder, FallbackPolicy};
pub use config::{Env, MapEnv, ProcessEnv};
pub use context::ProviderContext;
pub use error::{
    AgentError, Classify, ConfigError, ErrorKind, ExpiresTooSoon, FetchAborted, ImdsError,
    ParseError, RefreshError, TokenError, TokenOrigin,
};
pub use http::{HostResolver, SystemResolver, MAX_BODY_BYTES};
pub use identity_cache::SdkIdentityCache;
pub use provider::{BuildError, PodIdentityProvider, PodIdentityProviderBuilder};
pub use retry::RetryPolicy;
pub use schedule::RefreshPolicy;
pub use status::Status;
