//! End to end: the `s3_reader` example as a real process (rebuilt first, see
//! `support::s3_reader`), against moto (S3 + STS + IAM with signature and
//! policy enforcement) and the testkit's fake Pod Identity Agent minting real
//! moto credentials. Every run uses the provider's default settings.
//!
//! Needs `scripts/ensure-moto.sh` (run by `scripts/test.sh`). Without moto the
//! tests skip with a reason, except under `CI=true`, where they fail.

mod support;

use eks_pod_identity_testkit::agent::{FakeAgent, RequestRecord, MSG_EXPIRED};
use eks_pod_identity_testkit::fault::{BadBody, Fault, FaultPlan};
use eks_pod_identity_testkit::imds::FakeImds;
use eks_pod_identity_testkit::stack::{MotoStack, APP_BUCKET, OTHER_BUCKET};
use eks_pod_identity_testkit::token::{self, TokenBuilder};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::projected::ProjectedToken;
use support::watch::WatchRun;

const NS: &str = "my-app-namespace";
const SA: &str = "my-app-sa";

struct Pod {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Pod {
    /// A pod whose token file holds `token`, with the env EKS injects.
    fn with_pod_identity(agent_uri: &str, moto: &MotoStack, token: &str) -> Self {
        let pod = Self::bare(moto);
        let token_path = pod.dir.path().join("eks-pod-identity-token");
        std::fs::write(&token_path, format!("{token}\n")).unwrap();
        pod.with_token_file(agent_uri, &token_path)
    }

    /// This pod with the env EKS injects: `agent_uri` and `token_path`.
    fn with_token_file(mut self, agent_uri: &str, token_path: &std::path::Path) -> Self {
        self.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_uri);
        self.set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            &token_path.display().to_string(),
        );
        self
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

