//! RFC 3339 timestamps as the agent and IMDS send them.
//!
//! The agent formats `Expiration` with Go's `time.RFC3339Nano`: UTC, 0–9
//! fractional digits with trailing zeros trimmed. We accept any RFC 3339
//! timestamp with an explicit offset (the `time` crate's strict parser) and
//! reject timestamps without a zone: guessing a zone for an expiry is how
//! credentials get used past their end.

use std::time::SystemTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parses an RFC 3339 timestamp with an explicit zone (`Z` or `±hh:mm`).
///
/// ```
/// use eks_pod_identity_provider::protocol::rfc3339;
/// use std::time::{Duration, SystemTime};
///
/// let t = rfc3339::parse("1970-01-01T00:01:00.5Z").unwrap();
/// assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_millis(60_500));
/// assert!(rfc3339::parse("1970-01-01T00:01:00").is_none());
/// ```
pub fn parse(value: &str) -> Option<SystemTime> {
    let odt = OffsetDateTime::parse(value.trim(), &Rfc3339).ok()?;
    Some(SystemTime::from(odt))
}

/// Formats a time as RFC 3339 UTC with Go's `RFC3339Nano` trimming
/// (`2026-11-27T10:00:00Z`, `2026-11-27T10:00:00.5Z`).
pub fn format(t: SystemTime) -> String {
    let odt = OffsetDateTime::from(t);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        odt.year(),
        u8::from(odt.month()),
        odt.day(),
        odt.hour(),
        odt.minute(),
        odt.second()
    );
    let nanos = odt.nanosecond();
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn accepts_zero_to_nine_fractional_digits() {
        let base = parse("2026-11-27T10:00:00Z").unwrap();
        for digits in 1..=9 {
            let s = format!("2026-11-27T10:00:00.{}Z", "1".repeat(digits));
            let t = parse(&s).unwrap_or_else(|| panic!("{s} should parse"));
            assert!(t > base && t < base + Duration::from_millis(112), "{s}");
        }
    }

    #[test]
    fn honours_offsets() {
        assert_eq!(
            parse("2026-11-27T12:00:00+02:00"),
            parse("2026-11-27T10:00:00Z")
        );
        assert_eq!(
            parse("2026-11-27T05:30:00-04:30"),
            parse("2026-11-27T10:00:00Z")
        );
    }

    #[test]
    fn rejects_missing_zone_and_garbage() {
        for bad in [
            "2026-11-27T10:00:00",
            "2026-11-27 10:00:00",
            "",
            "tomorrow",
            "2026-13-27T10:00:00Z",
            "1732701600",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn format_trims_like_go_rfc3339nano() {
        let t = parse("2026-11-27T10:00:00Z").unwrap();
        assert_eq!(format(t), "2026-11-27T10:00:00Z");
        assert_eq!(
            format(t + Duration::from_millis(120)),
            "2026-11-27T10:00:00.12Z"
        );
        assert_eq!(
            format(t + Duration::from_nanos(123_456_789)),
            "2026-11-27T10:00:00.123456789Z"
        );
        assert_eq!(
            parse(&format(t + Duration::from_nanos(7))),
            Some(t + Duration::from_nanos(7))
        );
    }
}
