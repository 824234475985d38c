//! # Guarantees: the concurrency contract of every public method
//!
//! "Lock-free" means no lock and no `await`: atomic loads and a clone.
//! "Never waits" means the call returns without waiting on I/O or on
//! another caller.
//!
//! | Method | Contract |
//! |---|---|
//! | [`RefreshingCache::cached`], and the hot path of [`ProvideCredentials`] on [`PodIdentityProvider`], [`CredentialChain`] and [`RefreshingCache`] | Lock-free and never waits: one `ArcSwap` load, one clock reading, one clone. |
//! | [`SdkIdentityCache`] serving its own provider's requests | Lock-free while credentials are fresh; otherwise as `get`. |
//! | [`RefreshingCache::get`], [`PodIdentityProvider::credentials`], [`CredentialChain::credentials`] | Never waits unless nothing valid is cached or the credentials are inside the mandatory window; then waits for the one fetch all callers share, at most the source's fetch deadline plus about a second, even if the task running the fetch is never polled again. |
//! | `status()` on each of them | Takes the cache's schedule lock briefly (never held across an `await`); never waits for a fetch. |
//! | `task_watch()`, [`TaskWatch::is_running`] | Lock-free. |
//! | Builders (`build()`) | No I/O except reading the environment through the context; nothing is fetched. |
//!
//! Faults:
//!
//! * A failed refresh while valid credentials are cached is not an error:
//!   they are served until they expire ([`Status::served_cached_after_failure`]
//!   counts those calls).
//! * Credentials are never served past their expiry.
//! * With nothing valid cached, callers within a short backoff after a
//!   failed fetch share its error instead of starting a new fetch.
//! * A panic in a source becomes a typed error
//!   ([`FetchAborted::Panicked`]); a fetch cancelled with its runtime is
//!   restarted on the next caller's runtime.
//!
//! [`ProvideCredentials`]: aws_credential_types::provider::ProvideCredentials
//! [`RefreshingCache::cached`]: crate::RefreshingCache::cached
//! [`RefreshingCache::get`]: crate::RefreshingCache::get
//! [`RefreshingCache`]: crate::RefreshingCache
//! [`PodIdentityProvider`]: crate::PodIdentityProvider
//! [`PodIdentityProvider::credentials`]: crate::PodIdentityProvider::credentials
//! [`CredentialChain`]: crate::CredentialChain
//! [`CredentialChain::credentials`]: crate::CredentialChain::credentials
//! [`SdkIdentityCache`]: crate::SdkIdentityCache
//! [`TaskWatch::is_running`]: crate::TaskWatch::is_running
//! [`Status::served_cached_after_failure`]: crate::Status::served_cached_after_failure
//! [`FetchAborted::Panicked`]: crate::FetchAborted::Panicked
