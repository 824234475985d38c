//! Shadowing credentials, the resolved identity and the host-network hint.

mod check_support;

use check_support::*;
use eks_pod_identity_doctor::report::{ProbeStatus, Severity, Verdict};
use eks_pod_identity_testkit::FakeImds;

#[tokio::test]
async fn a_clean_env_shadows_nothing() {
    let report = check(&options(&[], &closed_port())).await;
    assert!(ids_at(&report, "env-shadowing").is_empty());
    let p = probe(&report, "env-shadowing");
    assert_eq!(
        (p.status, p.outcomes.as_slice()),
        (ProbeStatus::Ok, &["none".to_owned()][..])
    );
}

#[tokio::test]
async fn static_keys_shadow_pod_identity_and_are_not_printed() {
    let report = check(&options(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ],
        &closed_port(),
    ))
    .await;
    let f = finding(&report, "EPI-ENV-001");
    assert_eq!(f.severity, Severity::High);
    assert_eq!(
        f.evidence,
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY set (AWS_ACCESS_KEY_ID AKIA…)"
    );
    let out = eks_pod_identity_doctor::output::json::render(&report, Severity::High);
    assert!(!out.contains("AKIAIOSFODNN7EXAMPLE") && !out.contains("wJalrXUtnFEMI"));
    assert_eq!(report.verdict(Severity::High), Verdict::Misconfigured);
}

#[tokio::test]
async fn each_static_key_variable_is_detected_on_its_own() {
    // A secret key (or session token) left in the env without its key id is
    // still a shadowing leftover: detected by name, never printed.
    for (var, value) in [
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLETOKEN"),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    ] {
        let imds = closed_port();
        let report = check(&options(&[(var, value)], &imds)).await;
        let f = finding(&report, "EPI-ENV-001");
        assert!(
            f.evidence.starts_with(&format!("{var} set")),
            "{var}: {}",
            f.evidence
        );
        assert_eq!(
            probe(&report, "env-shadowing").outcomes,
            ["static_keys"],
            "{var}"
        );
        let out = eks_pod_identity_doctor::output::json::render(&report, Severity::High);
        assert!(!out.contains(value), "{var}'s value is printed");
    }
}

#[tokio::test]
async fn shared_files_without_credentials_shadow_nothing() {
    // EPI-ENV-003's negative case: HOME is set and both shared files exist, but
    // their [default] sections only set a region and an output format.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\nregion = us-west-2\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-west-2\noutput = json\n",
    )
    .unwrap();
    let h = home.path().display().to_string();
    let imds = closed_port();
    let report = check(&options(&[("HOME", h.as_str())], &imds)).await;
    assert!(
        ids_at(&report, "env-shadowing").is_empty(),
        "{:#?}",
        report.findings()
    );
    assert_eq!(probe(&report, "env-shadowing").outcomes, ["none"]);

    // The same HOME with a key in [default] is found: the files are read.
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\nregion = us-west-2\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    )
    .unwrap();
    let report = check(&options(&[("HOME", h.as_str())], &imds)).await;
    assert_eq!(ids_at(&report, "env-shadowing"), ["EPI-ENV-003"]);
}

#[tokio::test]
async fn profiles_and_shared_files() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n",
    )
    .unwrap();
    let h = home.path().display().to_string();
    let report = check(&options(&[("HOME", h.as_str())], &closed_port())).await;
    let f = finding(&report, "EPI-ENV-003");
    assert!(
        f.evidence.contains("[default] has aws_access_key_id"),
        "{}",
        f.evidence
    );
    assert!(!ids_at(&report, "env-shadowing").contains(&"EPI-ENV-002".to_owned()));

    // AWS_PROFILE selecting a role profile in AWS_CONFIG_FILE.
    let cfg = home.path().join("config");
    std::fs::write(
        &cfg,
        "[profile dev]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let report = check(&options(
        &[("AWS_PROFILE", "dev"), ("AWS_CONFIG_FILE", c.as_str())],
        &closed_port(),
    ))
    .await;
    assert_eq!(
        ids_at(&report, "env-shadowing"),
        ["EPI-ENV-002", "EPI-ENV-003"]
    );
    assert!(finding(&report, "EPI-ENV-003")
        .evidence
        .contains("[profile dev] has role_arn"));

    // A profile that exists nowhere.
    let report = check(&options(&[("AWS_PROFILE", "ghost")], &closed_port())).await;
    let f = finding(&report, "EPI-ENV-002");
    assert!(f.evidence.contains("no such profile"), "{}", f.evidence);
    assert_eq!(f.severity, Severity::Medium);
}

