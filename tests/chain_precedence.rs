//! The default chain's precedence, one test per case, against moto (S3 +
//! STS + IAM with enforcement) where credentials are minted: environment
//! keys, a profile file, IRSA (moto's `AssumeRoleWithWebIdentity`), Pod
//! Identity (the testkit's fake agent minting moto credentials), IMDS outside
//! Kubernetes (the fake IMDS), a Kubernetes pod with no source, and IRSA with
//! Pod Identity both set.
//!
//! `aws_config`'s providers read the process environment, so each case runs
//! in a child process with exactly the environment under test: the test
//! re-runs its own binary, filtered to itself, with `CHAIN_PROBE_CHILD` set.
//! In the child the same test function loads the chain
//! (`DefaultChain::builder().load(..)`), asks STS who it is twice, and prints
//! the winning source, the ARN or the error, as one JSON line; the parent
//! asserts on it and on the child's log.
//!
//! Needs `scripts/ensure-moto.sh` (run by `scripts/test.sh`). Without moto the
//! tests skip with a reason, except under `CI=true`, where they fail.

use eks_pod_identity::report::ErrorReport;
use eks_pod_identity::DefaultChain;
use eks_pod_identity_testkit::stack::{MotoStack, POD_ROLE_NAME};
use eks_pod_identity_testkit::token;
use std::path::Path;
use std::time::Duration;

const CHILD: &str = "CHAIN_PROBE_CHILD";
const PREFIX: &str = "CHAIN_PROBE_RESULT ";
const NS: &str = "my-app-namespace";
const SA: &str = "my-app-sa";

// --- the child -----------------------------------------------------------------

/// `true` in the child process (then the test function runs [`probe`]).
fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Loads the chain from the environment, calls STS `GetCallerIdentity` twice
/// and prints the outcome.
async fn probe() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let (config, chain) = DefaultChain::builder().load(loader).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let mut arns = Vec::new();
    let mut error = None;
    for _ in 0..2 {
        match sts.get_caller_identity().send().await {
            Ok(id) => arns.push(id.arn().unwrap_or_default().to_owned()),
            Err(e) => error = Some(ErrorReport(&e).to_string()),
        }
    }
    let status = chain.status();
    let line = serde_json::json!({
        "source": status.source,
        "arns": arns,
        "error": error,
    });
    println!("{PREFIX}{line}");
}

// --- the parent ----------------------------------------------------------------

/// The outcome of one child run.
#[derive(Debug)]
struct Outcome {
    source: Option<String>,
    arns: Vec<String>,
    error: Option<String>,
    log: String,
}

impl Outcome {
    fn arn(&self) -> &str {
        assert_eq!(self.arns.len(), 2, "both calls answered: {self:#?}");
        assert_eq!(self.arns[0], self.arns[1], "{self:#?}");
        &self.arns[0]
    }
}

/// A process environment, built from nothing.
struct Env {
    vars: Vec<(String, String)>,
    home: tempfile::TempDir,
}

