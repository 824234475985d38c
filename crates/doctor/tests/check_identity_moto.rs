//! The resolved identity compared with the node role through moto's STS.
//! Skipped when `moto_server` is missing, except under `CI=true`.

mod check_support;

use check_support::*;
use eks_pod_identity_doctor::report::{ProbeStatus, Severity, Verdict};
use eks_pod_identity_testkit::{stack, token, MotoStack};

async fn run(moto: &MotoStack, role_arn: &str) -> eks_pod_identity_doctor::Report {
    let agent = moto
        .fake_agent()
        .association(
            stack::DEFAULT_NAMESPACE,
            stack::DEFAULT_SERVICE_ACCOUNT,
            role_arn,
        )
        .start()
        .await
        .unwrap();
    let imds = moto.fake_imds().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(
        &path,
        token::mint(stack::DEFAULT_NAMESPACE, stack::DEFAULT_SERVICE_ACCOUNT),
    )
    .unwrap();
    let p = path.display().to_string();
    let uri = agent.uri();
    let mut opts = options(
        &[
            ("KUBERNETES_SERVICE_HOST", "10.100.0.1"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", p.as_str()),
        ],
        &imds.endpoint(),
    );
    opts.sts = true;
    opts.sts_endpoint = Some(moto.endpoint_url().to_owned());
    opts.probe_timeout = std::time::Duration::from_secs(2);
    check(&opts).await
}

#[tokio::test]
async fn pod_role_is_not_the_node_role_and_a_node_role_association_is() {
    let Some(moto) = MotoStack::start_or_skip("check_identity_moto").await else {
        return;
    };
    let report = run(&moto, &moto.pod_role_arn()).await;
    let f = finding(&report, "EPI-ID-003");
    assert!(
        f.evidence
            .contains("assumed-role/my-app-pod-identity-role/"),
        "{}",
        f.evidence
    );
    assert!(f.evidence.contains("node role node-role"), "{}", f.evidence);
    assert_eq!(probe(&report, "identity").status, ProbeStatus::Ok);

    // Someone associated the node role with the service account: STS says
    // the resolved identity is the node role.
    let report = run(&moto, &moto.node_role_arn()).await;
    let f = finding(&report, "EPI-ID-001");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.evidence.contains("chain source pod-identity"),
        "{}",
        f.evidence
    );
    assert!(
        f.evidence.contains("assumed-role/node-role/"),
        "{}",
        f.evidence
    );
    assert_eq!(report.verdict(Severity::High), Verdict::LeaksNodeRole);
}
