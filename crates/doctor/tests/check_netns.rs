//! `pod-identity-doctor check --json` run as a real process inside the emulated
//! EKS node (`eks_pod_identity_testkit::netns::EksNode`): an ordinary pod and a
//! hostNetwork process, a real IMDS hop limit, REJECT / DROP / prohibit on real
//! packets, the IPv6 IMDS path, the FakeAgent at 169.254.170.23 and moto's STS.
//! Every outcome is asserted by rule id, probe outcome name, verdict and exit code.
//!
//! Needs root (skipped otherwise, except under `CI=true`); the identity tests also
//! need `moto_server` (same rule).
#![cfg(target_os = "linux")]

use std::time::Duration;

use eks_pod_identity_testkit::netns::{output_with_timeout, BlockMode, EksNode, Netns};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pod-identity-doctor");
/// Small per-probe budget: an unanswered token PUT costs 1 s, a dropped SYN 500 ms.
const FAST: &[&str] = &[
    "--timeout",
    "3s",
    "--probe-timeout",
    "1s",
    "--connect-timeout",
    "500ms",
];
/// For runs that talk to moto's STS (nothing is left unanswered there).
const STS: &[&str] = &[
    "--timeout",
    "6s",
    "--probe-timeout",
    "3s",
    "--connect-timeout",
    "500ms",
];
/// For runs expected to get answers (leaks): room for three sequential requests.
const ROOMY: &[&str] = &[
    "--timeout",
    "5s",
    "--probe-timeout",
    "3s",
    "--connect-timeout",
    "500ms",
];
/// For the block modes: a connect timeout past Linux's first SYN retransmission
/// (1 s). On real packets the ICMPv6 admin-prohibited for the *first* SYN from a
/// pod does not fail the connect (it arrives while `connect` still holds the
/// socket and is kept as a soft error); the one for the retransmitted SYN does,
/// at ~1.02 s. With a 500 ms or 1 s connect timeout, `prohibit` over IPv6 would
/// be indistinguishable from DROP.
const BLOCK: &[&str] = &[
    "--timeout",
    "5s",
    "--probe-timeout",
    "2s",
    "--connect-timeout",
    "1500ms",
];
const KILL_AFTER: Duration = Duration::from_secs(30);

