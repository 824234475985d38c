//! End to end: the built `s3_reader` example as a real process, against moto
//! (S3 + STS + IAM with signature and policy enforcement) and the testkit's
//! fake Pod Identity Agent minting real moto credentials.
//!
//! Needs `scripts/ensure-moto.sh` (run by `scripts/test.sh`). Without moto the
//! tests skip with a reason, except under `CI=true`, where they fail.

use eks_pod_identity_testkit::imds::FakeImds;
use eks_pod_identity_testkit::stack::{MotoStack, APP_BUCKET, OTHER_BUCKET};
use eks_pod_identity_testkit::token;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const NS: &str = "my-app-namespace";
const SA: &str = "my-app-sa";

fn s3_reader() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("debug/examples/s3_reader");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --example s3_reader` (scripts/test.sh builds the examples first)",
        bin.display()
    );
    bin
}

struct Pod {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Pod {
    /// A pod whose token file holds `token`, with the env EKS injects.
    fn with_pod_identity(agent_uri: &str, moto: &MotoStack, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_path = dir.path().join("eks-pod-identity-token");
        std::fs::write(&token_path, format!("{token}\n")).unwrap();
        let mut pod = Self::bare(moto);
        pod.dir = dir;
        pod.env.push((
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
            agent_uri.into(),
        ));
        pod.env.push((
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
            token_path.display().to_string(),
        ));
        pod
    }

    /// A pod with no Pod Identity env at all.
    fn bare(moto: &MotoStack) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: vec![
                ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
                ("AWS_ENDPOINT_URL".into(), moto.endpoint_url().to_owned()),
                ("AWS_REGION".into(), moto.region().to_owned()),
                ("KUBERNETES_SERVICE_HOST".into(), "10.100.0.1".into()),
                // Nothing else: no HOME credentials, no profile, no IMDS unless a test says so.
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
                ("HOME".into(), "/nonexistent".into()),
            ],
        }
    }

    fn set(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
    }

    fn unset(&mut self, k: &str) {
        self.env.retain(|(key, _)| key != k);
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::process::Command::new(s3_reader())
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        eprintln!(
            "$ s3_reader {}\n[exit {:?}]\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

macro_rules! moto_or_skip {
    ($name:expr) => {
        match MotoStack::start_or_skip($name).await {
            Some(m) => m,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_role_reads_its_bucket_and_is_denied_elsewhere() {
    let moto = moto_or_skip!("pod_role_reads_its_bucket_and_is_denied_elsewhere");
    let agent = moto.fake_agent().start().await.unwrap();
    let pod = Pod::with_pod_identity(&agent.uri(), &moto, &token::mint(NS, SA));

    let who = pod.run(&["--whoami"]).await;
    assert!(who.status.success());
    assert!(
        stdout(&who).contains(":assumed-role/my-app-pod-identity-role/"),
        "{}",
        stdout(&who)
    );

    let ls = pod.run(&["ls", &format!("s3://{APP_BUCKET}")]).await;
    assert!(ls.status.success());
    assert!(
        stdout(&ls).contains("s3://my-app-bucket/hello.txt"),
        "{}",
        stdout(&ls)
    );

    let get = pod
        .run(&["get", &format!("s3://{APP_BUCKET}/hello.txt")])
        .await;
    assert!(get.status.success());
    assert!(!get.stdout.is_empty());

    let denied = pod.run(&["ls", &format!("s3://{OTHER_BUCKET}")]).await;
    assert_eq!(denied.status.code(), Some(1));
    let err = stderr(&denied);
    assert!(
        err.contains("AccessDenied") && err.contains("credentials: pod-identity"),
        "{err}"
    );

    // Whatever was logged, no secret and no token appears.
    for out in [&who, &ls, &denied] {
        let text = stderr(out);
        assert!(!text.contains("eyJ"), "token leaked: {text}");
    }
    assert!(agent.stats().total >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_over_three_lifetimes_has_no_failed_request() {
    let moto = moto_or_skip!("rotation_over_three_lifetimes_has_no_failed_request");
    let lifetime = Duration::from_secs(20);
    let agent = moto.fake_agent().lifetime(lifetime).start().await.unwrap();
    let pod = Pod::with_pod_identity(&agent.uri(), &moto, &token::mint(NS, SA));
    let out = pod
        .run(&[
            "--watch",
            "62",
            "--interval-ms",
            "200",
            "--mandatory-window-secs",
            "4",
            "ls",
            &format!("s3://{APP_BUCKET}"),
        ])
        .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let summary: serde_json::Value = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .expect("summary line");
    assert_eq!(summary["failures"], 0, "{summary}");
    assert!(summary["requests"].as_u64().unwrap() > 100, "{summary}");
    let fetches = summary["credential_fetches"].as_u64().unwrap();
    // 62 s of 20 s credentials refreshed 5–10 s before expiry: one fetch per
    // ~10–15 s, never one per request.
    assert!((4..=8).contains(&fetches), "{fetches} fetches: {summary}");
    assert_eq!(
        summary["callers_waited"], 1,
        "only the cold start waited: {summary}"
    );
    assert_eq!(agent.stats().total, fetches, "one agent request per fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_down_is_a_clear_error_naming_the_agent() {
    let moto = moto_or_skip!("agent_down_is_a_clear_error_naming_the_agent");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}/v1/credentials");
    let pod = Pod::with_pod_identity(&uri, &moto, &token::mint(NS, SA));
    let out = pod.run(&["ls", &format!("s3://{APP_BUCKET}")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&uri) && err.contains("could not connect to the Pod Identity Agent"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pod_identity_in_kubernetes_imds_is_denied_then_leaks_when_allowed() {
    let moto = moto_or_skip!("without_pod_identity_in_kubernetes_imds_is_denied");
    let imds: FakeImds = moto.fake_imds().start().await.unwrap();
    let mut pod = Pod::bare(&moto);
    pod.unset("AWS_EC2_METADATA_DISABLED");
    pod.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());

    let denied = pod.run(&["ls", &format!("s3://{APP_BUCKET}")]).await;
    assert_eq!(denied.status.code(), Some(2));
    let err = stderr(&denied);
    assert!(
        err.contains("fallback policy is Deny") && err.contains("node's IAM role"),
        "{err}"
    );
    assert!(!imds.was_contacted(), "Deny must not even touch IMDS");

    let leaked = pod
        .run(&[
            "--fallback",
            "allow",
            "--whoami",
            "ls",
            &format!("s3://{APP_BUCKET}"),
        ])
        .await;
    assert!(
        stdout(&leaked).contains(":assumed-role/node-role/"),
        "{}",
        stdout(&leaked)
    );
    assert_eq!(
        leaked.status.code(),
        Some(1),
        "the node role may not read the app bucket"
    );
    let err = stderr(&leaked);
    assert!(
        err.contains("AccessDenied") && err.contains("credentials: imds:node-role"),
        "{err}"
    );
    assert!(imds.was_contacted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_tokens_surface_the_agents_400() {
    let moto = moto_or_skip!("tampered_tokens_surface_the_agents_400");
    let agent = moto.fake_agent().start().await.unwrap();
    for (token, needle) in [
        (token::mint_expired(NS, SA), "token is expired"),
        (token::mint_wrong_audience(NS, SA), "InvalidTokenException"),
        ("not-a-jwt".to_owned(), "cannot be parsed"),
    ] {
        let pod = Pod::with_pod_identity(&agent.uri(), &moto, &token);
        let out = pod.run(&["ls", &format!("s3://{APP_BUCKET}")]).await;
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("answered 400") && err.contains(needle),
            "{err}"
        );
        assert!(!err.contains(&token), "the token must never be printed");
    }
}
