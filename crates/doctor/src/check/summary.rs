//! One-line summaries of HTTP responses for evidence: never a secret.

use super::http::Response;
use super::probe::key_id_hint;

/// The first line of `body`, trimmed, at most 128 characters.
pub(crate) fn first_line(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(128)
        .collect()
}

/// ` (first line)` of the body, or nothing when it is empty.
pub(crate) fn body_hint(r: &Response) -> String {
    let line = first_line(&r.body);
    if line.is_empty() {
        String::new()
    } else {
        format!(" ({line})")
    }
}

/// `AccessKeyId ASIA…, expires <Expiration>`: never the secret or the token.
pub(crate) fn credentials_summary(r: &Response) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
        return "a body that is not a credentials document".into();
    };
    let get = |keys: &[&str]| -> Option<String> {
        let obj = v.as_object()?;
        obj.iter()
            .find(|(k, _)| keys.iter().any(|want| k.eq_ignore_ascii_case(want)))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    };
    let key = get(&["AccessKeyId"])
        .map(|k| format!("AccessKeyId {}", key_id_hint(&k)))
        .unwrap_or_else(|| "no AccessKeyId".into());
    match get(&["Expiration", "ExpiresAt"]) {
        Some(exp) => format!("{key}, expires {exp}"),
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_summarised_without_secrets() {
        let r = Response {
            status: 200,
            headers: vec![],
            body: r#"{"Code":"Success","AccessKeyId":"ASIAEXAMPLEKEY","SecretAccessKey":"s3cr3t","Token":"tok","Expiration":"2026-11-27T10:00:00Z"}"#.into(),
        };
        let s = credentials_summary(&r);
        assert_eq!(s, "AccessKeyId ASIA…, expires 2026-11-27T10:00:00Z");
    }
}
