//! What the cache holds: credentials, the SDK `Identity` built from them
//! once per refresh, and the instants derived from their expiry.

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

/// How many copies of the SDK `Identity` each entry keeps: one per CPU the
/// process may use, at most 16 (each copy is a few hundred bytes).
fn identity_stripes() -> usize {
    static STRIPES: OnceLock<usize> = OnceLock::new();
    *STRIPES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(16)
    })
}

/// The calling thread's stripe: threads are numbered in the order they first
/// ask, so the worker threads of a runtime spread over the stripes.
fn identity_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|s| *s)
}

/// Cached credentials and the instants derived from them.
pub(crate) struct Entry {
    pub(crate) credentials: Credentials,
    /// The same credentials as the SDK's `Identity`, built once per refresh so
    /// that the [`SdkIdentityCache`](crate::SdkIdentityCache) hands out a clone
    /// instead of converting (and allocating) on every request. One copy per
    /// stripe (see [`identity_stripe`]): cloning one shared `Identity` from
    /// every thread made its reference counts a contended cache line, and
    /// the SDK path cost ~10× more at 8 tasks than at 1 (`benches/hot_path.rs`).
    identities: Box<[Identity]>,
    pub(crate) expiration: SystemTime,
    /// `expiration − mandatory window`: from here on callers wait.
    pub(crate) wait_from: SystemTime,
    pub(crate) label: String,
}

impl Entry {
    /// An entry for `credentials`, with one `Identity` per stripe.
    pub(crate) fn new(
        credentials: Credentials,
        expiration: SystemTime,
        wait_from: SystemTime,
        label: String,
    ) -> Self {
        Self {
            identities: (0..identity_stripes())
                .map(|_| Identity::from(credentials.clone()))
                .collect(),
            credentials,
            expiration,
            wait_from,
            label,
        }
    }

    /// The calling thread's copy of the `Identity`.
    #[inline]
    pub(crate) fn identity(&self) -> Identity {
        let stripes = &self.identities;
        stripes[identity_stripe() % stripes.len()].clone()
    }
}
