//! `pod-identity-doctor check` as a process: exit codes, human output and the
//! JSON schema snapshot. The child gets a cleared environment plus what each
//! case sets, and only ever talks to loopback.

use std::process::{Command, Output};

use eks_pod_identity_testkit::imds::ImdsMode;
use eks_pod_identity_testkit::port::ClosedPort;
use eks_pod_identity_testkit::FakeImds;

const POD: &[(&str, &str)] = &[
    ("KUBERNETES_SERVICE_HOST", "10.100.0.1"),
    ("POD_IP", "10.0.1.5"),
    ("HOST_IP", "10.0.0.7"),
];

async fn doctor(args: Vec<String>, env: &'static [(&'static str, &'static str)]) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pod-identity-doctor"))
            .args(&args)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("runs pod-identity-doctor")
    })
    .await
    .unwrap()
}

/// `check` against `imds` with wide budgets (10 s per probe): an answer is never
/// cut off by a slow machine, and answered runs take no longer for it.
fn args(extra: &[&str], imds: &str) -> Vec<String> {
    budget_args(
        extra,
        imds,
        &[
            "--timeout",
            "20s",
            "--probe-timeout",
            "10s",
            "--connect-timeout",
            "5s",
        ],
    )
}

/// `check` with a 700 ms probe budget, for runs in which IMDS never answers the
/// token PUT; pair it with an assertion that the PUT reached the fake.
fn hang_args(extra: &[&str], imds: &str) -> Vec<String> {
    budget_args(
        extra,
        imds,
        &["--probe-timeout", "700ms", "--connect-timeout", "300ms"],
    )
}

fn budget_args(extra: &[&str], imds: &str, budget: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["check", "--no-ipv6", "--no-sts"]
        .iter()
        .chain(budget)
        .chain(&["--imds-endpoint", imds])
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `SHOW_OUTPUT=1 cargo test ... -- --nocapture` prints the human output (README samples).
fn show(text: &str) {
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("{text}");
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A reserved loopback port that refuses connections (held until dropped).
fn closed_port() -> ClosedPort {
    ClosedPort::v4().expect("reserve a loopback port")
}

/// Replaces RFC 3339 timestamps (`2026-11-27T10:00:00[.123]Z`) with `{{time}}`.
fn redact_times(s: &str) -> String {
    let b = s.as_bytes();
    let shape = |w: &[u8]| {
        w.len() >= 20
            && w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[7] == b'-'
            && w[10] == b'T'
            && w[13] == b':'
            && w[16] == b':'
    };
    let (mut out, mut last, mut i) = (String::new(), 0, 0);
    while i < b.len() {
        if shape(&b[i..]) {
            let mut j = i + 19;
            while j < b.len() && (b[j] == b'.' || b[j].is_ascii_digit()) {
                j += 1;
            }
            if j < b.len() && b[j] == b'Z' {
                out.push_str(&s[last..i]);
                out.push_str("{{time}}");
                i = j + 1;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaking_pod_exits_1_with_grouped_findings_and_probe_lines() {
    let imds = FakeImds::builder().start().await.unwrap();
    let o = doctor(args(&[], &imds.endpoint()), POD).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = out(&o);
    show(&text);
    assert!(
        text.starts_with("pod-identity-doctor check: 8 probes scanned, "),
        "{text}"
    );
    assert!(
        text.contains("\nimds-ipv4\n  HIGH      EPI-IMDS-001 "),
        "{text}"
    );
    assert!(text.contains("  CRITICAL  EPI-IMDS-003 "), "{text}");
    assert!(text.contains("\nprobes:\n  imds-ipv4           LEAK          token_obtained,role_readable,credentials_readable,imdsv1_closed"), "{text}");
    assert!(
        text.contains("  imds-ipv6           SKIPPED       skipped"),
        "{text}"
    );
    assert!(text.contains("\nverdict: LEAKS NODE ROLE ("), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_pod_exits_0() {
    let imds = FakeImds::builder()
        .mode(ImdsMode::HangPut)
        .start()
        .await
        .unwrap();
    let o = doctor(hang_args(&[], &imds.endpoint()), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // PROTECTED because the fake held the PUT, not because the probe stalled.
    let log = imds.stats().log;
    assert!(
        log.iter()
            .any(|r| r.method == "PUT" && r.path == "/latest/api/token" && r.status.is_none()),
        "{log:#?}"
    );
    let text = out(&o);
    show(&text);
    assert!(
        text.contains("  imds-ipv4           PROTECTED     token_put_unanswered,imdsv1_closed"),
        "{text}"
    );
    assert!(
        text.contains("\nverdict: PROTECTED (no finding at or above high; info "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_moves_the_threshold() {
    // In a pod without Pod Identity and with IMDS blocked: misconfigured (high).
    let o = doctor(args(&[], &closed_port()), POD).await;
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("\nverdict: MISCONFIGURED ("));
    let o = doctor(args(&["--fail-on", "critical"], &closed_port()), POD).await;
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn could_not_run_exits_2() {
    let o = doctor(args(&["--json"], "ftp://169.254.169.254"), &[]).await;
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        (v["command"].as_str(), v["exit_code"].as_i64()),
        (Some("check"), Some(2))
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid IMDS endpoint"));
    // Each is refused for its value, not as an unknown flag, and nothing runs.
    for (bad, why) in [
        (
            ["--timeout", "0"],
            "invalid value '0' for '--timeout <DURATION>': duration `0` must be greater than zero",
        ),
        (
            ["--probe-timeout", "soon"],
            "invalid value 'soon' for '--probe-timeout <DURATION>': invalid duration `soon` (use e.g. 5s or 500ms)",
        ),
    ] {
        let o = doctor(budget_args(&bad, &closed_port(), &[]), &[]).await;
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(err(&o).contains(why), "{bad:?}: {}", err(&o));
        assert!(out(&o).is_empty(), "{bad:?}: {}", out(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_matches_the_check_schema_snapshot() {
    let imds = FakeImds::builder().start().await.unwrap();
    let o = doctor(args(&["--json"], &imds.endpoint()), POD).await;
    assert_eq!(o.status.code(), Some(1));
    let got = redact_times(&out(&o).replace(&imds.endpoint(), "http://127.0.0.1:{{port}}"));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapshots/check.json"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        // Never compare with what was just written: rewrite, then fail, so the
        // new snapshot is reviewed (git diff) and checked by a second run.
        std::fs::write(path, got.replace(env!("CARGO_PKG_VERSION"), "{{version}}")).unwrap();
        panic!(
            "UPDATE_SNAPSHOTS: rewrote {path}; review the diff and rerun without UPDATE_SNAPSHOTS"
        );
    }
    let expected = std::fs::read_to_string(path)
        .unwrap()
        .replace("{{version}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(got, expected);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["verdict"], "leaks_node_role");
    assert_eq!(v["probes"].as_array().unwrap().len(), 8);
}
