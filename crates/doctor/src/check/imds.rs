//! The IMDS probe: one per address family, every outcome told apart.
//!
//! [`exchange`] does the I/O (the token PUT, and the role list and
//! credentials with and without a token); [`classify`] turns what came back
//! into [`ImdsOutcome`]s, and the outcome alone decides rule and status.

use std::time::Duration;

use eks_pod_identity_provider::protocol::{
    IMDS_ROLE_PATH, IMDS_TOKEN_HEADER, IMDS_TOKEN_PATH, IMDS_TOKEN_TTL_HEADER, IMDS_TOKEN_TTL_SECS,
};
use tokio::time::Instant;
use url::Url;

use super::http::{self, ConnectFailure, HttpError, Response, Target};
use super::probe::{Observation, Outcome, Probe};
use super::summary::{body_hint, credentials_summary, first_line};
use crate::report::{ProbeStatus, Severity};
use crate::rules::{self, Rule};

/// What an IMDS probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImdsOutcome {
    /// The TCP connect was refused (a REJECT rule, or nothing listening).
    Refused,
    /// The TCP connect failed with ICMP unreachable / prohibited.
    Unreachable,
    /// No answer to the SYN within the connect timeout (a DROP rule).
    Dropped,
    /// Connected, but the token PUT got no answer (hop limit 1).
    TokenPutUnanswered,
    /// The token PUT returned 403 (IMDS disabled for this instance).
    Disabled,
    /// The token PUT returned a token.
    TokenObtained,
    /// The role list, read with the token, names a role.
    RoleReadable,
    /// The role's credentials, read with the token.
    CredentialsReadable,
    /// The role list, read with the token, is 404: no instance profile.
    NoInstanceProfile,
    /// The role list answers without a token (IMDSv1).
    V1Open,
    /// The role list without a token is refused with 401.
    V1Closed,
    /// Anything else (a resolution error, an unexpected status or I/O error).
    Unexpected,
    /// The probe did not finish within the check's budget.
    TimedOut,
    /// The probe was switched off (`--no-ipv6`).
    Skipped,
}

impl Outcome for ImdsOutcome {
    fn name(self) -> &'static str {
        match self {
            ImdsOutcome::Refused => "connect_refused",
            ImdsOutcome::Unreachable => "connect_unreachable",
            ImdsOutcome::Dropped => "connect_timeout",
            ImdsOutcome::TokenPutUnanswered => "token_put_unanswered",
            ImdsOutcome::Disabled => "disabled",
            ImdsOutcome::TokenObtained => "token_obtained",
            ImdsOutcome::RoleReadable => "role_readable",
            ImdsOutcome::CredentialsReadable => "credentials_readable",
            ImdsOutcome::NoInstanceProfile => "no_instance_profile",
            ImdsOutcome::V1Open => "imdsv1_open",
            ImdsOutcome::V1Closed => "imdsv1_closed",
            ImdsOutcome::Unexpected => "unexpected",
            ImdsOutcome::TimedOut => "timeout",
            ImdsOutcome::Skipped => "skipped",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        Some(match self {
            ImdsOutcome::Refused => &rules::IMDS_CONNECT_REFUSED,
            ImdsOutcome::Unreachable => &rules::IMDS_CONNECT_UNREACHABLE,
            ImdsOutcome::Dropped => &rules::IMDS_CONNECT_TIMEOUT,
            ImdsOutcome::TokenPutUnanswered => &rules::IMDS_TOKEN_PUT_UNANSWERED,
            ImdsOutcome::Disabled => &rules::IMDS_DISABLED,
            ImdsOutcome::TokenObtained => &rules::IMDS_TOKEN_OBTAINED,
            ImdsOutcome::RoleReadable => &rules::IMDS_ROLE_READABLE,
            ImdsOutcome::CredentialsReadable => &rules::IMDS_CREDENTIALS_READABLE,
            ImdsOutcome::NoInstanceProfile => &rules::IMDS_NO_INSTANCE_PROFILE,
            ImdsOutcome::V1Open => &rules::IMDS_V1_OPEN,
            // Exposure unknown, and said so, so the report does not read as clean.
            ImdsOutcome::Unexpected | ImdsOutcome::TimedOut => &rules::IMDS_UNEXPECTED,
            ImdsOutcome::V1Closed | ImdsOutcome::Skipped => return None,
        })
    }

