//! Pod Identity probes: env, token file or value, agent. Against the testkit's
//! FakeAgent and minted tokens, and against raw listeners answering with the
//! real agent's error texts (github.com/aws/eks-pod-identity-agent, files cited
//! at each case) and tokens shaped like real projected tokens
//! ([`real_shaped_token`]).

mod check_support;

use std::time::Duration;

use check_support::*;
use eks_pod_identity_doctor::output::json;
use eks_pod_identity_doctor::report::{ProbeStatus, Severity, Verdict};
use eks_pod_identity_testkit::token::{self, TokenBuilder};
use eks_pod_identity_testkit::{stack, FakeAgent};

const NS: &str = stack::DEFAULT_NAMESPACE;
const SA: &str = stack::DEFAULT_SERVICE_ACCOUNT;

async fn agent() -> FakeAgent {
    FakeAgent::builder()
        .association(NS, SA, stack::role_arn(stack::POD_ROLE_NAME))
        .start()
        .await
        .unwrap()
}

struct Pod {
    _dir: tempfile::TempDir,
    token_path: String,
}

fn token_file(contents: &str) -> Pod {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eks-pod-identity-token");
    std::fs::write(&path, contents).unwrap();
    Pod {
        token_path: path.display().to_string(),
        _dir: dir,
    }
}

fn pod_env<'a>(uri: &'a str, token_path: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("KUBERNETES_SERVICE_HOST", "10.100.0.1"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path),
    ]
}

async fn run_with(uri: &str, token_path: &str) -> eks_pod_identity_doctor::Report {
    let imds = closed_port();
    check(&options(&pod_env(uri, token_path), &imds)).await
}

/// Everything the report prints, human and JSON.
fn printed(report: &eks_pod_identity_doctor::Report) -> String {
    json::render(report, Severity::High)
        + &eks_pod_identity_doctor::output::human::render(report, Severity::High)
}

/// Panics if any 12-character piece of `secret` appears in `out`: a truncated
/// or partly redacted token is still a leak.
fn assert_no_piece_of(secret: &str, out: &str) {
    let b = secret.as_bytes();
    for i in 0..b.len().saturating_sub(12) {
        let piece = &secret[i..i + 12];
        assert!(
            !out.contains(piece),
            "a piece of the token ({piece}) is printed:\n{out}"
        );
    }
}

#[tokio::test]
async fn a_good_token_gets_credentials_and_is_never_printed() {
    let agent = agent().await;
    let jwt = token::mint(NS, SA);
    let pod = token_file(&format!("{jwt}\n"));
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert_eq!(ids_at(&report, "pod-identity-agent"), ["EPI-PI-010"]);
    assert!(ids_at(&report, "pod-identity-token").is_empty());
    assert!(ids_at(&report, "pod-identity-env").is_empty());
    assert_eq!(probe(&report, "pod-identity-env").outcomes, ["configured"]);
    let t = probe(&report, "pod-identity-token");
    assert_eq!(
        (t.status, t.outcomes.as_slice()),
        (ProbeStatus::Ok, &["token_valid".to_owned()][..])
    );
    assert!(
        t.detail
            .contains("system:serviceaccount:my-app-namespace:my-app-sa"),
        "{}",
        t.detail
    );
    let a = probe(&report, "pod-identity-agent");
    assert_eq!(a.status, ProbeStatus::Ok);
    assert!(a.detail.contains("AccessKeyId ASIA…"), "{}", a.detail);
    // The agent probe and the chain (identity probe) each fetch once.
    assert_eq!(agent.stats().status(200), 2);
    let out = json::render(&report, Severity::High);
    assert!(!out.contains(&jwt), "the token must never be printed");
    assert_eq!(report.verdict(Severity::High), Verdict::Protected);
}

