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
//! - [`netns::EksNode`] (Linux, root): an emulated EKS node of network namespaces
//!   (`pod`, `node`, `imds`) with the production addresses (169.254.170.23,
//!   `[fd00:ec2::23]`, 169.254.169.254, `[fd00:ec2::254]`), a real IMDS hop limit and
//!   REJECT/DROP blocks, running the fakes (and moto) inside it.
//!
//! Binary `pod-identity-local-agent` runs a fake agent (optionally on moto) from the
//! command line.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use eks_pod_identity_testkit::{stack, token, MotoStack};
//! // moto_server comes from scripts/ensure-moto.sh (or $MOTO_SERVER).
//! let moto = MotoStack::start().await?;
//! let agent = moto.fake_agent().start().await?; // my-app-namespace/my-app-sa → pod role
//! let jwt = token::mint(stack::DEFAULT_NAMESPACE, stack::DEFAULT_SERVICE_ACCOUNT);
//! // Point AWS_CONTAINER_CREDENTIALS_FULL_URI at agent.uri(), write `jwt` to the file
//! // named by AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, AWS_ENDPOINT_URL at
//! // moto.endpoint_url(): S3 calls are then signed with real, policy-checked moto
//! // credentials of `my-app-pod-identity-role`.
//! # let _ = (agent, jwt); Ok(()) }
//! ```
//!
//! Tests that need moto should use [`MotoStack::start_or_skip`]: it skips with a
//! printed reason when `moto_server` is not installed, except under `CI=true`, where
//! it fails. Every skip goes through [`skip::skip`], which also counts it for
//! `scripts/test.sh`'s summary.

pub mod agent;
pub mod creds;
pub mod fault;
pub mod imds;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod port;
mod server;
pub mod skip;
pub mod stack;
pub mod timefmt;
pub mod token;

pub use agent::FakeAgent;
pub use creds::{MintedCredentials, Minter};
pub use fault::{Fault, FaultPlan};
pub use imds::FakeImds;
pub use stack::MotoStack;
