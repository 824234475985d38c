//! End to end on an emulated EKS node (network namespaces, see
//! `eks_pod_identity_testkit::netns`): the example `s3_reader` runs as an ordinary
//! pod with the production environment, reaches the Pod Identity Agent at
//! 169.254.170.23 / [fd00:ec2::23], and reads `my-app-bucket` from moto (IAM
//! enforced) with the pod role; the IMDS fallback policy and a *real* IMDS hop limit
//! decide whether the node role leaks.
//!
//! Needs root (skipped otherwise, except under `CI=true`) and moto
//! (`scripts/ensure-moto.sh`). The example binary is rebuilt first
//! (`support::s3_reader`), so the tests never run stale code.
#![cfg(target_os = "linux")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use eks_pod_identity_testkit::netns::{EksNode, Netns};
use eks_pod_identity_testkit::stack::{APP_BUCKET, OTHER_BUCKET, SEED_OBJECTS};

const TIMEOUT: Duration = Duration::from_secs(120);
const POD_ROLE: &str = "assumed-role/my-app-pod-identity-role/";
const NODE_ROLE: &str = "assumed-role/node-role/";

fn node(test: &str, hop_limit: u32) -> Option<(EksNode, PathBuf)> {
    let node = EksNode::builder()
        .with_moto(true)
        .hop_limit(hop_limit)
        .start_or_skip(test)?;
    Some((node, support::s3_reader().to_owned()))
}

/// Runs `s3_reader args` in `ns` with exactly `env` (plus PATH etc.).
fn run(node: &EksNode, ns: Netns, bin: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = node.command_in(ns, bin);
    cmd.args(args).envs(env.iter().cloned());
    eks_pod_identity_testkit::netns::output_with_timeout(&mut cmd, TIMEOUT)
        .unwrap_or_else(|e| panic!("s3_reader {args:?} in {ns}: {e}"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn with(env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.into_iter().filter(|(k, _)| k != key).collect();
    env.push((key.to_owned(), value.to_owned()));
    env
}

#[test]
fn pod_reads_its_bucket_through_the_agent_at_its_real_address() {
    let Some((node, bin)) = node(
        "pod_reads_its_bucket_through_the_agent_at_its_real_address",
        1,
    ) else {
        return;
    };
    let env = node.pod_env();
    let bucket = format!("s3://{APP_BUCKET}");
    let o = run(&node, Netns::Pod, &bin, &env, &["--whoami", "ls", &bucket]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains(POD_ROLE), "whoami is the pod role: {out}");
    for (key, _) in SEED_OBJECTS {
        assert!(
            out.contains(&format!("{bucket}/{key}")),
            "{key} listed: {out}"
        );
    }

    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["get", &format!("{bucket}/hello.txt")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, SEED_OBJECTS[0].1);

    // moto enforces the pod role's policy: the node's bucket is not readable.
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["ls", &format!("s3://{OTHER_BUCKET}")],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error: AccessDenied"), "{err}");

    let st = node.agent().stats();
    assert!(
        st.status(200) >= 3,
        "one credential fetch per process: {st:?}"
    );
    assert_eq!(
        st.status(403),
        0,
        "the provider sends the right Host: {st:?}"
    );
    assert!(
        !node.imds().was_contacted(),
        "Pod Identity configured: IMDS never asked"
    );
}

#[test]
fn ipv6_agent_address_works() {
    let Some((node, bin)) = node("ipv6_agent_address_works", 1) else {
        return;
    };
    let env = with(
        node.pod_env(),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        &node.agent_uri_v6(),
    );
    assert!(env
        .iter()
        .any(|(_, v)| v == "http://[fd00:ec2::23]/v1/credentials"));
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["--whoami", "ls", &format!("s3://{APP_BUCKET}")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains(POD_ROLE), "{out}");
    assert!(node.agent().stats().status(200) >= 1);
    assert!(!node.imds().was_contacted());
}

#[test]
fn deny_policy_never_touches_imds_even_at_hop_limit_2() {
    let Some((node, bin)) = node("deny_policy_never_touches_imds_even_at_hop_limit_2", 2) else {
        return;
    };
    // A pod without an association: no AWS_CONTAINER_*, but KUBERNETES_SERVICE_HOST.
    let env = node.pod_env_without_pod_identity();
    assert!(env.iter().any(|(k, _)| k == "KUBERNETES_SERVICE_HOST"));
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["--whoami", "ls", &format!("s3://{APP_BUCKET}")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("Deny"),
        "the error names the policy and the fix: {err}"
    );
    assert!(!out.contains("assumed-role"), "{out}");
    let st = node.imds().stats();
    assert_eq!(st.total, 0, "IMDS request log must be empty: {:?}", st.log);
    assert_eq!(node.agent().stats().total, 0);
}

#[test]
fn allow_policy_at_hop_limit_1_times_out_with_the_hint() {
    let Some((node, bin)) = node("allow_policy_at_hop_limit_1_times_out_with_the_hint", 1) else {
        return;
    };
    let env = node.pod_env_without_pod_identity();
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["--fallback", "allow", "ls", &format!("s3://{APP_BUCKET}")],
    );
    let (out, err) = text(&o);
    // The chain is configured (IMDS allowed), so this is exit 1, an S3 call
    // failing for want of credentials, not 2 (no source configured at all).
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("hop limit of 1"),
        "timeout-with-hint error: {err}"
    );
    assert!(out.is_empty(), "nothing listed: {out}");
    // Real packets: the PUT arrived and IMDS answered it — with TTL 1, so the
    // answer died at the node's forwarding. No credentials were ever served.
    let st = node.imds().stats();
    assert!(st.token_puts >= 1, "IMDS answered the PUT: {st:?}");
    assert_eq!(st.credentials_served, 0, "{st:?}");

    // The same node, from the host network (one hop): the node role is there.
    let o = run(
        &node,
        Netns::Node,
        &bin,
        &env,
        &[
            "--fallback",
            "allow",
            "--whoami",
            "ls",
            &format!("s3://{OTHER_BUCKET}"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(NODE_ROLE),
        "hostNetwork gets the node role: {out}"
    );
}

#[test]
fn allow_policy_at_hop_limit_2_leaks_the_node_role() {
    let Some((node, bin)) = node("allow_policy_at_hop_limit_2_leaks_the_node_role", 2) else {
        return;
    };
    let env = node.pod_env_without_pod_identity();
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &[
            "--fallback",
            "allow",
            "--whoami",
            "ls",
            &format!("s3://{APP_BUCKET}"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(NODE_ROLE),
        "the pod runs as the node role: {out}"
    );
    assert!(
        err.contains("error: AccessDenied"),
        "the node role cannot read the app's bucket: {err}"
    );
    // …but it can read what the node can: the leak made visible.
    let o = run(
        &node,
        Netns::Pod,
        &bin,
        &env,
        &["--fallback", "allow", "ls", &format!("s3://{OTHER_BUCKET}")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(&format!("s3://{OTHER_BUCKET}/hello.txt")),
        "{out}"
    );
    let st = node.imds().stats();
    assert!(st.credentials_served >= 2, "{st:?}");
}