#[tokio::test]
async fn wrong_audience_is_reported_with_the_agents_answer() {
    let agent = agent().await;
    let pod = token_file(&token::mint_wrong_audience(NS, SA));
    let report = run_with(&agent.uri(), &pod.token_path).await;
    let f = finding(&report, "EPI-PI-006");
    assert!(
        f.evidence.contains("expected pods.eks.amazonaws.com"),
        "{}",
        f.evidence
    );
    let e = finding(&report, "EPI-PI-009");
    assert!(e.evidence.starts_with("HTTP 400: ["), "{}", e.evidence);
    assert!(
        e.evidence.contains("InvalidTokenException"),
        "{}",
        e.evidence
    );
    assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);
}

#[tokio::test]
async fn expired_tokens_are_reported() {
    let agent = agent().await;
    let pod = token_file(&token::mint_expired(NS, SA));
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-007")
        .evidence
        .contains("expired at "));
    assert!(finding(&report, "EPI-PI-009")
        .evidence
        .contains("token is expired"));
    assert_eq!(
        probe(&report, "pod-identity-token").outcomes,
        ["token_expired"]
    );
}

#[tokio::test]
async fn missing_empty_and_malformed_token_files() {
    let agent = agent().await;
    let report = run_with(&agent.uri(), "/nonexistent/eks-pod-identity-token").await;
    assert!(finding(&report, "EPI-PI-004")
        .evidence
        .contains("No such file"));
    assert_eq!(
        probe(&report, "pod-identity-agent").status,
        ProbeStatus::Skipped
    );
    assert_eq!(agent.stats().total, 0);

    let pod = token_file("\n");
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-004").evidence.contains("empty"));

    let pod = token_file("not-a-jwt\n");
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-005")
        .evidence
        .contains("not a JWT"));

    let jwt = token::mint(NS, SA);
    let pod = token_file(&format!("{jwt}\nX-Injected: 1\n"));
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-005")
        .evidence
        .contains("line break"));
}

#[tokio::test]
async fn uri_without_token_is_reported() {
    let report = check(&options(
        &[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )],
        &closed_port(),
    ))
    .await;
    assert_eq!(ids_at(&report, "pod-identity-token"), ["EPI-PI-003"]);
}

#[tokio::test]
async fn not_configured_is_high_in_kubernetes_and_info_elsewhere() {
    let report = check(&options(
        &[("KUBERNETES_SERVICE_HOST", "10.100.0.1")],
        &closed_port(),
    ))
    .await;
    assert_eq!(finding(&report, "EPI-PI-001").severity, Severity::High);
    assert_eq!(
        probe(&report, "pod-identity-env").status,
        ProbeStatus::Misconfigured
    );
    assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);

    let report = check(&options(&[], &closed_port())).await;
    assert_eq!(finding(&report, "EPI-PI-001").severity, Severity::Info);
}

#[tokio::test]
async fn disallowed_hosts_are_reported() {
    let jwt = token::mint(NS, SA);
    let pod = token_file(&jwt);
    for uri in [
        "http://10.0.0.1/v1/credentials",
        "http://169.254.169.254/latest",
    ] {
        let report = run_with(uri, &pod.token_path).await;
        let f = finding(&report, "EPI-PI-002");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(
            probe(&report, "pod-identity-agent").status,
            ProbeStatus::Skipped
        );
        // The token is still checked.
        assert_eq!(
            probe(&report, "pod-identity-token").outcomes,
            ["token_valid"]
        );
    }
}