    /// Runs `s3_reader args` and echoes its output.
    async fn run(&self, args: &[&str]) -> Output {
        let out = self.run_quiet(args).await;
        eprintln!(
            "$ s3_reader {}\n[exit {:?}]\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `s3_reader args` with exactly this pod's environment.
    async fn run_quiet(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(support::s3_reader_async().await)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
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

/// A missing token file, as a new user first meets it: the error, then each
/// cause once on its own line, and no `Debug` dump. Needs no moto: the
/// request fails before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_file_prints_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("eks-pod-identity-token");
    let pod = Pod {
        env: vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:1".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("KUBERNETES_SERVICE_HOST".into(), "10.100.0.1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("HOME".into(), "/nonexistent".into()),
        ],
        dir,
    }
    .with_token_file("http://127.0.0.1:1/v1/credentials", &missing);
    let out = pod.run(&["ls", &format!("s3://{APP_BUCKET}")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The report: the `error:` line and its `caused by:` lines (log lines,
    // which carry the chain on one line, are not part of it).
    let report: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("error: "))
        .take_while(|l| l.starts_with("error: ") || l.starts_with("  caused by: "))
        .collect();
    let io = std::fs::read(&missing).unwrap_err().to_string();
    let read = format!("cannot read token file {}", missing.display());
    for expected in [
        "  caused by: could not get credentials from pod-identity".to_owned(),
        format!("  caused by: {read}; check the projected service-account volume is mounted (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"),
        format!("  caused by: {io}"),
    ] {
        assert_eq!(
            report.iter().filter(|l| **l == expected).count(),
            1,
            "{expected:?} once in {report:#?}"
        );
    }
    let report = report.join("\n");
    assert_eq!(report.matches(&read).count(), 1, "{report}");
    assert_eq!(report.matches(&io).count(), 1, "{report}");
    assert!(
        !err.contains(" { ") && !err.contains("Some(") && !err.contains("DispatchFailure("),
        "a Debug dump: {err}"
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

/// 20 s credentials. On the default policy each set is refreshed 10–15 s after
/// receipt (advisory window A = L/2, refresh drawn in [exp − A, exp − A/2]) and
/// callers wait only in its last 5 s (mandatory window M = min(60 s, L/4)).
const LIFETIME: Duration = Duration::from_secs(20);
/// Long enough for 3 rotations even when every refresh loses a 5 s attempt to
/// a hung agent (rotations then come at most 20 s apart).
const WATCH_SECS: u64 = 64;
/// Pause between the requests of one app.
const INTERVAL_MS: u64 = 250;
/// Rotations every scenario must see.
const MIN_ROTATIONS: usize = 3;

/// One app against one fake agent, through a refresh fault.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    /// The answers to the first agent requests of every refresh after the cold
    /// start; the request after them is answered normally.
    faults: Vec<Fault>,
    /// Delay before every agent answer.
    latency: Duration,
    /// The token is projected like the kubelet does and expires mid-run; the
    /// agent swaps in a fresh one at the moment it refuses the old one.
    token_swap: bool,
    /// Only the cold start may wait for credentials.
    no_wait: bool,
}

impl Scenario {
    fn faults(name: &'static str, faults: Vec<Fault>) -> Self {
        Self {
            name,
            faults,
            latency: Duration::ZERO,
            token_swap: false,
            no_wait: false,
        }
    }

    /// The cold start answered normally, then for every refresh `faults` then
    /// a normal answer (more refreshes than any run can make).
    fn plan(&self) -> FaultPlan {
        let mut plan = FaultPlan::new().then_ok(1);
        if self.faults.is_empty() {
            return plan;
        }
        for _ in 0..32 {
            for f in &self.faults {
                plan = plan.then(f.clone());
            }
            plan = plan.then_ok(1);
        }
        plan
    }
}

/// What one scenario produced.
struct ScenarioRun {
    scenario: Scenario,
    output: Output,
    log: Vec<RequestRecord>,
    /// Token swaps done by the kubelet stand-in.
    swaps: usize,
}

async fn run_scenario(moto: &MotoStack, scenario: Scenario) -> ScenarioRun {
    let mut agent = moto
        .fake_agent()
        .lifetime(LIFETIME)
        .latency(scenario.latency)
        .faults(scenario.plan());
    let swapped = Arc::new(AtomicBool::new(false));
    let volume_dir = tempfile::tempdir().unwrap();
    let token_file = if scenario.token_swap {
        // Valid for the cold start and the first refresh, expired by a later one.
        let old = TokenBuilder::new(NS, SA)
            .expires_at(SystemTime::now() + Duration::from_secs(25))
            .build();
        let volume = Arc::new(ProjectedToken::create(volume_dir.path(), &old).unwrap());
        let (swapped, kubelet) = (swapped.clone(), volume.clone());
        agent = agent.on_expired_token(move || {
            if !swapped.swap(true, Ordering::SeqCst) {
                kubelet.swap(&token::mint(NS, SA)).expect("token swap");
            }
        });
        volume.path()
    } else {
        let path = volume_dir.path().join("eks-pod-identity-token");
        std::fs::write(&path, format!("{}\n", token::mint(NS, SA))).unwrap();
        path
    };
    let agent: FakeAgent = agent.start().await.unwrap();
    let pod = Pod::bare(moto).with_token_file(&agent.uri(), &token_file);
    let (watch, interval) = (WATCH_SECS.to_string(), INTERVAL_MS.to_string());
    let output = pod
        .run_quiet(&[
            "--watch",
            &watch,
            "--interval-ms",
            &interval,
            "ls",
            &format!("s3://{APP_BUCKET}"),
        ])
        .await;
    ScenarioRun {
        scenario,
        output,
        log: agent.stats().log,
        swaps: usize::from(swapped.load(Ordering::SeqCst)),
    }
}

impl ScenarioRun {
    /// Checks the invariants; returns a one-line report and the violations.
    fn check(&self) -> (String, Vec<String>) {
        let sc = &self.scenario;
        let mut bad = Vec::new();
        let stderr = stderr(&self.output);
        let run = match WatchRun::parse(&stderr) {
            Ok(r) => r,
            Err(e) => {
                let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
                let msg = format!(
                    "unreadable s3_reader output ({e}), exit {:?}; stderr ends:\n{}",
                    self.output.status.code(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
                return (format!("{}: {msg}", sc.name), vec![msg]);
            }
        };

        // No failed request.
        let failed = run.failed();
        if !failed.is_empty() || run.summary.failures != 0 || !self.output.status.success() {
            bad.push(format!(
                "{} of {} requests failed (exit {:?}), first: {:?}",
                failed.len().max(run.summary.failures as usize),
                run.summary.requests,
                self.output.status.code(),
                failed
                    .iter()
                    .take(3)
                    .map(|r| format!("#{} {}", r.seq, r.error.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
            ));
        }

        // At least MIN_ROTATIONS rotations, and none earlier than the advisory
        // window allows: a set of 20 s credentials is kept at least L − A = 10 s,
        // so a run of WATCH_SECS fetches at most WATCH_SECS / 10 + 1 sets.
        let used = run.credentials_used();
        let rotations = used.len().saturating_sub(1);
        let max_rotations = (WATCH_SECS / (LIFETIME / 2).as_secs()) as usize;
        if rotations < MIN_ROTATIONS {
            bad.push(format!(
                "only {rotations} rotations seen by the app (need {MIN_ROTATIONS})"
            ));
        }
        if rotations > max_rotations {
            bad.push(format!(
                "{rotations} rotations in {WATCH_SECS} s: refreshed before the advisory window"
            ));
        }

        // Agent requests: fault-free credential answers, injected faults, others.
        let good: Vec<String> = self
            .log
            .iter()
            .filter(|r| r.fault.is_none() && r.status == Some(200))
            .filter_map(|r| {
                r.expiration
                    .map(eks_pod_identity::protocol::rfc3339::format)
            })
            .collect();
        let injected = self.log.iter().filter(|r| r.fault.is_some()).count();
        let unfinished = self
            .log
            .iter()
            .filter(|r| r.fault.is_none() && r.status.is_none())
            .count();
        let others: Vec<&RequestRecord> = self
            .log
            .iter()
            .filter(|r| r.fault.is_none() && r.status.is_some_and(|s| s != 200))
            .collect();

        // Every credential the app used came from a whole, valid agent answer
        // (never a faulted one: expired on arrival, truncated, oversized …).
        for exp in &used {
            if !good.contains(exp) {
                bad.push(format!(
                    "the app used credentials expiring {exp} that no fault-free agent answer carried"
                ));
            }
        }
        // Fetches ≈ rotations: each fault-free answer became the credentials in
        // use, except at most one that arrived after the last request (or was
        // still being answered when the app exited). The injected faults are
        // the only other agent requests (counted apart, below).
        if good.len() + unfinished > used.len() + 1 {
            bad.push(format!(
                "{} fault-free agent answers (+{unfinished} unfinished) for {} credentials used: \
                 fetches not needed by any request",
                good.len(),
                used.len()
            ));
        }
        // Each rotation went through this scenario's faults (it tested what it says).
        if injected < sc.faults.len() * rotations {
            bad.push(format!(
                "{injected} injected faults for {rotations} rotations of {} each",
                sc.faults.len()
            ));
        }
        // No agent answer the scenario did not ask for (a 429 from the agent's
        // token bucket would mean a retry storm) except, with the token swap,
        // the one `400 token is expired` that triggered the swap.
        let expected_others = if sc.token_swap { 1 } else { 0 };
        if others.len() != expected_others
            || (sc.token_swap && others.iter().any(|r| r.status != Some(400)))
        {
            bad.push(format!(
                "unexpected agent answers {:?} (expected {expected_others} × 400 {MSG_EXPIRED:?})",
                others.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>()
            ));
        }
        if sc.token_swap && self.swaps != 1 {
            bad.push(format!(
                "the old token never expired at the agent ({} swaps): the swap was not exercised",
                self.swaps
            ));
        }
        if sc.no_wait && run.summary.callers_waited != 1 {
            bad.push(format!(
                "{} calls waited for credentials; only the cold start may",
                run.summary.callers_waited
            ));
        }
        let report = format!(
            "{:<24} requests {:>4}  failed {:>3}  rotations {}  agent: {} ok + {} faulted + {} other + {} unfinished  waited {}  {}",
            sc.name,
            run.summary.requests,
            failed.len(),
            rotations,
            good.len(),
            injected,
            others.len(),
            unfinished,
            run.summary.callers_waited,
            run.summary.raw,
        );
        (report, bad)
    }
}

/// The end-to-end bar, on default settings and 20 s credentials: zero
/// failed requests over at least 3 rotations through each agent fault during
/// refresh, fetches ≈ rotations, and with a 400 ms agent no request waiting
/// on the refresh. The scenarios are independent (one fake agent each, one
/// shared moto) and run concurrently: ~65 s in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_second_credentials_survive_every_refresh_fault_on_defaults() {
    let moto = moto_or_skip!("twenty_second_credentials_survive_every_refresh_fault_on_defaults");
    let internal = Fault::internal_error();
    let scenarios = vec![
        // Three 500s fail a whole fetch (3 attempts): served from the cache,
        // retried in the background.
        Scenario::faults(
            "agent_500s",
            vec![internal.clone(), internal.clone(), internal],
        ),
        Scenario::faults("truncated_json", vec![Fault::Malformed]),
        Scenario::faults("cut_off_body", vec![Fault::Body(BadBody::CutOff)]),
        Scenario::faults("plain_text_body", vec![Fault::Body(BadBody::PlainText)]),
        Scenario::faults(
            "one_mib_body",
            vec![Fault::Body(BadBody::Oversized(1 << 20))],
        ),
        Scenario::faults(
            "throttled_429s",
            vec![Fault::TooManyRequests, Fault::TooManyRequests],
        ),
        Scenario::faults("hanging_agent", vec![Fault::Hang]),
        Scenario::faults("expired_on_arrival", vec![Fault::ExpiredCredentials]),
        Scenario::faults(
            "upstream_expired_token",
            vec![Fault::expired_token_exception()],
        ),
        Scenario {
            token_swap: true,
            ..Scenario::faults("kubelet_token_swap", vec![])
        },
        Scenario {
            latency: Duration::from_millis(400),
            no_wait: true,
            ..Scenario::faults("slow_agent_400ms", vec![])
        },
    ];
    // Build the example before starting the clocks of the scenarios.
    support::s3_reader_async().await;
    let runs =
        futures_util::future::join_all(scenarios.into_iter().map(|sc| run_scenario(&moto, sc)))
            .await;
    let mut failures = Vec::new();
    for run in &runs {
        let (report, bad) = run.check();
        eprintln!("{report}");
        for b in bad {
            failures.push(format!("{}: {b}", run.scenario.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
