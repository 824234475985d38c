//! The IMDS probe: one per address family, every outcome told apart.

use eks_pod_identity_provider::protocol::{
    IMDS_ROLE_PATH, IMDS_TOKEN_HEADER, IMDS_TOKEN_PATH, IMDS_TOKEN_TTL_HEADER, IMDS_TOKEN_TTL_SECS,
};
use tokio::time::Instant;
use url::Url;

use super::http::{self, ConnectFailure, HttpError, Response, Target};
use super::probe::{key_id_hint, Probe};
use crate::report::{Finding, Location, ProbeStatus, Severity};
use crate::rules::{self, Rule};

/// What an IMDS probe found.
pub(crate) struct ImdsObservation {
    pub probe: Probe,
    /// The role name, when it could be read (IMDSv2 or IMDSv1).
    pub role: Option<String>,
}

/// The endpoint as shown in reports: scheme, host and port, no trailing slash.
pub(crate) fn display(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

pub(crate) async fn probe(
    name: &'static str,
    url: &Url,
    connect_timeout: std::time::Duration,
    deadline: Instant,
) -> ImdsObservation {
    let shown = display(url);
    let loc = || Location::probe(name, Some(shown.clone()));
    let mut p = Probe::new(name, Some(shown.clone()));
    let target = match Target::from_url(url).await {
        Ok(t) => t,
        Err(e) => {
            p.finding(Finding::new(&rules::IMDS_UNEXPECTED, e.to_string(), loc()));
            p.outcome("unexpected", ProbeStatus::Unknown, e.to_string());
            return ImdsObservation {
                probe: p,
                role: None,
            };
        }
    };
    let ttl_secs = IMDS_TOKEN_TTL_SECS.to_string();
    let ttl = [(IMDS_TOKEN_TTL_HEADER, ttl_secs.as_str())];
    let base = url.path().trim_end_matches('/').to_owned();
    let token_path = format!("{base}{IMDS_TOKEN_PATH}");
    let list_path = format!("{base}{IMDS_ROLE_PATH}");
    // IMDSv1 (the role list, then the credentials, without a token) runs
    // alongside the token PUT: a PUT that hangs must not starve it.
    let v1_probe = async {
        let list = http::request(&target, "GET", &list_path, &[], connect_timeout, deadline).await;
        let creds = match &list {
            Ok(r) if r.status == 200 => {
                let path = format!("{list_path}{}", first_line(&r.body));
                http::request(&target, "GET", &path, &[], connect_timeout, deadline)
                    .await
                    .ok()
            }
            _ => None,
        };
        (list, creds)
    };
    let (v2, (v1, v1_creds)) = tokio::join!(
        http::request(&target, "PUT", &token_path, &ttl, connect_timeout, deadline),
        v1_probe,
    );

    let mut role = None;
    match v2 {
        Err(HttpError::Connect(failure)) => {
            let (rule, outcome, status, evidence) = connect_outcome(&failure, connect_timeout);
            p.finding(Finding::new(rule, evidence.clone(), loc()));
            p.outcome(outcome, status, evidence);
        }
        Err(HttpError::NoAnswer) => {
            p.finding(Finding::new(
                &rules::IMDS_TOKEN_PUT_UNANSWERED,
                format!("TCP connect succeeded; PUT {IMDS_TOKEN_PATH} got no answer before the deadline"),
                loc(),
            ));
            p.outcome(
                "token_put_unanswered",
                ProbeStatus::Protected,
                "connected, token PUT unanswered (hop limit 1)",
            );
        }
        Err(e) => {
            p.finding(Finding::new(
                &rules::IMDS_UNEXPECTED,
                format!("PUT {IMDS_TOKEN_PATH}: {e}"),
                loc(),
            ));
            p.outcome("unexpected", ProbeStatus::Unknown, e.to_string());
        }
        Ok(r) if r.status == 403 => {
            p.finding(Finding::new(
                &rules::IMDS_DISABLED,
                format!("PUT {IMDS_TOKEN_PATH} -> 403"),
                loc(),
            ));
            p.outcome(
                "disabled",
                ProbeStatus::Protected,
                "token PUT 403 (disabled)",
            );
        }
        Ok(r) if r.status == 200 && !r.body.trim().is_empty() => {
            let token = r.body.trim().to_owned();
            let ttl = r.header(IMDS_TOKEN_TTL_HEADER).unwrap_or("none");
            let token_finding = p.finding(Finding::new(
                &rules::IMDS_TOKEN_OBTAINED,
                format!("PUT {IMDS_TOKEN_PATH} -> 200 (TTL header {ttl})"),
                loc(),
            ));
            p.outcome("token_obtained", ProbeStatus::Leak, "IMDSv2 token obtained");
            let headers = [(IMDS_TOKEN_HEADER, token.as_str())];
            match http::request(
                &target,
                "GET",
                &list_path,
                &headers,
                connect_timeout,
                deadline,
            )
            .await
            {
                Ok(r) if r.status == 200 => {
                    let name = first_line(&r.body);
                    p.finding(Finding::new(
                        &rules::IMDS_ROLE_READABLE,
                        format!("GET {IMDS_ROLE_PATH} -> role {name}"),
                        loc(),
                    ));
                    p.outcome("role_readable", ProbeStatus::Leak, format!("role {name}"));
                    let path = format!("{list_path}{name}");
                    match http::request(&target, "GET", &path, &headers, connect_timeout, deadline)
                        .await
                    {
                        Ok(r) if r.status == 200 => {
                            let summary = credentials_summary(&r);
                            p.finding(Finding::new(
                                &rules::IMDS_CREDENTIALS_READABLE,
                                format!("role {name}: {summary}"),
                                loc(),
                            ));
                            p.outcome(
                                "credentials_readable",
                                ProbeStatus::Leak,
                                format!("credentials readable ({summary})"),
                            );
                        }
                        other => unexpected(&mut p, loc(), "GET credentials", other),
                    }
                    role = Some(name);
                }
                Ok(r) if r.status == 404 => {
                    p.finding(Finding::new(
                        &rules::IMDS_NO_INSTANCE_PROFILE,
                        format!("GET {IMDS_ROLE_PATH} -> 404"),
                        loc(),
                    ));
                    p.outcome(
                        "no_instance_profile",
                        ProbeStatus::Leak,
                        "no instance profile (404)",
                    );
                    // Reachable, but there is no role to take today.
                    p.findings[token_finding].severity = Severity::Medium;
                }
                other => unexpected(&mut p, loc(), "GET role list", other),
            }
        }
        Ok(r) => {
            p.finding(Finding::new(
                &rules::IMDS_UNEXPECTED,
                format!("PUT {IMDS_TOKEN_PATH} -> {}{}", r.status, body_hint(&r)),
                loc(),
            ));
            p.outcome(
                "unexpected",
                ProbeStatus::Unknown,
                format!("token PUT {}", r.status),
            );
        }
    }

    // IMDSv1: the same role list without a token.
    match v1 {
        Ok(r) if r.status == 200 => {
            let name = first_line(&r.body);
            let creds = match v1_creds {
                Some(c) if c.status == 200 => {
                    format!("; credentials readable ({})", credentials_summary(&c))
                }
                _ => String::new(),
            };
            p.finding(Finding::new(
                &rules::IMDS_V1_OPEN,
                format!("GET {IMDS_ROLE_PATH} without a token -> 200, role {name}{creds}"),
                loc(),
            ));
            p.outcome(
                "imdsv1_open",
                ProbeStatus::Leak,
                format!("IMDSv1 open (role {name})"),
            );
            role.get_or_insert(name);
        }
        Ok(r) if r.status == 404 => {
            p.finding(
                Finding::new(
                    &rules::IMDS_V1_OPEN,
                    format!("GET {IMDS_ROLE_PATH} without a token -> 404 (no instance profile) instead of 401"),
                    loc(),
                )
                .with_severity(Severity::Medium),
            );
            p.outcome("imdsv1_open", ProbeStatus::Leak, "IMDSv1 open (no role)");
        }
        Ok(r) if r.status == 401 => p.note("imdsv1_closed"),
        _ => {}
    }
    ImdsObservation { probe: p, role }
}

/// The rule, outcome name, status and evidence of a failed TCP connect.
pub(crate) fn connect_outcome(
    failure: &ConnectFailure,
    connect_timeout: std::time::Duration,
) -> (&'static Rule, &'static str, ProbeStatus, String) {
    match failure {
        ConnectFailure::Refused => (
            &rules::IMDS_CONNECT_REFUSED,
            "connect_refused",
            ProbeStatus::Protected,
            "TCP connect: connection refused (REJECT)".into(),
        ),
        ConnectFailure::Unreachable(e) => (
            &rules::IMDS_CONNECT_UNREACHABLE,
            "connect_unreachable",
            ProbeStatus::Protected,
            format!("TCP connect: {e}"),
        ),
        ConnectFailure::Timeout => (
            &rules::IMDS_CONNECT_TIMEOUT,
            "connect_timeout",
            ProbeStatus::Protected,
            format!(
                "TCP connect: no answer to the SYN within {} ms (dropped)",
                connect_timeout.as_millis()
            ),
        ),
        ConnectFailure::Other(e) => (
            &rules::IMDS_UNEXPECTED,
            "unexpected",
            ProbeStatus::Unknown,
            format!("TCP connect: {e}"),
        ),
    }
}

fn unexpected(p: &mut Probe, loc: Location, what: &str, got: Result<Response, HttpError>) {
    let text = match got {
        Ok(r) => format!("{what} -> {}{}", r.status, body_hint(&r)),
        Err(e) => format!("{what}: {e}"),
    };
    p.finding(Finding::new(&rules::IMDS_UNEXPECTED, text.clone(), loc));
    p.outcome("unexpected", ProbeStatus::Unknown, text);
}

fn first_line(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(128)
        .collect()
}

fn body_hint(r: &Response) -> String {
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
    use std::time::Duration;

    // DROP (SYN timeout) and ICMP-prohibited cannot be produced on loopback:
    // the emulated EKS node (testkit netns, `ip rule ... blackhole|prohibit`)
    // exercises them on real packets. Here: the mapping from the connect error.
    #[test]
    fn connect_failures_map_to_distinct_rules() {
        let t = Duration::from_millis(1000);
        let (rule, outcome, status, evidence) = connect_outcome(&ConnectFailure::Timeout, t);
        assert_eq!(rule.id, "EPI-IMDS-012");
        assert_eq!(outcome, "connect_timeout");
        assert_eq!(status, ProbeStatus::Protected);
        assert!(evidence.contains("1000 ms"), "{evidence}");

        let (rule, outcome, ..) = connect_outcome(
            &ConnectFailure::Unreachable("No route to host (os error 113)".into()),
            t,
        );
        assert_eq!((rule.id, outcome), ("EPI-IMDS-011", "connect_unreachable"));

        let (rule, outcome, ..) = connect_outcome(&ConnectFailure::Refused, t);
        assert_eq!((rule.id, outcome), ("EPI-IMDS-010", "connect_refused"));

        let (rule, _, status, _) = connect_outcome(&ConnectFailure::Other("x".into()), t);
        assert_eq!(rule.id, "EPI-IMDS-016");
        assert_eq!(status, ProbeStatus::Unknown);
    }

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