/// The tests assert on timing (connect timeouts, unanswered PUTs): one emulated
/// node at a time, so a loaded 2-core runner does not turn answers into timeouts.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until no namespace of `node` holds a tentative IPv6 address (duplicate
/// address detection still running): until then IPv6 SYNs go unanswered, which
/// would read as DROP.
fn ipv6_ready(node: EksNode) -> EksNode {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for ns in node.namespace_names() {
        loop {
            let out = std::process::Command::new("ip")
                .args(["-n", &ns, "-6", "addr", "show", "tentative"])
                .output()
                .expect("ip");
            if out.stdout.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ns}: IPv6 DAD did not finish: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    node
}

/// One parsed run: the JSON document and the exit code.
struct Run {
    doc: Value,
    code: i32,
}

impl Run {
    fn verdict(&self) -> &str {
        self.doc["verdict"].as_str().unwrap_or_default()
    }

    fn probe(&self, name: &str) -> &Value {
        self.doc["probes"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["probe"] == name))
            .unwrap_or_else(|| panic!("no probe {name} in {:#}", self.doc))
    }

    fn outcomes(&self, probe: &str) -> Vec<String> {
        self.probe(probe)["outcomes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn status(&self, probe: &str) -> String {
        self.probe(probe)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Rule ids of the findings located at `probe`, sorted.
    fn ids(&self, probe: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .findings(probe)
            .iter()
            .filter_map(|f| f["rule_id"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    }

    fn findings(&self, probe: &str) -> Vec<&Value> {
        self.doc["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|f| f["location"]["probe"] == probe)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn finding(&self, rule_id: &str) -> &Value {
        self.doc["findings"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["rule_id"] == rule_id))
            .unwrap_or_else(|| panic!("no {rule_id} in {:#}", self.doc))
    }

    fn has(&self, rule_id: &str) -> bool {
        self.doc["findings"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["rule_id"] == rule_id))
    }
}

/// Runs `pod-identity-doctor check --json ARGS` in `ns` with exactly `env`.
fn doctor(node: &EksNode, ns: Netns, env: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd = node.command_in(ns, BIN);
    cmd.arg("check")
        .arg("--json")
        .args(args)
        .envs(env.iter().cloned());
    let out = output_with_timeout(&mut cmd, KILL_AFTER)
        .unwrap_or_else(|e| panic!("doctor {args:?} in {ns}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("doctor in {ns}: stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    let code = out.status.code().expect("exited, not killed");
    assert_eq!(
        doc["exit_code"].as_i64(),
        Some(i64::from(code)),
        "exit_code field vs process exit code: {doc:#}"
    );
    Run { doc, code }
}

fn args<'a>(budget: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    budget.iter().chain(extra).copied().collect()
}

const LEAK: &[&str] = &[
    "token_obtained",
    "role_readable",
    "credentials_readable",
    "imdsv1_closed",
];
const LEAK_IDS: &[&str] = &["EPI-IMDS-001", "EPI-IMDS-002", "EPI-IMDS-003"];

fn assert_leak(run: &Run, probe: &str) {
    assert_eq!(run.outcomes(probe), LEAK, "{probe}: {:#}", run.doc);
    assert_eq!(run.ids(probe), LEAK_IDS, "{probe}: {:#}", run.doc);
    assert_eq!(run.status(probe), "leak");
    let f = run
        .findings(probe)
        .into_iter()
        .find(|f| f["rule_id"] == "EPI-IMDS-002")
        .expect("role finding");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("node-role"),
        "{f:#}"
    );
}

fn assert_unanswered(run: &Run, probe: &str) {
    assert_eq!(
        run.outcomes(probe),
        ["token_put_unanswered", "imdsv1_closed"],
        "{probe}: {:#}",
        run.doc
    );
    assert_eq!(run.ids(probe), ["EPI-IMDS-013"], "{probe}: {:#}", run.doc);
    assert_eq!(run.status(probe), "protected");
}

/// The pod's "unanswered" PUTs (`families`: 2 for IPv4 and IPv6, 1 for one
/// of them) reached IMDS, which answered them with a hop limit of 1: the
/// answers died in the node's forwarding, the probe did not stall on the way
/// (the 1 s budget cannot fake a PROTECTED).
fn assert_puts_answered_with_hop_limit_1(node: &EksNode, puts_before: u64, families: u64) {
    let st = node.imds().stats();
    assert!(
        st.token_puts >= puts_before + families,
        "IMDS answered {} token PUTs during the run, expected at least {families} (one per address family probed)",
        st.token_puts - puts_before
    );
    assert!(
        st.put_hop_limits.iter().all(|h| *h == 1),
        "{:?}",
        st.put_hop_limits
    );
}

fn assert_agent_ok(run: &Run) {
    assert_eq!(run.ids("pod-identity-env"), Vec::<String>::new());
    assert_eq!(run.outcomes("pod-identity-env"), ["configured"]);
    assert_eq!(run.outcomes("pod-identity-token"), ["token_valid"]);
    assert_eq!(
        run.ids("pod-identity-agent"),
        ["EPI-PI-010"],
        "{:#}",
        run.doc
    );
    assert_eq!(run.outcomes("pod-identity-agent"), ["agent_ok"]);
}

#[test]
fn hop_limit_1_protects_the_pod_but_not_a_host_network_process() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(1)
        .start_or_skip("hop_limit_1_protects_the_pod_but_not_a_host_network_process")
        .map(ipv6_ready)
    else {
        return;
    };

    // An ordinary pod with a pod identity association.
    let puts = node.imds().stats().token_puts;
    let pod = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(FAST, &["--no-sts"]),
    );
    assert_unanswered(&pod, "imds-ipv4");
    assert_unanswered(&pod, "imds-ipv6");
    assert_puts_answered_with_hop_limit_1(&node, puts, 2);
    assert_eq!(
        pod.probe("imds-ipv6")["target"],
        "http://[fd00:ec2::254]",
        "default IPv6 endpoint"
    );
    assert_agent_ok(&pod);
    assert_eq!(pod.ids("identity"), ["EPI-ID-004"], "{:#}", pod.doc);
    assert_eq!(pod.outcomes("identity"), ["unverified"]);
    assert_eq!(pod.verdict(), "protected", "{:#}", pod.doc);
    assert_eq!(pod.code, 0, "{:#}", pod.doc);
    assert!(node.agent().stats().total > 0);

    // The same node, a hostNetwork process: one hop, the token answer arrives.
    let host = doctor(
        &node,
        Netns::Node,
        &node.pod_env(),
        &args(ROOMY, &["--no-sts"]),
    );
    assert_leak(&host, "imds-ipv4");
    assert_leak(&host, "imds-ipv6");
    assert_agent_ok(&host);
    assert_eq!(host.verdict(), "leaks_node_role", "{:#}", host.doc);
    assert_eq!(host.code, 1);

    // An ordinary pod without a pod identity association.
    let puts = node.imds().stats().token_puts;
    let bare = doctor(
        &node,
        Netns::Pod,
        &node.pod_env_without_pod_identity(),
        &args(FAST, &["--no-sts"]),
    );
    assert_unanswered(&bare, "imds-ipv4");
    assert_puts_answered_with_hop_limit_1(&node, puts, 2);
    assert_eq!(
        bare.ids("pod-identity-env"),
        ["EPI-PI-001"],
        "{:#}",
        bare.doc
    );
    assert_eq!(bare.outcomes("pod-identity-env"), ["not_configured"]);
    assert_eq!(bare.outcomes("pod-identity-agent"), ["skipped"]);
    assert_eq!(bare.verdict(), "misconfigured", "{:#}", bare.doc);
    assert_eq!(bare.code, 1);
}

#[test]
fn hop_limit_2_leaks_the_node_role_to_the_pod() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .start_or_skip("hop_limit_2_leaks_the_node_role_to_the_pod")
        .map(ipv6_ready)
    else {
        return;
    };
    let pod = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(ROOMY, &["--no-sts"]),
    );
    assert_leak(&pod, "imds-ipv4");
    assert_leak(&pod, "imds-ipv6");
    assert_agent_ok(&pod);
    assert_eq!(pod.verdict(), "leaks_node_role", "{:#}", pod.doc);
    assert_eq!(pod.code, 1);
    assert!(node.imds().stats().token_puts >= 2);
}

