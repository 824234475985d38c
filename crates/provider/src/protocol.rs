//! The wire facts of the two credential endpoints, in one place.
//!
//! Addresses, paths, header names and size caps that the Pod Identity Agent
//! and the EC2 instance metadata service (IMDSv2) define. The provider uses
//! them; tools such as `pod-identity-doctor` import them from here instead of
//! keeping copies. (The test fakes in `eks-pod-identity-testkit` keep their own
//! copies on purpose and are cross-checked against these.)
//!
//! ```
//! use eks_pod_identity_provider::protocol;
//!
//! assert_eq!(protocol::POD_IDENTITY_AGENT_V4.to_string(), "169.254.170.23");
//! assert_eq!(protocol::IMDS_TOKEN_PATH, "/latest/api/token");
//! ```

pub use crate::config::{
    ECS_HOST, IMDS_IPV4 as IMDS_ENDPOINT_V4, IMDS_IPV6 as IMDS_ENDPOINT_V6, POD_IDENTITY_AGENT_V4,
    POD_IDENTITY_AGENT_V6,
};
pub use crate::source::imds::{
    IMDS_ROLE_PATH, IMDS_TOKEN_HEADER, IMDS_TOKEN_PATH, IMDS_TOKEN_TTL_HEADER, IMDS_TOKEN_TTL_SECS,
};
pub use crate::source::token::MAX_TOKEN_BYTES;
pub use crate::support::http::MAX_BODY_BYTES;

/// Timestamps on the wire: RFC 3339 as the agent writes `Expiration` (Go's
/// `time.RFC3339Nano`: UTC, 0–9 fractional digits, trailing zeros trimmed).
/// [`parse`](rfc3339::parse) accepts any RFC 3339 timestamp with an explicit
/// zone and refuses one without.
///
/// ```
/// use eks_pod_identity_provider::protocol::rfc3339;
/// use std::time::{Duration, SystemTime};
///
/// let t = SystemTime::UNIX_EPOCH + Duration::from_millis(60_500);
/// assert_eq!(rfc3339::format(t), "1970-01-01T00:01:00.5Z");
/// assert_eq!(rfc3339::parse("1970-01-01T00:01:00.5Z"), Some(t));
/// assert_eq!(rfc3339::parse("1970-01-01T00:01:00"), None);
/// ```
pub mod rfc3339 {
    pub use crate::support::rfc3339::{format, parse};
}