impl Env {
    /// Only moto's endpoint and region, an empty `HOME`, and IMDS disabled
    /// unless a case says otherwise: nothing for the chain to find.
    fn base(moto: &MotoStack) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut env = Self {
            vars: Vec::new(),
            home,
        };
        env.set("PATH", &std::env::var("PATH").unwrap_or_default());
        env.set("HOME", &env.home.path().display().to_string());
        env.set("AWS_ENDPOINT_URL", moto.endpoint_url());
        env.set("AWS_REGION", moto.region());
        env.set("AWS_EC2_METADATA_DISABLED", "true");
        env
    }

    fn set(&mut self, key: &str, value: &str) {
        self.unset(key);
        self.vars.push((key.into(), value.into()));
    }

    fn unset(&mut self, key: &str) {
        self.vars.retain(|(k, _)| k != key);
    }

    fn dir(&self) -> &Path {
        self.home.path()
    }

    /// A file under `HOME`, for token and profile files.
    fn write(&self, relative: &str, contents: &str) -> String {
        let path = self.dir().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// EKS's Pod Identity variables, for `agent_uri`.
    fn pod_identity(&mut self, agent_uri: &str) {
        let token = self.write(
            "eks-pod-identity-token",
            &format!("{}\n", token::mint(NS, SA)),
        );
        self.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_uri);
        self.set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token);
    }

    /// EKS's IRSA variables, for `role_arn`.
    ///
    /// moto 5 answers the unsigned `AssumeRoleWithWebIdentity` with a 500
    /// while IAM enforcement is on, so a case that reaches the web-identity
    /// link turns enforcement off first ([`irsa_reachable`]); the ARN that
    /// STS returns still shows which link signed.
    fn irsa(&mut self, role_arn: &str) {
        let token = self.write("irsa-token", &token::mint(NS, SA));
        self.set("AWS_WEB_IDENTITY_TOKEN_FILE", &token);
        self.set("AWS_ROLE_ARN", role_arn);
        self.set("AWS_ROLE_SESSION_NAME", "irsa-session");
    }

    /// Runs `test` in a child process with exactly these variables.
    async fn run(&self, test: &str) -> Outcome {
        let exe = std::env::current_exe().unwrap();
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(exe)
                .args(["--exact", test, "--nocapture", "--test-threads", "1"])
                .env_clear()
                .envs(self.vars.iter().map(|(k, v)| (k, v)))
                .env(CHILD, "1")
                .current_dir(self.dir())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("child finished")
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stdout
            .lines()
            .find_map(|l| l.find(PREFIX).map(|at| &l[at + PREFIX.len()..]))
            .unwrap_or_else(|| panic!("no result from the child:\n{stdout}\n{log}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let outcome = Outcome {
            source: v["source"].as_str().map(str::to_owned),
            arns: v["arns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
            error: v["error"].as_str().map(str::to_owned),
            log,
        };
        eprintln!("{test}: {outcome:#?}");
        outcome
    }
}

/// See [`Env::irsa`].
async fn irsa_reachable(moto: &MotoStack) {
    moto.set_enforcement(false).await.unwrap();
}

macro_rules! parent_or_child {
    ($name:literal) => {{
        if in_child() {
            probe().await;
            return;
        }
        match MotoStack::start_or_skip($name).await {
            Some(m) => m,
            None => return,
        }
    }};
}

fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" WARN ")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_keys_come_first() {
    let moto = parent_or_child!("env_keys_come_first");
    let agent = moto.fake_agent().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("AWS_ACCESS_KEY_ID", &moto.admin().access_key_id);
    env.set("AWS_SECRET_ACCESS_KEY", &moto.admin().secret_access_key);
    // A profile is configured too: the environment keys still win.
    env.write(
        ".aws/credentials",
        "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = never-used\n",
    );
    let out = env.run("env_keys_come_first").await;
    assert_eq!(out.source.as_deref(), Some("env"), "{out:#?}");
    assert_eq!(out.arn(), moto.admin().user_arn);
    assert_eq!(agent.stats().total, 0);
    assert!(warnings(&out.log).is_empty(), "{}", out.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_file_comes_next() {
    let moto = parent_or_child!("a_profile_file_comes_next");
    let mut env = Env::base(&moto);
    env.write(
        ".aws/credentials",
        &format!(
            "[laptop]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.admin().access_key_id,
            moto.admin().secret_access_key
        ),
    );
    env.set("AWS_PROFILE", "laptop");
    // IRSA set as well: the profile has precedence.
    env.irsa(&moto.node_role_arn());
    let out = env.run("a_profile_file_comes_next").await;
    assert_eq!(out.source.as_deref(), Some("profile:laptop"), "{out:#?}");
    assert_eq!(out.arn(), moto.admin().user_arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_in_a_kubernetes_pod_is_never_denied() {
    let moto = parent_or_child!("irsa_in_a_kubernetes_pod_is_never_denied");
    let imds = moto.fake_imds().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    env.unset("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    env.irsa(&moto.pod_role_arn());
    irsa_reachable(&moto).await;
    let out = env.run("irsa_in_a_kubernetes_pod_is_never_denied").await;
    assert_eq!(
        out.source.as_deref(),
        Some(format!("web-identity:{POD_ROLE_NAME}").as_str()),
        "{out:#?}"
    );
    assert!(
        out.arn()
            .contains(&format!(":assumed-role/{POD_ROLE_NAME}/irsa-session")),
        "{out:#?}"
    );
    assert!(!imds.was_contacted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_identity_when_nothing_earlier_is_configured() {
    let moto = parent_or_child!("pod_identity_when_nothing_earlier_is_configured");
    let agent = moto.fake_agent().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    env.pod_identity(&agent.uri());
    let out = env
        .run("pod_identity_when_nothing_earlier_is_configured")
        .await;
    assert_eq!(out.source.as_deref(), Some("pod-identity"), "{out:#?}");
    assert!(
        out.arn()
            .contains(&format!(":assumed-role/{POD_ROLE_NAME}/")),
        "{out:#?}"
    );
    assert_eq!(agent.stats().total, 1, "one fetch for both calls");
    assert!(warnings(&out.log).is_empty(), "{}", out.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_outside_kubernetes() {
    let moto = parent_or_child!("imds_outside_kubernetes");
    let imds = moto.fake_imds().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.unset("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    let out = env.run("imds_outside_kubernetes").await;
    assert_eq!(out.source.as_deref(), Some("imds:node-role"), "{out:#?}");
    assert!(out.arn().contains(":assumed-role/node-role/"), "{out:#?}");
    assert!(imds.was_contacted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_pod_with_no_source_is_refused_with_every_link_and_why() {
    let moto =
        parent_or_child!("a_kubernetes_pod_with_no_source_is_refused_with_every_link_and_why");
    let imds = moto.fake_imds().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    env.unset("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    let out = env
        .run("a_kubernetes_pod_with_no_source_is_refused_with_every_link_and_why")
        .await;
    assert_eq!(out.source, None, "no link won: {out:#?}");
    assert!(out.arns.is_empty());
    let err = out.error.as_deref().expect("an error");
    // Every link, in order, each on its own line with its reason.
    let links: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim_start().split_once(": ").map(|(link, _)| link))
        .filter(|link| !link.contains(' '))
        .collect();
    assert_eq!(
        links,
        [
            "env",
            "profile:default",
            "web-identity:unknown",
            "pod-identity",
            "imds"
        ],
        "{err}"
    );
    let line = |link: &str| {
        err.lines()
            .find(|l| l.trim_start().starts_with(&format!("{link}: ")))
            .unwrap()
            .to_owned()
    };
    assert!(line("env").contains("not set"), "{err}");
    assert!(
        line("web-identity:unknown").contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{err}"
    );
    assert!(
        line("pod-identity").contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{err}"
    );
    assert!(
        line("imds").contains("fallback policy is Deny")
            && line("imds").contains("node's IAM role"),
        "{err}"
    );
    assert_eq!(
        err.matches("fallback policy is Deny").count(),
        1,
        "once: {err}"
    );
    assert!(!imds.was_contacted(), "Deny must not even touch IMDS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_shadows_pod_identity_with_one_warning_naming_both() {
    let moto = parent_or_child!("irsa_shadows_pod_identity_with_one_warning_naming_both");
    let agent = moto.fake_agent().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    env.pod_identity(&agent.uri());
    // A different role for IRSA, so that the identity shows which link won.
    env.irsa(&moto.node_role_arn());
    irsa_reachable(&moto).await;
    let out = env
        .run("irsa_shadows_pod_identity_with_one_warning_naming_both")
        .await;
    assert_eq!(
        out.source.as_deref(),
        Some("web-identity:node-role"),
        "{out:#?}"
    );
    assert!(
        out.arn().contains(":assumed-role/node-role/irsa-session"),
        "{out:#?}"
    );
    assert_eq!(agent.stats().total, 0, "Pod Identity was not used");
    let warned = warnings(&out.log);
    assert_eq!(warned.len(), 1, "one WARN for two calls: {}", out.log);
    assert!(
        warned[0].contains("web-identity:node-role") && warned[0].contains("EKS Pod Identity"),
        "names both: {}",
        warned[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_file_is_reported_once_without_a_debug_dump() {
    let moto = parent_or_child!("a_missing_token_file_is_reported_once_without_a_debug_dump");
    let agent = moto.fake_agent().start().await.unwrap();
    let mut env = Env::base(&moto);
    env.set("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    env.pod_identity(&agent.uri());
    env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent");
    let out = env
        .run("a_missing_token_file_is_reported_once_without_a_debug_dump")
        .await;
    assert_eq!(out.source.as_deref(), Some("pod-identity"), "{out:#?}");
    let err = out.error.as_deref().expect("an error");
    assert_eq!(
        err.matches("cannot read token file /nonexistent").count(),
        1,
        "each cause once: {err}"
    );
    assert!(
        err.lines()
            .all(|l| !l.contains(" { ") && !l.contains("Some(")),
        "no Debug dump: {err}"
    );
    assert_eq!(agent.stats().total, 0, "no request without a token");
}