#[test]
fn ipv6_imds_path_at_hop_limit_1_and_2() {
    let _serial = serial();
    for hops in [1, 2] {
        let Some(node) = EksNode::builder()
            .hop_limit(hops)
            .start_or_skip("ipv6_imds_path_at_hop_limit_1_and_2")
            .map(ipv6_ready)
        else {
            return;
        };
        let v6 = node.imds_endpoint_v6();
        let budget = if hops == 1 { FAST } else { ROOMY };
        // At hop limit 1 the 1 s budget must not be what made a PUT
        // "unanswered": each run's PUTs must have reached IMDS.
        let reached_imds = |puts: u64, families: u64| {
            if hops == 1 {
                assert_puts_answered_with_hop_limit_1(&node, puts, families);
            }
        };
        // The flag.
        let puts = node.imds().stats().token_puts;
        let by_flag = doctor(
            &node,
            Netns::Pod,
            &node.pod_env(),
            &args(budget, &["--no-sts", "--imds-ipv6-endpoint", &v6]),
        );
        reached_imds(puts, 2);
        // The standard env var holding an IPv6 literal selects the IPv6 endpoint.
        let mut env = node.pod_env();
        env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), v6.clone()));
        let puts = node.imds().stats().token_puts;
        let by_env = doctor(&node, Netns::Pod, &env, &args(budget, &["--no-sts"]));
        reached_imds(puts, 2);
        for run in [&by_flag, &by_env] {
            assert_eq!(run.probe("imds-ipv6")["target"], v6.as_str());
            if hops == 1 {
                assert_unanswered(run, "imds-ipv6");
                assert_eq!(run.code, 0, "{:#}", run.doc);
                assert_eq!(run.verdict(), "protected");
            } else {
                assert_leak(run, "imds-ipv6");
                assert_eq!(run.code, 1, "{:#}", run.doc);
                assert_eq!(run.verdict(), "leaks_node_role");
            }
        }
        // The IPv6 path alone: the IPv4 endpoint points at nothing that answers.
        let puts = node.imds().stats().token_puts;
        let only_v6 = doctor(
            &node,
            Netns::Pod,
            &node.pod_env(),
            &args(
                budget,
                &["--no-sts", "--imds-endpoint", "http://169.254.10.2:9"],
            ),
        );
        assert_eq!(only_v6.outcomes("imds-ipv4"), ["connect_refused"]);
        reached_imds(puts, 1);
        if hops == 1 {
            assert_unanswered(&only_v6, "imds-ipv6");
        } else {
            assert_leak(&only_v6, "imds-ipv6");
        }
    }
}

