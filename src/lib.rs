//! # eks-pod-identity
//!
//! AWS credentials for applications on Amazon EKS through **EKS Pod
//! Identity**, kept fresh in the background so that requests never wait on a
//! refresh while valid credentials exist, and a fallback to IMDSv2 that never
//! hands a Kubernetes pod the node's IAM role by accident.
//!
//! This crate is a facade over [`eks_pod_identity_provider`]; everything is
//! re-exported here.
//!
//! ## Quick use with the AWS SDK
//!
//! ```no_run
//! use eks_pod_identity::CredentialChain;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Pod Identity when EKS configured it for this pod; otherwise IMDSv2 only
//! // where that is safe (outside Kubernetes, or when explicitly allowed).
//! let chain = CredentialChain::builder().build()?;
//! let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .credentials_provider(chain.clone())
//!     // Requests read our cache directly (see `SdkIdentityCache`).
//!     .identity_cache(chain.identity_cache())
//!     .load()
//!     .await;
//! let s3 = aws_sdk_s3::Client::new(&config);
//! let _buckets = s3.list_buckets().send().await?;
//! println!("credentials from {}", chain.status().source);
//! # Ok(()) }
//! ```
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

pub use eks_pod_identity_provider::*;

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
