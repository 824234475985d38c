//! Test doubles for EKS Pod Identity.
//!
//! - [`agent::FakeAgent`]: the EKS Pod Identity Agent (`GET /v1/credentials`), with the
//!   real agent's validation, error texts, token bucket and `Host` check, pluggable
//!   credential minting ([`creds::Minter`]: static fakes or moto STS `AssumeRole`),
//!   latency and fault injection ([`fault::FaultPlan`]), counters and a request log.
//! - [`imds::FakeImds`]: IMDSv2 (token flow, TTL header, IMDSv1 toggle, hop-limit
//!   emulation, disabled / no-role modes, faults).
//! - [`token`]: JWT-shaped fixture service-account tokens.
//! - [`stack::MotoStack`]: a local `moto_server` (S3 + STS + IAM) seeded like the
//!   blog's Terraform, with IAM enforcement on.
//!
//! Binary `pod-identity-local-agent` runs a fake agent (optionally on moto) from the
//! command line.

pub mod agent;
pub mod creds;
pub mod fault;
pub mod imds;
mod server;
pub mod stack;
pub mod timefmt;
pub mod token;

pub use agent::FakeAgent;
pub use creds::{MintedCredentials, Minter};
pub use fault::{Fault, FaultPlan};
pub use imds::FakeImds;
pub use stack::MotoStack;
