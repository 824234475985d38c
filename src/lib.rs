//! # eks-pod-identity
//!
//! AWS credentials for applications on Amazon EKS through **EKS Pod
//! Identity**, kept fresh in the background so that requests never wait on a
//! refresh while valid credentials exist, and a fallback to IMDSv2 that never
//! hands a Kubernetes pod the node's IAM role by accident.
//!
//! This crate is a facade over [`eks_pod_identity_provider`] (everything is
//! re-exported here) plus, with the default `aws-config` feature, the AWS
//! SDK's default credential chain with our provider in it.
//!
//! ## One line, a drop-in for `aws_config::load_defaults`
//!
//! ```no_run
//! # #[cfg(feature = "aws-config")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use aws_config::BehaviorVersion;
//!
//! let config = eks_pod_identity::load_defaults(BehaviorVersion::latest()).await;
//! let s3 = aws_sdk_s3::Client::new(&config);
//! let _buckets = s3.list_buckets().send().await?;
//! # Ok(()) }
//! ```
//!
//! The chain keeps the SDK's precedence (environment keys, profile, web
//! identity, container credentials, IMDS) and its environment variables and
//! profiles; what changes is that Pod Identity credentials are refreshed in
//! the background by [`PodIdentityProvider`], and that IMDS is refused in a
//! Kubernetes pod unless allowed ([`FallbackPolicy`]). See [`DefaultChain`]
//! to keep a handle for [`DefaultChain::status`].
//!
//! ## Only Pod Identity
//!
//! ```no_run
//! use eks_pod_identity::PodIdentityProvider;
//! use std::time::Duration;
//!
//! # fn run() -> Result<(), eks_pod_identity::BuildError> {
//! let provider = PodIdentityProvider::builder()
//!     .attempt_timeout(Duration::from_secs(5))
//!     .build()?; // reads AWS_CONTAINER_CREDENTIALS_FULL_URI & the token file
//! # let _ = provider; Ok(()) }
//! ```
//!
//! ## Features
//!
//! * `aws-config` (default): [`DefaultChain`] and [`load_defaults`], the
//!   SDK's default chain with our provider in it.
//! * `rustls` (default): `https` credential endpoints. The Pod Identity
//!   Agent and IMDS are plain http, so `default-features = false` gives a
//!   build with no TLS stack; an `https` endpoint then fails to build with
//!   [`ConfigError::TlsNotEnabled`].
//!
//! The design, the guarantees (what waits and what never does) and the
//! limitations are in [`docs`].

pub use eks_pod_identity_provider::*;

#[cfg(feature = "aws-config")]
pub mod default_chain;
pub mod report;
#[cfg(feature = "aws-config")]
mod setup;

#[cfg(feature = "aws-config")]
pub use default_chain::{ChainStatus, DefaultChain, DefaultChainBuilder, NoCredentials};
#[cfg(feature = "aws-config")]
pub use setup::{load_defaults, ConfigLoaderExt};

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
