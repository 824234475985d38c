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

use std::net::{Ipv4Addr, Ipv6Addr};

/// The EKS Pod Identity Agent's IPv4 address.
pub const POD_IDENTITY_AGENT_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The EKS Pod Identity Agent's IPv6 address (`fd00:ec2::23`).
pub const POD_IDENTITY_AGENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
/// The ECS credentials endpoint host used with a relative URI.
pub const ECS_HOST: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);

/// The default IPv4 IMDS endpoint.
pub const IMDS_ENDPOINT_V4: &str = "http://169.254.169.254";
/// The default IPv6 IMDS endpoint.
pub const IMDS_ENDPOINT_V6: &str = "http://[fd00:ec2::254]";
/// `PUT` here (with [`IMDS_TOKEN_TTL_HEADER`]) for an IMDSv2 session token.
pub const IMDS_TOKEN_PATH: &str = "/latest/api/token";
/// `GET` lists the instance role; `GET` + role name gives its credentials.
pub const IMDS_ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
/// Request header of the token `PUT`: the lifetime asked for, in seconds.
pub const IMDS_TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Request header carrying the session token on every IMDSv2 `GET`.
pub const IMDS_TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Session-token lifetime the provider asks for: the maximum IMDS grants (6 h).
pub const IMDS_TOKEN_TTL_SECS: u64 = 21_600;

/// Response bodies (agent and IMDS) larger than this are refused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Authorization tokens larger than this are refused (a projected JWT is
/// ~1 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

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
