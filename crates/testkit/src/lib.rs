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
//!   Terraform in `deploy/terraform`, with IAM enforcement on.
//! - [`netns::EksNode`] (Linux, root): an emulated EKS node of network namespaces
//!   (`pod`, `node`, `imds`) with the production addresses (169.254.170.23,
//!   `[fd00:ec2::23]`, 169.254.169.254, `[fd00:ec2::254]`), a real IMDS hop limit and
//!   REJECT/DROP blocks, running the fakes (and moto) inside it.
//! - [`module_graph`]: a crate's module graph read from its sources (import
//!   cycles, files over 700 lines, one-way layers); `tests/module_graph.rs`
//!   runs it over every crate of the workspace.
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
//!
//! # Independent copies of the protocol facts
//!
//! The testkit keeps its own copies of the wire facts on purpose, and never
//! imports them from `eks-pod-identity-provider`: a fake that shares the code
//! under test cannot catch that code's bugs (a wrong header name or a formatter
//! that drops nanoseconds would be wrong on both sides, and every test would
//! pass). The copies are:
//!
//! | fact | testkit copy | provider's home |
//! |---|---|---|
//! | RFC 3339 `Expiration` (Go's `RFC3339Nano`) and IMDS's seconds format | [`timefmt::rfc3339_nano`], [`timefmt::imds`] | its RFC 3339 parser |
//! | IMDS paths, header names, token TTL bound | [`imds::TOKEN_PATH`], [`imds::CREDENTIALS_PATH`], [`imds::TTL_HEADER`], [`imds::TOKEN_HEADER`], [`imds::MAX_TOKEN_TTL_SECS`] | `protocol::IMDS_*` |
//! | agent and IMDS addresses | [`agent::REAL_AGENT_HOSTS`]; `netns::{AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6}` (Linux) | `protocol::POD_IDENTITY_AGENT_V4/_V6`, `protocol::IMDS_ENDPOINT_V4/_V6` |
//! | service-account JWT encoding and decoding | [`token::TokenBuilder`], [`token::decode`] | the provider's token checks; the doctor's claim decoder |
//!
//! Independent is not unchecked: `crates/provider/tests/fakes_agree.rs` checks
//! each copy against the provider's `protocol` module and round-trips the
//! formats through the provider's public API (a [`FakeAgent`] and a [`FakeImds`]
//! serving expirations the provider must report back exactly; minted tokens the
//! provider must send and the fake must accept), and
//! `crates/doctor/tests/fakes_agree.rs` checks that the doctor decodes minted
//! tokens to the same claims. Change a copy on either side and those tests fail.
//!
//! # Which fake to use
//!
//! One question decides it: is the behaviour under test about the *protocol*
//! (what the agent or IMDS answers) or about *bytes and sockets* (how a peer
//! misbehaves below HTTP)?
//!
//! | to test | use | because |
//! |---|---|---|
//! | protocol behaviour: token validation, error texts, associations, throttling, IMDSv2 token flow, TTL header, IMDSv1, disabled / no-role modes, scripted HTTP-level faults, request logs | [`FakeAgent`], [`FakeImds`] (with [`FaultPlan`]) | they behave like the real agent and IMDS, so a test states a scenario, not a hand-written answer |
//! | credentials that AWS checks (SigV4, session tokens, role policies) | [`MotoStack`] (its [`fake_agent`](MotoStack::fake_agent) / [`fake_imds`](MotoStack::fake_imds)) | the credentials are real moto credentials, policy-checked |
//! | production addresses, the IMDS hop limit, REJECT / DROP blocks, pods vs. hostNetwork | [`netns::EksNode`] (Linux, root) | only real namespaces give a real hop limit and real routing |
//! | byte-level faults: hang inside headers, stall mid-body, endless chunked body, refuse, full accept queue | the raw peer `crates/provider/tests/common/peer.rs` | it writes bytes, not HTTP answers |
//! | an exact request a fake does not record (the raw `Authorization` value, `Accept`), or an answer no fake models (a `307` with a `Location`, a document missing a field, an IMDS `Code` other than `Success`, an IMDSv1-only server) | `wiremock` | a one-off canned answer; only where the fakes cannot say it |
//!
//! Where each is used today:
//!
//! - [`FakeAgent`] in `crates/testkit/tests/{agent,moto}.rs`,
//!   `crates/doctor/tests/{check_env,check_pod_identity,check_netns}.rs`,
//!   `tests/e2e.rs`, `benches/{hot_path,rotation,failing_agent}.rs`,
//!   `crates/provider/tests/fakes_agree.rs`.
//! - [`FakeImds`] in `crates/testkit/tests/imds.rs`,
//!   `crates/doctor/tests/{check_support/mod,check_env,check_cli,check_imds}.rs`,
//!   `tests/e2e.rs`, `crates/provider/tests/fakes_agree.rs`.
//! - [`MotoStack`] in `crates/testkit/tests/moto.rs`,
//!   `crates/doctor/tests/check_identity_moto.rs`, `tests/{chain_precedence,e2e}.rs`.
//! - [`netns::EksNode`] in `crates/testkit/tests/netns.rs`,
//!   `crates/doctor/tests/check_netns.rs`, `tests/e2e_node.rs`.
//! - the raw peer in `crates/provider/tests/{fault_matrix,security}.rs` (and the
//!   matrix helpers under `crates/provider/tests/common/`).
//! - `wiremock` in `crates/provider/tests/{agent,imds,load}.rs`. Many of those
//!   tests script plain protocol behaviour that [`FakeAgent`] / [`FakeImds`]
//!   model with the real texts (a conforming agent or IMDSv2, 404 without an
//!   association, 429 and 5xx via [`FaultPlan`], an expired token with
//!   [`FakeAgentBuilder::on_expired_token`](agent::FakeAgentBuilder::on_expired_token),
//!   IMDS disabled / no role / renamed role / missing TTL header / a token `PUT`
//!   that is never answered); they predate the provider's dev-dependency on
//!   this crate and are candidates to move to the fakes.

pub mod agent;
pub mod creds;
pub mod fault;
pub mod imds;
pub mod module_graph;
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
