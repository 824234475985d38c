//! Timestamp formats used by the agent and IMDS.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

fn utc(t: SystemTime) -> OffsetDateTime {
    let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats `t` like Go's `time.RFC3339Nano` in UTC: `2026-11-27T10:00:00Z`,
/// `2026-11-27T10:00:00.5Z`, `2026-11-27T10:00:00.123456789Z` (0–9 fractional
/// digits, trailing zeros trimmed). This is what the Pod Identity Agent sends.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = utc(t);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    );
    let nanos = d.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Formats `t` as IMDS does: `YYYY-MM-DDTHH:MM:SSZ` (seconds precision, UTC).
pub fn imds(t: SystemTime) -> String {
    let d = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_773_600); // 2026-11-27T10:00:00Z
        assert_eq!(rfc3339_nano(base), "2026-11-27T10:00:00Z");
        assert_eq!(
            rfc3339_nano(base + Duration::from_millis(500)),
            "2026-11-27T10:00:00.5Z"
        );
        assert_eq!(
            rfc3339_nano(base + Duration::from_nanos(123_456_789)),
            "2026-11-27T10:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(base + Duration::from_nanos(120_000)),
            "2026-11-27T10:00:00.00012Z"
        );
        assert_eq!(
            imds(base + Duration::from_millis(999)),
            "2026-11-27T10:00:00Z"
        );
    }
}