    fn status(self) -> ProbeStatus {
        match self {
            ImdsOutcome::Refused
            | ImdsOutcome::Unreachable
            | ImdsOutcome::Dropped
            | ImdsOutcome::TokenPutUnanswered
            | ImdsOutcome::Disabled
            | ImdsOutcome::V1Closed => ProbeStatus::Protected,
            ImdsOutcome::TokenObtained
            | ImdsOutcome::RoleReadable
            | ImdsOutcome::CredentialsReadable
            | ImdsOutcome::NoInstanceProfile
            | ImdsOutcome::V1Open => ProbeStatus::Leak,
            ImdsOutcome::Unexpected | ImdsOutcome::TimedOut => ProbeStatus::Unknown,
            ImdsOutcome::Skipped => ProbeStatus::Skipped,
        }
    }
}

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

/// The role list and, when it names a role, that role's credentials.
#[derive(Debug)]
pub(crate) struct RoleReads {
    /// `GET` of the role list.
    pub role_list: Result<Response, HttpError>,
    /// `GET` of the credentials of the role the list names (sent only when it names one).
    pub credentials: Option<Result<Response, HttpError>>,
}

/// Everything an IMDS probe sent and got back.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The token `PUT`.
    pub token_put: Result<Response, HttpError>,
    /// With the token (sent only when the PUT returned one).
    pub with_token: Option<RoleReads>,
    /// Without a token (IMDSv1).
    pub without_token: RoleReads,
}

/// Probes IMDS at `url`: the I/O, then [`classify`].
pub(crate) async fn probe(
    name: &'static str,
    url: &Url,
    connect_timeout: Duration,
    deadline: Instant,
) -> ImdsObservation {
    let exchanged = match Target::from_url(url).await {
        Ok(target) => Ok(exchange(&target, url, connect_timeout, deadline).await),
        Err(e) => Err(e),
    };
    let classified = classify(&exchanged, connect_timeout);
    let mut probe = Probe::new(name, Some(display(url)));
    probe.record_all(classified.observations);
    ImdsObservation {
        probe,
        role: classified.role,
    }
}

/// The token `PUT`, and the role list and credentials with the token (when
/// the PUT returned one) and without (IMDSv1).
pub(crate) async fn exchange(
    target: &Target,
    url: &Url,
    connect_timeout: Duration,
    deadline: Instant,
) -> Exchange {
    let ttl_secs = IMDS_TOKEN_TTL_SECS.to_string();
    let ttl = [(IMDS_TOKEN_TTL_HEADER, ttl_secs.as_str())];
    let base = url.path().trim_end_matches('/').to_owned();
    let token_path = format!("{base}{IMDS_TOKEN_PATH}");
    let list_path = format!("{base}{IMDS_ROLE_PATH}");
    let reads = |headers: Vec<(&'static str, String)>| {
        let list_path = list_path.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let role_list = http::request(
                target,
                "GET",
                &list_path,
                &headers,
                connect_timeout,
                deadline,
            )
            .await;
            let credentials = match role_named(&role_list) {
                Some(role) => {
                    let path = format!("{list_path}{role}");
                    Some(
                        http::request(target, "GET", &path, &headers, connect_timeout, deadline)
                            .await,
                    )
                }
                None => None,
            };
            RoleReads {
                role_list,
                credentials,
            }
        }
    };
    // IMDSv1 runs alongside the token PUT: a PUT that hangs must not starve it.
    let (token_put, without_token) = tokio::join!(
        http::request(target, "PUT", &token_path, &ttl, connect_timeout, deadline),
        reads(Vec::new()),
    );
    let with_token = match token_of(&token_put) {
        Some(token) => Some(reads(vec![(IMDS_TOKEN_HEADER, token.to_owned())]).await),
        None => None,
    };
    Exchange {
        token_put,
        with_token,
        without_token,
    }
}

