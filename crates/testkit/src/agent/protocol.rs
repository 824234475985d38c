//! What the fake copies from the real Pod Identity Agent: its path, its listen
//! addresses (as `Host` values), its lifetimes and its error texts. Kept here on
//! purpose rather than imported from the provider (see the crate docs).

use std::time::Duration;

/// The path the agent serves.
pub const CREDENTIALS_PATH: &str = "/v1/credentials";

/// The `Host` values the real agent accepts (its two listen addresses, port 80).
pub const REAL_AGENT_HOSTS: [&str; 2] = ["169.254.170.23", "[fd00:ec2::23]"];

/// Default credential lifetime handed out by the fake (1 h).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The agent never hands out credentials with this little (or less) left.
pub const MIN_REMAINING: Duration = Duration::from_secs(15);

/// Error text: no token.
pub const MSG_EMPTY: &str = "Service account token cannot be empty";
/// Error text: token not decodable.
pub const MSG_PARSE: &str = "Service account token cannot be parsed";
/// Error text: token expired.
pub const MSG_EXPIRED: &str =
    "Service account token failed basic claim validations: token is expired";
/// Error text: too many requests.
pub const MSG_TOO_MANY: &str = "Too Many Requests";
