//! The credentials documents the fake agent and IMDS serve, and the
//! instant every case starts at.

use super::*;

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn agent_doc(n: usize, expiration: &str) -> String {
    serde_json::json!({
        "AccessKeyId": format!("ASIAMATRIX{n:08}"),
        "SecretAccessKey": SECRET,
        "Token": SESSION,
        "AccountId": "123456789012",
        "Expiration": expiration,
    })
    .to_string()
}

pub(crate) fn fmt(t: SystemTime) -> String {
    eks_pod_identity_provider::protocol::rfc3339::format(t)
}

/// `t` in RFC 3339 with the given UTC offset in minutes (independent of
/// the provider's formatter).
pub(crate) fn with_offset(t: SystemTime, minutes: i32) -> String {
    let odt = time::OffsetDateTime::from(t)
        .to_offset(time::UtcOffset::from_whole_seconds(minutes * 60).unwrap());
    odt.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A body with every required field present except `drop`, or with
/// `replace` overriding one field's JSON value.
pub(crate) fn doc_with(
    n: usize,
    exp: SystemTime,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&agent_doc(n, &fmt(exp))).unwrap();
    edit(&mut v);
    v.to_string()
}
