//! [`FakeAgent`]: an HTTP server that behaves like the EKS Pod Identity Agent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eks_pod_identity_testkit::{agent::FakeAgent, token};
//! let agent = FakeAgent::builder()
//!     .association("my-app-namespace", "my-app-sa", "arn:aws:iam::123456789012:role/my-app-pod-identity-role")
//!     .start()
//!     .await?;
//! // AWS_CONTAINER_CREDENTIALS_FULL_URI = agent.uri()
//! let _jwt = token::mint("my-app-namespace", "my-app-sa");
//! assert_eq!(agent.stats().total, 0);
//! # Ok(()) }
//! ```
//!
//! Behaviour (in request order): optional per-request latency; path other than
//! `/v1/credentials` → 404; optional `Host` check → 403; token bucket → 429; the next
//! scripted/random [`Fault`](crate::fault::Fault); token validation (empty / unparseable / expired → 400
//! with the agent's texts; wrong audience → 400 `InvalidTokenException`); association
//! lookup (none → 404 `ResourceNotFoundException`); credential minting (see
//! [`Minter`](crate::creds::Minter)). Errors are `text/plain` with a trailing newline, upstream-style ones
//! shaped `[<requestId>]: (<Code>): <message>, fault: client|server`.
//!
//! The code is split by concern: `protocol` (the real agent's path, addresses and
//! error texts, copied on purpose — see the crate docs), `rate_limit`, `stats`,
//! `state` (what the server tasks share), `error`, `builder` ([`FakeAgentBuilder`],
//! start-up), `fake` (the running [`FakeAgent`]) and `respond` (request handling).

mod builder;
mod error;
mod fake;
mod protocol;
mod rate_limit;
mod respond;
mod state;
mod stats;

pub use builder::FakeAgentBuilder;
pub use error::StartError;
pub use fake::FakeAgent;
pub use protocol::{
    CREDENTIALS_PATH, DEFAULT_LIFETIME, MIN_REMAINING, MSG_EMPTY, MSG_EXPIRED, MSG_PARSE,
    MSG_TOO_MANY, REAL_AGENT_HOSTS,
};
pub use rate_limit::RateLimit;
pub use state::Hook;
pub use stats::{AgentStats, RequestRecord};
