//! # Limitations and requirements
//!
//! ## A tokio runtime is required
//!
//! Fetches and the background refresh run on tokio. Any flavour works
//! (current-thread or multi-thread), and any number of runtimes over a
//! provider's life: the background refresh moves to the next caller's
//! runtime when its own shuts down or is no longer driven. Outside a
//! runtime, calls still return valid cached credentials and fail with
//! [`ErrorKind::NoRuntime`](crate::ErrorKind::NoRuntime) when a fetch would
//! be needed. A runtime built without its time driver
//! (`tokio::runtime::Builder::enable_time`) panics when a fetch is needed:
//! a fetch cannot run without deadlines.
//!
//! ## One `SdkIdentityCache` per SDK config
//!
//! An [`SdkIdentityCache`](crate::SdkIdentityCache) serves the one
//! credentials provider it created
//! ([`credentials_provider`](crate::SdkIdentityCache::credentials_provider)).
//! Set both on the same SDK config; another config, or a provider wrapped
//! again by `aws_config`'s `credentials_provider(..)`, goes through the
//! SDK's standard lazy cache instead (it still works, without the fast
//! path). See [`design`](super::design#the-sdks-identity-cache).
//!
//! ## Other limits
//!
//! * The cache never serves credentials past their expiry: a source must
//!   know when its credentials expire ([`Fetched::expiration`](crate::Fetched::expiration)).
//! * Inside a Kubernetes pod, IMDS hands out the node's role; the chain
//!   refuses it unless the [`FallbackPolicy`](crate::FallbackPolicy) allows it.
//! * `https` endpoints need the default `rustls` feature; without it a
//!   provider with an `https` endpoint fails to build with
//!   [`ConfigError::TlsNotEnabled`](crate::ConfigError::TlsNotEnabled).