/// The token a PUT returned (200 with a non-empty body).
fn token_of(put: &Result<Response, HttpError>) -> Option<&str> {
    match put {
        Ok(r) if r.status == 200 && !r.body.trim().is_empty() => Some(r.body.trim()),
        _ => None,
    }
}

/// The role a role list names (200: its first line).
fn role_named(list: &Result<Response, HttpError>) -> Option<String> {
    match list {
        Ok(r) if r.status == 200 => Some(first_line(&r.body)),
        _ => None,
    }
}

/// The observations of one IMDS probe, in order, and the role it read.
#[derive(Debug)]
pub(crate) struct Classified {
    pub observations: Vec<Observation<ImdsOutcome>>,
    pub role: Option<String>,
}

/// What an exchange (or the failure to resolve the endpoint) means: the
/// token PUT (and what the token read), then IMDSv1. Pure.
pub(crate) fn classify(
    exchanged: &Result<Exchange, HttpError>,
    connect_timeout: Duration,
) -> Classified {
    let ex = match exchanged {
        Ok(ex) => ex,
        Err(e) => {
            return Classified {
                observations: vec![Observation::same(ImdsOutcome::Unexpected, e.to_string())],
                role: None,
            }
        }
    };
    let (mut observations, mut role) = classify_token_put(ex, connect_timeout);
    if let Some((seen, v1_role)) = classify_without_token(&ex.without_token) {
        observations.push(seen);
        role = role.or(v1_role);
    }
    Classified { observations, role }
}

/// The token PUT and, when it returned a token, what the token read.
fn classify_token_put(
    ex: &Exchange,
    connect_timeout: Duration,
) -> (Vec<Observation<ImdsOutcome>>, Option<String>) {
    let one = |seen| (vec![seen], None);
    match &ex.token_put {
        Err(HttpError::Connect(failure)) => one(connect_outcome(failure, connect_timeout)),
        Err(HttpError::NoAnswer) => one(Observation::new(
            ImdsOutcome::TokenPutUnanswered,
            format!(
                "TCP connect succeeded; PUT {IMDS_TOKEN_PATH} got no answer before the deadline"
            ),
            "connected, token PUT unanswered (hop limit 1)",
        )),
        Err(e) => one(Observation::new(
            ImdsOutcome::Unexpected,
            format!("PUT {IMDS_TOKEN_PATH}: {e}"),
            e.to_string(),
        )),
        Ok(r) if r.status == 403 => one(Observation::new(
            ImdsOutcome::Disabled,
            format!("PUT {IMDS_TOKEN_PATH} -> 403"),
            "token PUT 403 (disabled)",
        )),
        Ok(r) if token_of(&ex.token_put).is_some() => {
            let ttl = r.header(IMDS_TOKEN_TTL_HEADER).unwrap_or("none");
            let mut token = Observation::new(
                ImdsOutcome::TokenObtained,
                format!("PUT {IMDS_TOKEN_PATH} -> 200 (TTL header {ttl})"),
                "IMDSv2 token obtained",
            );
            let (after, role) = match &ex.with_token {
                Some(reads) => classify_with_token(reads),
                None => (Vec::new(), None),
            };
            if after
                .iter()
                .any(|o| o.outcome == ImdsOutcome::NoInstanceProfile)
            {
                // Reachable, but there is no role to take today.
                token = token.with_severity(Severity::Medium);
            }
            (std::iter::once(token).chain(after).collect(), role)
        }
        Ok(r) => one(Observation::new(
            ImdsOutcome::Unexpected,
            format!("PUT {IMDS_TOKEN_PATH} -> {}{}", r.status, body_hint(r)),
            format!("token PUT {}", r.status),
        )),
    }
}

