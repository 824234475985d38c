//! The moto stack end to end: seeded IAM/S3, IAM enforcement on, credentials minted
//! by the fake agent / fake IMDS through STS AssumeRole, verified by SigV4-signed S3
//! calls that moto checks against the role policies.
//!
//! Skipped (with a printed reason) when moto_server is not installed, unless
//! `CI=true`, where a missing moto fails the test.

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use eks_pod_identity_testkit::stack::{self, MotoStack};
use eks_pod_identity_testkit::token;
use eks_pod_identity_testkit::Minter;

struct Creds {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
}

fn s3(stack: &MotoStack, c: &Creds) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        c.token.clone(),
        None,
        "testkit-test",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(stack::REGION))
        .credentials_provider(creds)
        .endpoint_url(stack.endpoint_url())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn sts(stack: &MotoStack, c: &Creds) -> aws_sdk_sts::Client {
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        c.token.clone(),
        None,
        "testkit-test",
    );
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(stack::REGION))
        .credentials_provider(creds)
        .endpoint_url(stack.endpoint_url())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

async fn list(client: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>, String> {
    client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .map(|o| {
            o.contents()
                .iter()
                .filter_map(|c| c.key().map(str::to_owned))
                .collect()
        })
        .map_err(|e| {
            e.as_service_error()
                .and_then(|s| s.code())
                .unwrap_or("no-code")
                .to_owned()
        })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn pod_role_credentials_from_the_fake_agent_are_real_moto_credentials() {
    let Some(stack) = MotoStack::start_or_skip("moto pod role").await else {
        return;
    };
    assert!(stack.endpoint_url().starts_with("http://127.0.0.1:"));
    assert!(stack.pid().is_some());
    assert!(stack.admin().access_key_id.starts_with("AKIA"));
    assert_eq!(
        stack.admin().user_arn,
        "arn:aws:iam::123456789012:user/admin"
    );
    assert!(!format!("{stack:?}").contains(&stack.admin().secret_access_key));

    let agent = stack
        .fake_agent()
        .lifetime(Duration::from_secs(900))
        .start()
        .await
        .unwrap();
    let tok = token::mint(stack::DEFAULT_NAMESPACE, stack::DEFAULT_SERVICE_ACCOUNT);
    let r = http()
        .get(agent.uri())
        .header("authorization", &tok)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pod = Creds {
        access_key_id: v["AccessKeyId"].as_str().unwrap().into(),
        secret_access_key: v["SecretAccessKey"].as_str().unwrap().into(),
        token: Some(v["Token"].as_str().unwrap().into()),
    };
    assert!(
        pod.access_key_id.starts_with("ASIA"),
        "{}",
        pod.access_key_id
    );
    assert_eq!(v["AccountId"], "123456789012");

    // Who am I: the assumed pod role.
    let who = sts(&stack, &pod)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let arn = who.arn().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/my-app-pod-identity-role/"),
        "{arn}"
    );

    // The pod role reads its bucket and nothing else.
    let client = s3(&stack, &pod);
    let keys = list(&client, stack::APP_BUCKET).await.unwrap();
    assert!(keys.contains(&"hello.txt".to_owned()), "{keys:?}");
    assert!(keys.contains(&"reports/2026-11.csv".to_owned()), "{keys:?}");
    let obj = client
        .get_object()
        .bucket(stack::APP_BUCKET)
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    let bytes = obj.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], stack::SEED_OBJECTS[0].1.as_bytes());
    assert_eq!(
        list(&client, stack::OTHER_BUCKET).await.unwrap_err(),
        "AccessDenied"
    );

    // Enforcement is on: a wrong secret fails the signature check, unknown keys fail.
    let forged = Creds {
        secret_access_key: "x".repeat(40),
        ..pod
    };
    assert!(list(&s3(&stack, &forged), stack::APP_BUCKET).await.is_err());
    let unknown = Creds {
        access_key_id: "AKIAUNKNOWNUNKNOWN00".into(),
        secret_access_key: "y".repeat(40),
        token: None,
    };
    assert!(list(&s3(&stack, &unknown), stack::APP_BUCKET)
        .await
        .is_err());

    // The admin key sees everything.
    let admin = Creds {
        access_key_id: stack.admin().access_key_id.clone(),
        secret_access_key: stack.admin().secret_access_key.clone(),
        token: None,
    };
    assert!(list(&s3(&stack, &admin), stack::OTHER_BUCKET).await.is_ok());
    assert_eq!(agent.stats().minted, 1);
}

#[tokio::test]
async fn node_role_from_the_fake_imds_reads_only_the_other_bucket() {
    let Some(stack) = MotoStack::start_or_skip("moto node role").await else {
        return;
    };
    let imds = stack.fake_imds().start().await.unwrap();
    let c = http();
    let tok = c
        .put(format!("{}/latest/api/token", imds.endpoint()))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .get(format!(
            "{}/latest/meta-data/iam/security-credentials/node-role",
            imds.endpoint()
        ))
        .header("x-aws-ec2-metadata-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let node = Creds {
        access_key_id: v["AccessKeyId"].as_str().unwrap().into(),
        secret_access_key: v["SecretAccessKey"].as_str().unwrap().into(),
        token: Some(v["Token"].as_str().unwrap().into()),
    };
    let who = sts(&stack, &node)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert!(
        who.arn().unwrap().contains(":assumed-role/node-role/"),
        "{:?}",
        who.arn()
    );
    let client = s3(&stack, &node);
    assert!(list(&client, stack::OTHER_BUCKET).await.is_ok());
    assert_eq!(
        list(&client, stack::APP_BUCKET).await.unwrap_err(),
        "AccessDenied"
    );
}

#[tokio::test]
async fn short_lifetimes_and_upstream_failures() {
    let Some(stack) = MotoStack::start_or_skip("moto upstream errors").await else {
        return;
    };
    let tok = token::mint(stack::DEFAULT_NAMESPACE, stack::DEFAULT_SERVICE_ACCOUNT);
    // moto accepts DurationSeconds below STS's 900 s minimum: short rotations work.
    let agent = stack
        .fake_agent()
        .lifetime(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let r = http()
        .get(agent.uri())
        .header("authorization", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    // A minter whose admin key moto does not know: STS rejects the AssumeRole and
    // the agent answers with an upstream-style error.
    let agent = eks_pod_identity_testkit::FakeAgent::builder()
        .minter(Minter::sts(
            stack.endpoint_url(),
            "AKIAUNKNOWNUNKNOWN00",
            "z".repeat(40),
        ))
        .association(
            stack::DEFAULT_NAMESPACE,
            stack::DEFAULT_SERVICE_ACCOUNT,
            stack.pod_role_arn(),
        )
        .start()
        .await
        .unwrap();
    let r = http()
        .get(agent.uri())
        .header("authorization", &tok)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!(status >= 400, "{status} {body}");
    assert!(
        body.starts_with('[') && body.contains(", fault: "),
        "{body}"
    );
    assert!(body.ends_with('\n'));
    assert_eq!(agent.stats().minted, 0);
}

#[tokio::test]
async fn stack_process_is_killed_on_drop() {
    let Some(stack) = MotoStack::start_or_skip("moto kill on drop").await else {
        return;
    };
    let endpoint = stack.endpoint_url().to_owned();
    let pid = stack.pid().unwrap();
    drop(stack);
    // Bounded poll: the process disappears (reaped by tokio) and the port closes.
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
        if !alive && c.get(format!("{endpoint}/moto-api/")).send().await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "moto (pid {pid}) still running after drop");
}
