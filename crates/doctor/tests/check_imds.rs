//! Every IMDS outcome of `check`, against the testkit's FakeImds and tiny
//! loopback listeners. (DROP and ICMP-prohibited need real packets: they are
//! classified in unit tests and exercised in the emulated EKS node.)

mod check_support;

use check_support::*;
use eks_pod_identity_doctor::check::http::{request, Target};
use eks_pod_identity_doctor::output::json;
use eks_pod_identity_doctor::report::{ProbeStatus, Report, Severity, Verdict};
use eks_pod_identity_testkit::imds::ImdsMode;
use eks_pod_identity_testkit::skip::{skip, Need};
use eks_pod_identity_testkit::FakeImds;

/// The fake received the token PUT and never answered it: the probe's
/// "unanswered" is the fake's hang, not a stall on the way there.
fn assert_put_reached_and_hung(imds: &FakeImds) {
    let log = imds.stats().log;
    assert!(
        log.iter()
            .any(|r| r.method == "PUT" && r.path == "/latest/api/token" && r.status.is_none()),
        "{log:#?}"
    );
}

/// A FakeImds that hangs the token PUT but answers IMDSv1 (without a role if
/// `no_role`), checked: the IPv4 findings are EPI-IMDS-004 and EPI-IMDS-013.
async fn assert_imdsv1_open_at_hop_limit_1(no_role: bool) -> (FakeImds, Report) {
    let imds = FakeImds::builder()
        .mode(ImdsMode::HangPut)
        .imdsv1(true)
        .no_role(no_role)
        .start()
        .await
        .unwrap();
    let report = check(&hang_options(&[], &imds.endpoint())).await;
    assert_eq!(
        ids_at(&report, "imds-ipv4"),
        ["EPI-IMDS-004", "EPI-IMDS-013"]
    );
    (imds, report)
}

/// The IPv4 probe leaked, with exactly these outcomes.
fn assert_leak_probe(report: &Report, outcomes: &[&str]) {
    let p = probe(report, "imds-ipv4");
    assert_eq!(p.status, ProbeStatus::Leak);
    assert_eq!(p.outcomes, outcomes);
}

/// `rule_id` was found at Critical, its evidence naming `needle`.
fn assert_critical_finding(report: &Report, rule_id: &str, needle: &str) {
    let f = finding(report, rule_id);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.evidence.contains(needle), "{}", f.evidence);
}

#[tokio::test]
async fn hop_limit_2_token_role_and_credentials_leak_without_printing_secrets() {
    let imds = FakeImds::builder().start().await.unwrap();
    let report = check(&options(&[], &imds.endpoint())).await;
    assert_eq!(
        ids_at(&report, "imds-ipv4"),
        ["EPI-IMDS-001", "EPI-IMDS-002", "EPI-IMDS-003"]
    );
    assert_leak_probe(
        &report,
        &[
            "token_obtained",
            "role_readable",
            "credentials_readable",
            "imdsv1_closed",
        ],
    );
    assert_critical_finding(&report, "EPI-IMDS-002", "node-role");
    let creds = &finding(&report, "EPI-IMDS-003").evidence;
    assert!(creds.contains("AccessKeyId ASIA…, expires "), "{creds}");
    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);

    // Fetch the same credentials ourselves: neither secret nor session token
    // may appear anywhere in the output.
    let url = url::Url::parse(&imds.endpoint()).unwrap();
    let t = Target::from_url(&url).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    let timeout = std::time::Duration::from_secs(1);
    let tok = request(
        &t,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        timeout,
        deadline,
    )
    .await
    .unwrap()
    .body;
    let h = [("X-aws-ec2-metadata-token", tok.as_str())];
    let doc = request(
        &t,
        "GET",
        "/latest/meta-data/iam/security-credentials/node-role",
        &h,
        timeout,
        deadline,
    )
    .await
    .unwrap()
    .body;
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let out = json::render(&report, Severity::High)
        + &eks_pod_identity_doctor::output::human::render(&report, Severity::High);
    for secret in ["SecretAccessKey", "Token", "AccessKeyId"] {
        let v = doc[secret].as_str().unwrap();
        assert!(!out.contains(v), "{secret} leaked into the output");
    }
}

