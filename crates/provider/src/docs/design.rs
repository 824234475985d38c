//! # Design
//!
//! ## The flow, as the file tree
//!
//! ```text
//! config.rs      environment → settings (pure: strings in, typed settings out)
//! context.rs     the five seams: env, files, DNS, clock, randomness
//! source/        where credentials come from: the CredentialSource trait,
//!                the agent and IMDS clients, the document, the token, retries
//! cache/         the refreshing cache over any source, its schedule, and the
//!                same cache as the SDK's identity cache
//! chain.rs       Pod Identity, else IMDSv2 where the fallback policy allows
//! provider.rs    Pod Identity alone
//! support/       the hardened HTTP client, time helpers, RFC 3339
//! ```
//!
//! Dependencies run one way: `config` → `source` → `cache` →
//! `chain`/`provider`. The cache knows only the [`CredentialSource`] trait,
//! so every source (including yours) gets the same refresh behaviour.
//! `crates/testkit/tests/module_graph.rs` checks that the module graph has
//! no cycle and that the layers run one way.
//!
//! ## The refreshing cache
//!
//! For credentials of lifetime `L` (the validity left when they arrive):
//!
//! ```text
//!   fetched                      exp-A  exp-(A+M)/2      exp-M   exp
//!     |---------------------------|=====R=====|-------------|#####|
//!                                 background refresh at R,   callers wait
//!                                 drawn uniformly (jitter)   only here (M)
//! ```
//!
//! `A` is the advisory window ([`RefreshPolicy::advisory_window_for`]) and
//! `M = min(mandatory_window, L/4)` the mandatory one. Reads are one
//! `ArcSwap` load and a clone. A background task refreshes at `R`; callers
//! wait only with nothing cached or inside `M`, and then share one fetch.
//! A failed refresh never discards valid credentials (static stability),
//! and with nothing valid cached the error of a failed fetch is shared for
//! a short backoff, so a failing agent is not asked once per caller.
//!
//! ## The SDK's identity cache
//!
//! An SDK client does not call a credentials provider per request: it asks
//! its *identity cache* (`ResolveCachedIdentity`), which by default is the
//! SDK's lazy cache. In front of a [`PodIdentityProvider`] that cache costs
//! more than everything it fronts and adds behaviour this crate avoids (see
//! `BENCHMARKS.md`, `hot_path` and `failing_agent`):
//!
//! * every request takes its async `RwLock` and arms a timeout timer, about
//!   3 µs on the benchmark VM against a few hundred ns for our own read;
//! * when credentials are missing it lets one caller at a time through and
//!   each one starts its own fetch, so a failing agent sees one full fetch
//!   (3 attempts) per waiting request, serially, instead of one shared fetch.
//!
//! [`SdkIdentityCache`] serves instead the `Identity` that the refreshing
//! cache built once per refresh: one `ArcSwap` load, one clock read, one
//! clone. Waiting, single-flight, static stability and the background refresh
//! are the refreshing cache's, unchanged.
//!
//! ### Which resolver is ours: decided by construction
//!
//! The SDK hands the identity cache an opaque resolver, which carries an
//! `IdentityCachePartition`. A `SharedCredentialsProvider` gets its
//! partition once, when it is created, and keeps it however often it is
//! cloned. So an `SdkIdentityCache` creates the one shared provider that
//! reads its refreshing cache ([`SdkIdentityCache::credentials_provider`]) and
//! serves its fast path to exactly that provider's partition. Every other
//! resolver (another provider, a wrapper around ours, a per-client or
//! per-operation override, a bearer-token resolver) goes to the SDK's standard
//! lazy cache, exactly as if no custom identity cache were configured: it is
//! cached, never served our credentials. Nothing is decided by comparing the
//! credentials a resolver returned.
//!
//! Give the provider to the SDK as that very value, through
//! `SdkConfig::builder().credentials_provider(..)` or a client config's
//! `set_credentials_provider(Some(..))`. The `credentials_provider(impl
//! ProvideCredentials)` methods of `aws_config`'s loader and of service
//! configs wrap their argument in a *new* shared provider, hence a new
//! partition: that still works, through the lazy cache. The facade crate's
//! one-line setup (`eks_pod_identity::load_defaults`) does this for you.
//!
//! ## The coarse clock on the hot path
//!
//! The hot path asks "are the cached credentials still before the mandatory
//! window?". [`SystemClock`](crate::context::SystemClock) answers with
//! [`Clock::now_not_before`](crate::context::Clock::now_not_before): on
//! Linux it reads `CLOCK_REALTIME_COARSE` (a vDSO memory read, no timer
//! hardware access) plus
//! [`COARSE_CLOCK_MARGIN`](crate::context::COARSE_CLOCK_MARGIN). A precise
//! clock read costs more than the rest of a cached credentials call (≈ 350 ns
//! against ≈ 40 ns on the benchmark VM). The coarse clock lags by up to a
//! tick in theory, but measured lags reach 20 ms on a loaded VM (more than
//! its reported 4 ms resolution), hence a margin of a full second:
//! credentials leave the hot path at most a second before the mandatory
//! window begins (the slow path then checks the precise clock), never after.
//!
//! [`CredentialSource`]: crate::CredentialSource
//! [`RefreshPolicy::advisory_window_for`]: crate::RefreshPolicy::advisory_window_for
//! [`PodIdentityProvider`]: crate::PodIdentityProvider
//! [`SdkIdentityCache`]: crate::SdkIdentityCache
//! [`SdkIdentityCache::credentials_provider`]: crate::SdkIdentityCache::credentials_provider