#[tokio::test]
async fn unreachable_and_failing_agents() {
    let jwt = token::mint(NS, SA);
    let pod = token_file(&jwt);
    let closed = closed_port();
    let refused = format!("{}/v1/credentials", closed.url());
    let report = run_with(&refused, &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-008")
        .evidence
        .contains("connection refused"));
    assert_eq!(
        probe(&report, "pod-identity-agent").outcomes,
        ["agent_unreachable"]
    );

    let held = accept_and_hold().await;
    let uri = format!("{}/v1/credentials", held.url());
    let imds = closed_port();
    let report = check(&hang_options(&pod_env(&uri, &pod.token_path), &imds)).await;
    assert!(finding(&report, "EPI-PI-008")
        .evidence
        .contains("no answer"));
    assert_eq!(
        probe(&report, "pod-identity-agent").outcomes,
        ["agent_no_answer"]
    );
    // It is "no answer" because the request arrived and was not answered, not
    // because the probe stalled before sending it.
    assert!(
        held.requests()
            .iter()
            .any(|r| r == "GET /v1/credentials HTTP/1.1"),
        "{:?}",
        held.requests()
    );

    // No association for this service account: the agent's 404 text is shown.
    let agent = FakeAgent::builder().start().await.unwrap();
    let report = run_with(&agent.uri(), &pod.token_path).await;
    let f = finding(&report, "EPI-PI-009");
    assert!(f.evidence.starts_with("HTTP 404"), "{}", f.evidence);
    assert!(
        f.evidence.contains("ResourceNotFoundException"),
        "{}",
        f.evidence
    );
    assert!(!f.evidence.contains(&jwt));
}

#[tokio::test]
async fn custom_audience_token_builder_round_trip() {
    // The doctor decodes exactly what the testkit mints.
    let jwt = TokenBuilder::new(NS, SA)
        .audiences(["sts.amazonaws.com", "pods.eks.amazonaws.com"])
        .lifetime(Duration::from_secs(600))
        .build();
    let c = eks_pod_identity_doctor::check::pod_identity::decode_claims(&jwt).unwrap();
    assert_eq!(c.aud, ["sts.amazonaws.com", "pods.eks.amazonaws.com"]);
    assert!(c.exp.is_some());
}

#[tokio::test]
async fn a_token_shaped_like_a_real_one_gets_credentials_and_is_never_printed() {
    let agent = agent().await;
    let jwt = real_shaped_token(NS, SA, 86_400);
    assert!(jwt.len() > 1000, "{}", jwt.len());
    let pod = token_file(&format!("{jwt}\n"));
    let report = run_with(&agent.uri(), &pod.token_path).await;
    assert_eq!(
        probe(&report, "pod-identity-token").outcomes,
        ["token_valid"]
    );
    assert_eq!(probe(&report, "pod-identity-agent").outcomes, ["agent_ok"]);
    assert_no_piece_of(&jwt, &printed(&report));
}

#[tokio::test]
async fn a_token_given_as_a_value_is_checked_sent_and_never_printed() {
    let agent = agent().await;
    let jwt = real_shaped_token(NS, SA, 86_400);
    let uri = agent.uri();
    let imds = closed_port();
    let report = check(&options(
        &[
            ("KUBERNETES_SERVICE_HOST", "10.100.0.1"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", jwt.as_str()),
        ],
        &imds,
    ))
    .await;
    let t = probe(&report, "pod-identity-token");
    assert_eq!(t.outcomes, ["token_valid"]);
    assert!(
        t.detail.starts_with(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN: system:serviceaccount:my-app-namespace:my-app-sa"
        ),
        "{}",
        t.detail
    );
    assert_eq!(t.target, None, "a value has no file to show");
    assert_eq!(probe(&report, "pod-identity-agent").outcomes, ["agent_ok"]);
    // The agent probe sent exactly this token (and the chain did too).
    assert_eq!(agent.stats().status(200), 2);
    assert_no_piece_of(&jwt, &printed(&report));

    // A malformed value is reported by variable name, not by value.
    let report = check(&options(
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-a-jwt-but-secret"),
        ],
        &imds,
    ))
    .await;
    let f = finding(&report, "EPI-PI-005");
    assert!(
        f.evidence
            .starts_with("AWS_CONTAINER_AUTHORIZATION_TOKEN: not a JWT"),
        "{}",
        f.evidence
    );
    assert!(!printed(&report).contains("not-a-jwt-but-secret"));
}