#[tokio::test]
async fn hop_limit_1_hung_put_is_protected() {
    let imds = FakeImds::builder()
        .mode(ImdsMode::HangPut)
        .start()
        .await
        .unwrap();
    let report = check(&hang_options(&[], &imds.endpoint())).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-013"]);
    let p = probe(&report, "imds-ipv4");
    assert_eq!(p.status, ProbeStatus::Protected);
    assert_eq!(p.outcomes, ["token_put_unanswered", "imdsv1_closed"]);
    assert_put_reached_and_hung(&imds);
    assert_eq!(finding(&report, "EPI-IMDS-013").severity, Severity::Info);
    assert_eq!(report.verdict(Severity::High), Verdict::Protected);
}

#[tokio::test]
async fn accept_and_hold_listener_is_an_unanswered_put() {
    let held = accept_and_hold().await;
    let report = check(&hang_options(&[], &held.url())).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-013"]);
    assert_eq!(
        probe(&report, "imds-ipv4").outcomes,
        ["token_put_unanswered"]
    );
    assert!(
        held.requests()
            .iter()
            .any(|r| r == "PUT /latest/api/token HTTP/1.1"),
        "the PUT never reached the listener: {:?}",
        held.requests()
    );
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let report = check(&options(&[], &closed_port())).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-010"]);
    let p = probe(&report, "imds-ipv4");
    assert_eq!(
        (p.status, p.outcomes.as_slice()),
        (ProbeStatus::Protected, &["connect_refused".to_owned()][..])
    );
}

#[tokio::test]
async fn disabled_imds_is_403_and_protected() {
    let imds = FakeImds::builder()
        .mode(ImdsMode::Disabled)
        .start()
        .await
        .unwrap();
    let report = check(&options(&[], &imds.endpoint())).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-014"]);
    assert_eq!(probe(&report, "imds-ipv4").status, ProbeStatus::Protected);
    assert_eq!(report.verdict(Severity::High), Verdict::Protected);
}

#[tokio::test]
async fn no_instance_profile_is_404_and_lowers_the_token_finding() {
    let imds = FakeImds::builder().no_role(true).start().await.unwrap();
    let report = check(&options(&[], &imds.endpoint())).await;
    assert_eq!(
        ids_at(&report, "imds-ipv4"),
        ["EPI-IMDS-001", "EPI-IMDS-015"]
    );
    assert_eq!(finding(&report, "EPI-IMDS-001").severity, Severity::Medium);
    assert_eq!(
        probe(&report, "imds-ipv4").outcomes,
        ["token_obtained", "no_instance_profile", "imdsv1_closed"]
    );
    assert_eq!(report.verdict(Severity::High), Verdict::Protected);
    assert_eq!(report.verdict(Severity::Medium), Verdict::LeaksNodeRole);
}

#[tokio::test]
async fn imdsv1_open_leaks_even_at_hop_limit_1() {
    let (imds, report) = assert_imdsv1_open_at_hop_limit_1(false).await;
    assert_put_reached_and_hung(&imds);
    assert_critical_finding(
        &report,
        "EPI-IMDS-004",
        "role node-role; credentials readable (AccessKeyId ASIA…",
    );
    assert_leak_probe(&report, &["token_put_unanswered", "imdsv1_open"]);
    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
}

#[tokio::test]
async fn unexpected_answers_are_their_own_outcome() {
    let (addr, _task) =
        answer_with("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops").await;
    let report = check(&options(&[], &format!("http://{addr}"))).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-016"]);
    assert!(finding(&report, "EPI-IMDS-016")
        .evidence
        .contains("500 (oops)"));
    assert_eq!(probe(&report, "imds-ipv4").status, ProbeStatus::Unknown);

    let (addr, _task) = answer_with("SSH-2.0-OpenSSH\r\n\r\n").await;
    let report = check(&options(&[], &format!("http://{addr}"))).await;
    assert!(finding(&report, "EPI-IMDS-016")
        .evidence
        .contains("malformed"));
}

