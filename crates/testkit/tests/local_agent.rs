//! The `pod-identity-local-agent` binary as a process.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_pod-identity-local-agent");

async fn start(args: &[&str]) -> (Child, HashMap<String, String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut env = HashMap::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "READY" {
                return true;
            }
            let (k, v) = line.split_once('=').expect("KEY=VALUE line");
            env.insert(k.to_owned(), v.to_owned());
        }
        false
    };
    let ready = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("READY in time");
    assert!(ready, "stdout closed before READY");
    (child, env)
}

async fn fetch(env: &HashMap<String, String>) -> (u16, serde_json::Value) {
    let token = std::fs::read_to_string(&env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).unwrap();
    let r = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(&env["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
        .header("authorization", token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

async fn stop_by_closing_stdin(mut child: Child) {
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn prints_env_and_serves_static_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("sa/token");
    let (child, env) = start(&[
        "--listen",
        "127.0.0.1:0",
        "--lifetime",
        "15m",
        "--write-token",
        token_path.to_str().unwrap(),
    ])
    .await;
    assert!(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].starts_with("http://127.0.0.1:"));
    assert!(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].ends_with("/v1/credentials"));
    assert!(!env.contains_key("AWS_ENDPOINT_URL"));
    let (status, v) = fetch(&env).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    stop_by_closing_stdin(child).await;
}

#[tokio::test]
async fn unknown_association_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    let (child, env) = start(&[
        "--association",
        "team/api=arn:aws:iam::123456789012:role/api",
        "--write-token",
        token_path.to_str().unwrap(),
    ])
    .await;
    let (status, _) = fetch(&env).await;
    assert_eq!(status, 200, "the token is for the first association");
    stop_by_closing_stdin(child).await;

    let out = Command::new(BIN)
        .args(["--association", "nonsense"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("namespace/serviceaccount=roleArn"));
}

#[tokio::test]
async fn terminates_on_sigterm() {
    let (child, _env) = start(&[]).await;
    let pid = child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let st = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(st.success(), "{st}");
}

#[tokio::test]
async fn with_moto_prints_the_endpoint_and_hands_out_moto_credentials() {
    if let Err(e) = eks_pod_identity_testkit::stack::find_moto_server() {
        // Counted by scripts/test.sh; a failure under CI=true.
        eks_pod_identity_testkit::skip::skip(
            "local agent --with-moto",
            eks_pod_identity_testkit::skip::Need::Moto,
            &e.to_string(),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    let (child, env) = start(&["--with-moto", "--write-token", token_path.to_str().unwrap()]).await;
    let endpoint = &env["AWS_ENDPOINT_URL"];
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    let (status, v) = fetch(&env).await;
    assert_eq!(status, 200, "{v}");

    let creds = aws_credential_types::Credentials::new(
        v["AccessKeyId"].as_str().unwrap(),
        v["SecretAccessKey"].as_str().unwrap(),
        Some(v["Token"].as_str().unwrap().to_owned()),
        None,
        "local-agent-test",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let out = s3
        .list_objects_v2()
        .bucket("my-app-bucket")
        .send()
        .await
        .unwrap();
    assert!(out.contents().iter().any(|o| o.key() == Some("hello.txt")));
    stop_by_closing_stdin(child).await;
}