#[tokio::test]
async fn an_agent_that_echoes_the_token_never_gets_it_printed() {
    // A misbehaving agent (or a proxy in front of it) that puts the
    // Authorization header in its error text, in the real agent's error format
    // ("Service account token cannot be parsed: <jwt error>",
    // internal/validation/request.go in aws/eks-pod-identity-agent).
    let (addr, _task) = answer_by(|head| {
        let token = header_of(head, "Authorization").unwrap_or_default();
        go_http_error(
            400,
            "Bad Request",
            &format!("Service account token cannot be parsed: token is malformed: {token}"),
        )
    })
    .await;
    let jwt = real_shaped_token(NS, SA, 86_400);
    let pod = token_file(&jwt);
    let report = run_with(&format!("http://{addr}/v1/credentials"), &pod.token_path).await;
    let f = finding(&report, "EPI-PI-009");
    assert_eq!(
        f.evidence,
        "HTTP 400: Service account token cannot be parsed: token is malformed: <token>"
    );
    assert_no_piece_of(&jwt, &printed(&report));
}

#[tokio::test]
async fn the_real_agents_error_texts_are_shown_verbatim() {
    // Each (status, message) as aws/eks-pod-identity-agent writes it.
    let cases: &[(u16, &str, &str)] = &[
        // internal/validation/request.go (validateToken), jwt v5 error text.
        (
            400,
            "Bad Request",
            "Service account token cannot be parsed: token is malformed: token contains an invalid number of segments",
        ),
        (
            400,
            "Bad Request",
            "Service account token failed basic claim validations: token has invalid claims: token is expired",
        ),
        // pkg/errors/errors.go (AccessDeniedError) + request.go (validateRequestTargetHost).
        (
            403,
            "Forbidden",
            "Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not 127.0.0.1",
        ),
        // pkg/errors/errors.go (HandleCredentialFetchingError): "[<request id>]: (<code>): <message>, fault: <fault>".
        (
            400,
            "Bad Request",
            "[7f1b9a52-0c3e-4d8a-b6f1-2e9d0c4a7b35]: (ExpiredTokenException): The service account token has expired., fault: client",
        ),
        (
            404,
            "Not Found",
            "[0c9e1d2a-6b7f-4a3e-9d5c-8f2b1a0e6d47]: (ResourceNotFoundException): No Pod Identity Association found for the service account., fault: client",
        ),
        // internal/middleware/rate_limiter/rate_limiter.go.
        (429, "Too Many Requests", "Too Many Requests"),
    ];
    let jwt = real_shaped_token(NS, SA, 86_400);
    let pod = token_file(&jwt);
    for (status, reason, msg) in cases {
        let (addr, _task) = answer_with(go_http_error(*status, reason, msg)).await;
        let report = run_with(&format!("http://{addr}/v1/credentials"), &pod.token_path).await;
        let f = finding(&report, "EPI-PI-009");
        assert_eq!(f.evidence, format!("HTTP {status}: {msg}"));
        let a = probe(&report, "pod-identity-agent");
        assert_eq!(
            (a.status, a.outcomes.as_slice()),
            (ProbeStatus::Misconfigured, &["agent_error".to_owned()][..]),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn host_names_are_resolved_and_checked() {
    // `localhost` resolves to loopback: allowed, and the agent is reached.
    let agent = agent().await;
    let uri = format!("http://localhost:{}/v1/credentials", agent.addr().port());
    let jwt = token::mint(NS, SA);
    let pod = token_file(&jwt);
    let report = run_with(&uri, &pod.token_path).await;
    let env = probe(&report, "pod-identity-env");
    assert_eq!(env.outcomes, ["configured"], "{}", env.detail);
    assert_eq!(probe(&report, "pod-identity-agent").outcomes, ["agent_ok"]);

    // A name that cannot resolve (RFC 2606 `.invalid`): the endpoint is invalid,
    // the agent is not called.
    let report = run_with("http://agent.invalid/v1/credentials", &pod.token_path).await;
    let f = finding(&report, "EPI-PI-002");
    assert!(
        f.evidence
            .starts_with("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://agent.invalid/v1/credentials: cannot resolve host: agent.invalid"),
        "{}",
        f.evidence
    );
    assert_eq!(
        probe(&report, "pod-identity-agent").status,
        ProbeStatus::Skipped
    );
}