/// The role list and credentials read with a token.
fn classify_with_token(reads: &RoleReads) -> (Vec<Observation<ImdsOutcome>>, Option<String>) {
    match &reads.role_list {
        Ok(r) if r.status == 200 => {
            let name = first_line(&r.body);
            let mut seen = vec![Observation::new(
                ImdsOutcome::RoleReadable,
                format!("GET {IMDS_ROLE_PATH} -> role {name}"),
                format!("role {name}"),
            )];
            match &reads.credentials {
                Some(Ok(c)) if c.status == 200 => {
                    let summary = credentials_summary(c);
                    seen.push(Observation::new(
                        ImdsOutcome::CredentialsReadable,
                        format!("role {name}: {summary}"),
                        format!("credentials readable ({summary})"),
                    ));
                }
                Some(other) => seen.push(unexpected("GET credentials", other)),
                None => {}
            }
            (seen, Some(name))
        }
        Ok(r) if r.status == 404 => (
            vec![Observation::new(
                ImdsOutcome::NoInstanceProfile,
                format!("GET {IMDS_ROLE_PATH} -> 404"),
                "no instance profile (404)",
            )],
            None,
        ),
        other => (vec![unexpected("GET role list", other)], None),
    }
}

/// IMDSv1: the role list without a token (nothing to say when it failed
/// otherwise: the token PUT already says why).
fn classify_without_token(v1: &RoleReads) -> Option<(Observation<ImdsOutcome>, Option<String>)> {
    match &v1.role_list {
        Ok(r) if r.status == 200 => {
            let name = first_line(&r.body);
            let creds = match &v1.credentials {
                Some(Ok(c)) if c.status == 200 => {
                    format!("; credentials readable ({})", credentials_summary(c))
                }
                _ => String::new(),
            };
            let seen = Observation::new(
                ImdsOutcome::V1Open,
                format!("GET {IMDS_ROLE_PATH} without a token -> 200, role {name}{creds}"),
                format!("IMDSv1 open (role {name})"),
            );
            Some((seen, Some(name)))
        }
        Ok(r) if r.status == 404 => Some((
            Observation::new(
                ImdsOutcome::V1Open,
                format!("GET {IMDS_ROLE_PATH} without a token -> 404 (no instance profile) instead of 401"),
                "IMDSv1 open (no role)",
            )
            .with_severity(Severity::Medium),
            None,
        )),
        Ok(r) if r.status == 401 => Some((Observation::new(ImdsOutcome::V1Closed, "", ""), None)),
        _ => None,
    }
}

/// The outcome and evidence of a failed TCP connect.
pub(crate) fn connect_outcome(
    failure: &ConnectFailure,
    connect_timeout: Duration,
) -> Observation<ImdsOutcome> {
    match failure {
        ConnectFailure::Refused => Observation::same(
            ImdsOutcome::Refused,
            "TCP connect: connection refused (REJECT)",
        ),
        ConnectFailure::Unreachable(e) => {
            Observation::same(ImdsOutcome::Unreachable, format!("TCP connect: {e}"))
        }
        ConnectFailure::Timeout => Observation::same(
            ImdsOutcome::Dropped,
            format!(
                "TCP connect: no answer to the SYN within {} ms (dropped)",
                connect_timeout.as_millis()
            ),
        ),
        ConnectFailure::Other(e) => {
            Observation::same(ImdsOutcome::Unexpected, format!("TCP connect: {e}"))
        }
    }
}