#[test]
fn imdsv1_open_leaks_even_at_hop_limit_1() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(1)
        .imdsv1(true)
        .start_or_skip("imdsv1_open_leaks_even_at_hop_limit_1")
        .map(ipv6_ready)
    else {
        return;
    };
    let puts = node.imds().stats().token_puts;
    let pod = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(FAST, &["--no-sts"]),
    );
    // "unanswered" because the answers died at hop limit 1, not the budget.
    assert_puts_answered_with_hop_limit_1(&node, puts, 2);
    for probe in ["imds-ipv4", "imds-ipv6"] {
        assert_eq!(
            pod.outcomes(probe),
            ["token_put_unanswered", "imdsv1_open"],
            "{probe}: {:#}",
            pod.doc
        );
        assert_eq!(pod.ids(probe), ["EPI-IMDS-004", "EPI-IMDS-013"]);
        assert_eq!(pod.status(probe), "leak");
    }
    let f = pod.finding("EPI-IMDS-004");
    assert_eq!(f["severity"], "critical");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("role node-role"),
        "{f:#}"
    );
    assert_eq!(pod.verdict(), "leaks_node_role");
    assert_eq!(pod.code, 1);
}

#[test]
fn imds_disabled_answers_403() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(1)
        .imds_disabled(true)
        .start_or_skip("imds_disabled_answers_403")
        .map(ipv6_ready)
    else {
        return;
    };
    for ns in [Netns::Pod, Netns::Node] {
        let run = doctor(&node, ns, &node.pod_env(), &args(FAST, &["--no-sts"]));
        for probe in ["imds-ipv4", "imds-ipv6"] {
            assert_eq!(
                run.outcomes(probe),
                ["disabled"],
                "{ns} {probe}: {:#}",
                run.doc
            );
            assert_eq!(run.ids(probe), ["EPI-IMDS-014"]);
            assert_eq!(run.status(probe), "protected");
        }
        assert_eq!(run.verdict(), "protected", "{ns}: {:#}", run.doc);
        assert_eq!(run.code, 0);
    }
}

#[test]
fn no_instance_profile_answers_404() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .no_role(true)
        .start_or_skip("no_instance_profile_answers_404")
        .map(ipv6_ready)
    else {
        return;
    };
    let pod = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(ROOMY, &["--no-sts"]),
    );
    for probe in ["imds-ipv4", "imds-ipv6"] {
        assert_eq!(
            pod.outcomes(probe),
            ["token_obtained", "no_instance_profile", "imdsv1_closed"],
            "{probe}: {:#}",
            pod.doc
        );
        assert_eq!(pod.ids(probe), ["EPI-IMDS-001", "EPI-IMDS-015"]);
        // Reachable, but no role to take today: the token finding is medium.
        let token = pod
            .findings(probe)
            .into_iter()
            .find(|f| f["rule_id"] == "EPI-IMDS-001")
            .expect("token finding");
        assert_eq!(token["severity"], "medium");
    }
    assert_eq!(pod.verdict(), "protected", "{:#}", pod.doc);
    assert_eq!(pod.code, 0);

    // With --fail-on medium the reachable IMDS fails the run.
    let strict = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(ROOMY, &["--no-sts", "--fail-on", "medium"]),
    );
    assert_eq!(strict.verdict(), "leaks_node_role");
    assert_eq!(strict.code, 1);
}

/// Each block mode in `node` (pod subnet only): the pod sees its own outcome, a
/// hostNetwork process still reaches IMDS.
fn blocked(mode: BlockMode, test: &str, outcome: &str, rule: &str) {
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .block(mode)
        .start_or_skip(test)
        .map(ipv6_ready)
    else {
        return;
    };
    let pod = doctor(
        &node,
        Netns::Pod,
        &node.pod_env(),
        &args(BLOCK, &["--no-sts"]),
    );
    for probe in ["imds-ipv4", "imds-ipv6"] {
        assert_eq!(pod.outcomes(probe), [outcome], "{probe}: {:#}", pod.doc);
        assert_eq!(pod.ids(probe), [rule], "{probe}: {:#}", pod.doc);
        assert_eq!(pod.status(probe), "protected");
    }
    assert_agent_ok(&pod);
    assert_eq!(pod.verdict(), "protected", "{:#}", pod.doc);
    assert_eq!(pod.code, 0);

    let host = doctor(
        &node,
        Netns::Node,
        &node.pod_env(),
        &args(ROOMY, &["--no-sts"]),
    );
    assert_leak(&host, "imds-ipv4");
    assert_eq!(host.code, 1);
}

