//! Pod Identity probes: env, token file, agent (FakeAgent + minted tokens).

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

async fn run_with(uri: &str, token_path: &str) -> eks_pod_identity_doctor::Report {
    check(&options(
        &[
            ("KUBERNETES_SERVICE_HOST", "10.100.0.1"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path),
        ],
        &closed_port(),
    ))
    .await
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
    let refused = format!("{}/v1/credentials", closed_port());
    let report = run_with(&refused, &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-008")
        .evidence
        .contains("connection refused"));
    assert_eq!(
        probe(&report, "pod-identity-agent").outcomes,
        ["agent_unreachable"]
    );

    let (addr, _task) = accept_and_hold().await;
    let report = run_with(&format!("http://{addr}/v1/credentials"), &pod.token_path).await;
    assert!(finding(&report, "EPI-PI-008")
        .evidence
        .contains("no answer"));
    assert_eq!(
        probe(&report, "pod-identity-agent").outcomes,
        ["agent_no_answer"]
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