fn unexpected(what: &str, got: &Result<Response, HttpError>) -> Observation<ImdsOutcome> {
    let text = match got {
        Ok(r) => format!("{what} -> {}{}", r.status, body_hint(r)),
        Err(e) => format!("{what}: {e}"),
    };
    Observation::same(ImdsOutcome::Unexpected, text)
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
        let obs = connect_outcome(&ConnectFailure::Timeout, t);
        assert_eq!(obs.outcome.rule().unwrap().id, "EPI-IMDS-012");
        assert_eq!(obs.outcome.name(), "connect_timeout");
        assert_eq!(obs.outcome.status(), ProbeStatus::Protected);
        assert!(obs.evidence.contains("1000 ms"), "{}", obs.evidence);

        let obs = connect_outcome(
            &ConnectFailure::Unreachable("No route to host (os error 113)".into()),
            t,
        );
        assert_eq!(
            (obs.outcome.rule().unwrap().id, obs.outcome.name()),
            ("EPI-IMDS-011", "connect_unreachable")
        );

        let obs = connect_outcome(&ConnectFailure::Refused, t);
        assert_eq!(
            (obs.outcome.rule().unwrap().id, obs.outcome.name()),
            ("EPI-IMDS-010", "connect_refused")
        );

        let obs = connect_outcome(&ConnectFailure::Other("x".into()), t);
        assert_eq!(obs.outcome.rule().unwrap().id, "EPI-IMDS-016");
        assert_eq!(obs.outcome.status(), ProbeStatus::Unknown);
    }

    /// Every outcome's name (the JSON string), rule and status.
    #[test]
    fn outcome_matrix() {
        use ImdsOutcome::*;
        use ProbeStatus::{Leak, Protected, Skipped as Skip, Unknown};
        let table = [
            (Refused, "connect_refused", Some("EPI-IMDS-010"), Protected),
            (
                Unreachable,
                "connect_unreachable",
                Some("EPI-IMDS-011"),
                Protected,
            ),
            (Dropped, "connect_timeout", Some("EPI-IMDS-012"), Protected),
            (
                TokenPutUnanswered,
                "token_put_unanswered",
                Some("EPI-IMDS-013"),
                Protected,
            ),
            (Disabled, "disabled", Some("EPI-IMDS-014"), Protected),
            (TokenObtained, "token_obtained", Some("EPI-IMDS-001"), Leak),
            (RoleReadable, "role_readable", Some("EPI-IMDS-002"), Leak),
            (
                CredentialsReadable,
                "credentials_readable",
                Some("EPI-IMDS-003"),
                Leak,
            ),
            (
                NoInstanceProfile,
                "no_instance_profile",
                Some("EPI-IMDS-015"),
                Leak,
            ),
            (V1Open, "imdsv1_open", Some("EPI-IMDS-004"), Leak),
            (V1Closed, "imdsv1_closed", None, Protected),
            (Unexpected, "unexpected", Some("EPI-IMDS-016"), Unknown),
            (TimedOut, "timeout", Some("EPI-IMDS-016"), Unknown),
            (Skipped, "skipped", None, Skip),
        ];
        crate::check::probe::assert_matrix(&table);
    }

    fn resp(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: vec![],
            body: body.into(),
        })
    }

    const CREDS: &str = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#;

    fn reads(
        list: Result<Response, HttpError>,
        creds: Option<Result<Response, HttpError>>,
    ) -> RoleReads {
        RoleReads {
            role_list: list,
            credentials: creds,
        }
    }

    fn v1_closed() -> RoleReads {
        reads(resp(401, ""), None)
    }

    /// (outcome names, finding rule ids with severities, role) of an exchange.
    fn judged(
        ex: Result<Exchange, HttpError>,
    ) -> (Vec<&'static str>, Vec<(String, Severity)>, Option<String>) {
        let c = classify(&ex, Duration::from_millis(1500));
        let names = c.observations.iter().map(|o| o.outcome.name()).collect();
        let mut probe = Probe::new("imds-ipv4", None);
        probe.record_all(c.observations);
        let findings = probe
            .findings
            .iter()
            .map(|f| (f.rule_id.clone(), f.severity))
            .collect();
        (names, findings, c.role)
    }

    #[test]
    fn classify_tells_every_exchange_apart() {
        let ex = |token_put, with_token, without_token| {
            Ok(Exchange {
                token_put,
                with_token,
                without_token,
            })
        };
        let high = Severity::High;
        let critical = Severity::Critical;
        let info = Severity::Info;
        let medium = Severity::Medium;
        let f = |id: &str, s: Severity| (id.to_owned(), s);

        // Blocked before HTTP: one protected outcome each.
        for (failure, name, id) in [
            (ConnectFailure::Refused, "connect_refused", "EPI-IMDS-010"),
            (
                ConnectFailure::Unreachable("x".into()),
                "connect_unreachable",
                "EPI-IMDS-011",
            ),
            (ConnectFailure::Timeout, "connect_timeout", "EPI-IMDS-012"),
        ] {
            let got = judged(ex(
                Err(HttpError::Connect(failure.clone())),
                None,
                reads(Err(HttpError::Connect(failure)), None),
            ));
            assert_eq!(got, (vec![name], vec![f(id, info)], None));
        }
        // Hop limit 1: the PUT goes unanswered, IMDSv1 is closed.
        assert_eq!(
            judged(ex(Err(HttpError::NoAnswer), None, v1_closed())),
            (
                vec!["token_put_unanswered", "imdsv1_closed"],
                vec![f("EPI-IMDS-013", info)],
                None
            )
        );
        // Disabled.
        assert_eq!(
            judged(ex(resp(403, ""), None, reads(resp(403, ""), None))),
            (vec!["disabled"], vec![f("EPI-IMDS-014", info)], None)
        );
        // Token, role and credentials: the full leak.
        let full = judged(ex(
            resp(200, "tok"),
            Some(reads(resp(200, "node-role\n"), Some(resp(200, CREDS)))),
            v1_closed(),
        ));
        assert_eq!(
            full,
            (
                vec![
                    "token_obtained",
                    "role_readable",
                    "credentials_readable",
                    "imdsv1_closed"
                ],
                vec![
                    f("EPI-IMDS-001", high),
                    f("EPI-IMDS-002", critical),
                    f("EPI-IMDS-003", critical)
                ],
                Some("node-role".to_owned())
            )
        );
        // Token but no instance profile: the token finding drops to medium.
        assert_eq!(
            judged(ex(
                resp(200, "tok"),
                Some(reads(resp(404, ""), None)),
                v1_closed()
            )),
            (
                vec!["token_obtained", "no_instance_profile", "imdsv1_closed"],
                vec![f("EPI-IMDS-001", medium), f("EPI-IMDS-015", info)],
                None
            )
        );
        // Token and role, but the credentials GET fails.
        let (names, findings, role) = judged(ex(
            resp(200, "tok"),
            Some(reads(resp(200, "r"), Some(resp(500, "boom")))),
            v1_closed(),
        ));
        assert_eq!(
            names,
            [
                "token_obtained",
                "role_readable",
                "unexpected",
                "imdsv1_closed"
            ]
        );
        assert_eq!(findings[2].0, "EPI-IMDS-016");
        assert_eq!(role.as_deref(), Some("r"));
        // Token, then the role list fails.
        let (names, ..) = judged(ex(
            resp(200, "tok"),
            Some(reads(resp(500, ""), None)),
            v1_closed(),
        ));
        assert_eq!(names, ["token_obtained", "unexpected", "imdsv1_closed"]);
        // IMDSv1 open with a role (and its credentials), IMDSv1 open without one.
        let (names, findings, role) = judged(ex(
            resp(403, ""),
            None,
            reads(resp(200, "v1-role"), Some(resp(200, CREDS))),
        ));
        assert_eq!(names, ["disabled", "imdsv1_open"]);
        assert_eq!(findings[1], f("EPI-IMDS-004", critical));
        assert_eq!(role.as_deref(), Some("v1-role"));
        let (names, findings, _) = judged(ex(resp(403, ""), None, reads(resp(404, ""), None)));
        assert_eq!(names, ["disabled", "imdsv1_open"]);
        assert_eq!(findings[1], f("EPI-IMDS-004", medium));
        // An unexpected PUT status, an I/O error, an unresolvable endpoint.
        let (names, ..) = judged(ex(resp(500, ""), None, reads(resp(500, ""), None)));
        assert_eq!(names, ["unexpected"]);
        let (names, ..) = judged(ex(Err(HttpError::Closed), None, v1_closed()));
        assert_eq!(names, ["unexpected", "imdsv1_closed"]);
        let (names, findings, _) = judged(Err(HttpError::Resolve("nope".into())));
        assert_eq!(
            (names, findings),
            (vec!["unexpected"], vec![f("EPI-IMDS-016", medium)])
        );
    }
}