#[tokio::test]
async fn ipv6_is_probed_separately() {
    let v6 = match FakeImds::builder()
        .bind("[::1]:0".parse().unwrap())
        .start()
        .await
    {
        Ok(v6) => v6,
        Err(e) => {
            // Counted by scripts/test.sh; a failure under CI=true.
            skip(
                "ipv6_is_probed_separately",
                Need::Ipv6,
                &format!("no IPv6 loopback here ([::1]: {e})"),
            );
            return;
        }
    };
    let closed = closed_port();
    let mut opts = options(&[], &closed);
    opts.ipv6 = true;
    opts.imds_ipv6_endpoint = Some(v6.endpoint());
    let report = check(&opts).await;
    assert_eq!(ids_at(&report, "imds-ipv4"), ["EPI-IMDS-010"]);
    assert_eq!(
        ids_at(&report, "imds-ipv6"),
        ["EPI-IMDS-001", "EPI-IMDS-002", "EPI-IMDS-003"]
    );
    let p = probe(&report, "imds-ipv6");
    assert!(p.target.as_deref().unwrap().starts_with("http://[::1]:"));
    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
}

#[tokio::test]
async fn no_ipv6_skips_the_ipv6_probe_and_env_endpoints_are_honoured() {
    let imds = FakeImds::builder().start().await.unwrap();
    let mut opts = options(
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            imds.endpoint().as_str(),
        )],
        "unused",
    );
    opts.imds_endpoint = None;
    let report = check(&opts).await;
    let p = probe(&report, "imds-ipv4");
    assert_eq!(p.target.as_deref(), Some(imds.endpoint().as_str()));
    assert!(p.outcomes.contains(&"token_obtained".to_owned()));
    let p6 = probe(&report, "imds-ipv6");
    assert_eq!(
        (p6.status, p6.target.as_deref()),
        (ProbeStatus::Skipped, Some("http://[fd00:ec2::254]"))
    );
}

#[tokio::test]
async fn invalid_endpoints_cannot_run() {
    let opts = options(&[], "ftp://169.254.169.254");
    let err = eks_pod_identity_doctor::check::run_check(&opts)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--imds-endpoint"), "{err}");
}

#[tokio::test]
async fn imdsv1_open_without_a_role_is_the_404_branch() {
    // IMDSv1 open and no instance profile: a token-less GET of the role list
    // gets 404 instead of 401. IMDSv1 is open, but there is no role to take.
    let (imds, report) = assert_imdsv1_open_at_hop_limit_1(true).await;
    let f = finding(&report, "EPI-IMDS-004");
    assert_eq!(f.severity, Severity::Medium);
    assert!(
        f.evidence
            .contains("without a token -> 404 (no instance profile) instead of 401"),
        "{}",
        f.evidence
    );
    let p = probe(&report, "imds-ipv4");
    assert_eq!(p.outcomes, ["token_put_unanswered", "imdsv1_open"]);
    assert!(p.detail.contains("IMDSv1 open (no role)"), "{}", p.detail);
    assert_eq!(report.verdict(Severity::High), Verdict::Protected);
    assert_eq!(report.verdict(Severity::Medium), Verdict::LeaksNodeRole);
    assert_put_reached_and_hung(&imds);
}

#[tokio::test]
async fn token_obtained_and_imdsv1_open_are_both_reported() {
    // Hop limit 2 *and* http_tokens = "optional": both ways in are shown.
    let imds = FakeImds::builder().imdsv1(true).start().await.unwrap();
    let report = check(&options(&[], &imds.endpoint())).await;
    assert_eq!(
        ids_at(&report, "imds-ipv4"),
        [
            "EPI-IMDS-001",
            "EPI-IMDS-002",
            "EPI-IMDS-003",
            "EPI-IMDS-004"
        ]
    );
    assert_leak_probe(
        &report,
        &[
            "token_obtained",
            "role_readable",
            "credentials_readable",
            "imdsv1_open",
        ],
    );
    // One role, seen both ways.
    assert_critical_finding(&report, "EPI-IMDS-004", "role node-role");
    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
}