#[test]
fn reject_is_connection_refused() {
    let _serial = serial();
    blocked(
        BlockMode::Reject,
        "reject_is_connection_refused",
        "connect_refused",
        "EPI-IMDS-010",
    );
}

#[test]
fn drop_is_connect_timeout() {
    let _serial = serial();
    blocked(
        BlockMode::Drop,
        "drop_is_connect_timeout",
        "connect_timeout",
        "EPI-IMDS-012",
    );
}

#[test]
fn prohibit_is_unreachable() {
    let _serial = serial();
    blocked(
        BlockMode::Prohibit,
        "prohibit_is_unreachable",
        "connect_unreachable",
        "EPI-IMDS-011",
    );
}

#[test]
fn identity_through_moto_sts() {
    let _serial = serial();
    let Some(node) = EksNode::builder()
        .hop_limit(2)
        .with_moto(true)
        .start_or_skip("identity_through_moto_sts")
        .map(ipv6_ready)
    else {
        return;
    };
    let sts = node.moto_endpoint_from_pod().expect("moto runs");
    let sts_args = args(STS, &["--sts-endpoint", &sts]);

    // With Pod Identity: the pod role, not the node role (which IMDS also serves here).
    let pi = doctor(&node, Netns::Pod, &node.pod_env(), &sts_args);
    assert_eq!(pi.ids("identity"), ["EPI-ID-003"], "{:#}", pi.doc);
    assert_eq!(pi.outcomes("identity"), ["own_role"]);
    let ev = pi.finding("EPI-ID-003")["evidence"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ev.contains("chain source pod-identity"), "{ev}");
    assert!(
        ev.contains("assumed-role/my-app-pod-identity-role/"),
        "{ev}"
    );
    assert!(ev.contains("node role node-role"), "{ev}");
    assert!(!pi.has("EPI-ID-001"));
    assert_leak(&pi, "imds-ipv4");
    assert_eq!(pi.verdict(), "leaks_node_role");
    assert_eq!(pi.code, 1);

    // Without Pod Identity, in Kubernetes: our chain's fallback policy is Deny,
    // so it resolves nothing (EPI-ID-002) — although IMDS itself leaks.
    let bare = doctor(
        &node,
        Netns::Pod,
        &node.pod_env_without_pod_identity(),
        &sts_args,
    );
    assert_eq!(bare.ids("identity"), ["EPI-ID-002"], "{:#}", bare.doc);
    assert_eq!(bare.outcomes("identity"), ["unresolved"]);
    assert!(
        bare.finding("EPI-ID-002")["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("fallback policy is Deny"),
        "{:#}",
        bare.doc
    );
    assert_eq!(bare.ids("pod-identity-env"), ["EPI-PI-001"]);
    assert_leak(&bare, "imds-ipv4");
    assert_eq!(bare.verdict(), "leaks_node_role");
    assert_eq!(bare.code, 1);

    // Without Pod Identity and outside Kubernetes (no KUBERNETES_SERVICE_HOST: the
    // chain's fallback is Allow, like `--fallback allow`): it takes the node role
    // through IMDS, and STS confirms it.
    let env: Vec<(String, String)> = node
        .pod_env_without_pod_identity()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("KUBERNETES_"))
        .collect();
    let fallback = doctor(&node, Netns::Pod, &env, &sts_args);
    assert_eq!(
        fallback.ids("identity"),
        ["EPI-ID-001"],
        "{:#}",
        fallback.doc
    );
    assert_eq!(fallback.outcomes("identity"), ["node_role"]);
    let f = fallback.finding("EPI-ID-001");
    let ev = f["evidence"].as_str().unwrap_or_default();
    assert!(ev.contains("chain source imds:node-role"), "{ev}");
    assert!(ev.contains("assumed-role/node-role/"), "{ev}");
    // Not in a pod by its env: reported, but as the instance role (info).
    assert_eq!(f["severity"], "info");
    assert_eq!(fallback.verdict(), "leaks_node_role");
    assert_eq!(fallback.code, 1);
}