#[tokio::test]
async fn irsa_variables_shadow_pod_identity() {
    let report = check(&options(
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa"),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            ),
        ],
        &closed_port(),
    ))
    .await;
    assert_eq!(finding(&report, "EPI-ENV-004").severity, Severity::High);

    let report = check(&options(
        &[("AWS_ROLE_ARN", "arn:aws:iam::1:role/irsa")],
        &closed_port(),
    ))
    .await;
    assert_eq!(finding(&report, "EPI-ENV-004").severity, Severity::Medium);
}

#[tokio::test]
async fn host_network_hint() {
    let report = check(&options(
        &[("POD_IP", "10.0.1.5"), ("HOST_IP", "10.0.1.5")],
        &closed_port(),
    ))
    .await;
    let f = finding(&report, "EPI-ID-010");
    assert_eq!(f.evidence, "POD_IP=10.0.1.5 equals HOST_IP=10.0.1.5");
    assert_eq!(probe(&report, "host-network").status, ProbeStatus::Leak);

    let report = check(&options(
        &[("POD_IP", "10.0.1.5"), ("HOST_IP", "10.0.0.7")],
        &closed_port(),
    ))
    .await;
    assert!(ids_at(&report, "host-network").is_empty());
    assert_eq!(probe(&report, "host-network").outcomes, ["pod_network"]);

    let report = check(&options(&[], &closed_port())).await;
    let p = probe(&report, "host-network");
    assert_eq!(
        (p.status, p.outcomes.as_slice()),
        (ProbeStatus::Unknown, &["unknown".to_owned()][..])
    );

    let mut opts = options(
        &[("MY_POD", "1.2.3.4"), ("MY_NODE", "1.2.3.4")],
        &closed_port(),
    );
    opts.pod_ip_env = "MY_POD".into();
    opts.host_ip_env = "MY_NODE".into();
    assert!(ids_at(&check(&opts).await, "host-network").contains(&"EPI-ID-010".to_owned()));
}

#[tokio::test]
async fn identity_is_the_instance_role_outside_kubernetes() {
    // No Pod Identity, not in Kubernetes: the chain's default policy allows
    // IMDS, and the source it resolves is the IMDS role.
    let imds = FakeImds::builder().start().await.unwrap();
    let report = check(&options(&[], &imds.endpoint())).await;
    let f = finding(&report, "EPI-ID-001");
    assert_eq!(
        f.severity,
        Severity::Info,
        "outside Kubernetes it is the instance's own role"
    );
    assert!(
        f.evidence
            .starts_with("chain source imds:node-role (AccessKeyId ASIA…)"),
        "{}",
        f.evidence
    );
    assert_eq!(probe(&report, "identity").outcomes, ["node_role"]);
}

#[tokio::test]
async fn identity_in_kubernetes_without_pod_identity_is_refused_by_the_chain() {
    let imds = FakeImds::builder().start().await.unwrap();
    let report = check(&options(
        &[("KUBERNETES_SERVICE_HOST", "10.100.0.1")],
        &imds.endpoint(),
    ))
    .await;
    let f = finding(&report, "EPI-ID-002");
    assert!(
        f.evidence.contains("fallback policy is Deny"),
        "{}",
        f.evidence
    );
    assert_eq!(probe(&report, "identity").outcomes, ["unresolved"]);
    // The IMDS probe still shows that the node role *is* reachable.
    assert!(ids_at(&report, "imds-ipv4").contains(&"EPI-IMDS-003".to_owned()));
}

#[tokio::test]
async fn identity_unverified_when_sts_is_off_or_unreachable() {
    let imds = FakeImds::builder().no_role(false).start().await.unwrap();
    // Pod Identity from a fake agent, so the chain resolves pod-identity.
    let agent = eks_pod_identity_testkit::FakeAgent::builder()
        .association("ns", "sa", "arn:aws:iam::123456789012:role/app")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, eks_pod_identity_testkit::token::mint("ns", "sa")).unwrap();
    let p = path.display().to_string();
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.uri()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", p.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let report = check(&options(&env, &imds.endpoint())).await;
    let f = finding(&report, "EPI-ID-004");
    assert!(
        f.evidence.contains("chain source pod-identity"),
        "{}",
        f.evidence
    );
    assert!(f.evidence.contains("--no-sts"), "{}", f.evidence);

    let closed_sts = closed_port();
    let mut opts = options(&env, &imds.endpoint());
    opts.sts = true;
    opts.sts_endpoint = Some(closed_sts.url().to_owned());
    let report = check(&opts).await;
    let f = finding(&report, "EPI-ID-004");
    assert!(f.evidence.contains("GetCallerIdentity"), "{}", f.evidence);
}
