//! The processes the node runs: `ip` (and `ip netns exec`) commands, programs
//! run with a timeout, and the wait for a killed process to leave its namespace.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::error::NetnsError;

pub(super) fn ip_program() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("ip")
}

fn check_output(command: &str, out: std::io::Result<Output>) -> Result<(), NetnsError> {
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(NetnsError::Command {
            command: command.to_owned(),
            detail: format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Err(e) => Err(NetnsError::Command {
            command: command.to_owned(),
            detail: format!("cannot run {}: {e}", ip_program()),
        }),
    }
}

pub(super) fn run_ip(args: &[&str]) -> Result<(), NetnsError> {
    let out = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output();
    check_output(&format!("ip {}", args.join(" ")), out)
}

/// `ip -n <ns> <args…>`.
pub(super) fn run_ipn(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    run_ip(&v)
}

/// Adds each `(namespace, device, address/prefix)`; IPv6 ones with `nodad`,
/// so they are usable at once (no tentative phase).
pub(super) fn add_addrs(addrs: &[(&str, &str, &str)]) -> Result<(), NetnsError> {
    for &(ns, dev, a) in addrs {
        if a.contains(':') {
            run_ipn(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
        } else {
            run_ipn(ns, &["addr", "add", a, "dev", dev])?;
        }
    }
    Ok(())
}

/// `ip -n <ns> [-6] route add <dest> via <via> [table <table>]` (`-6` when
/// `via` is an IPv6 address).
pub(super) fn add_route(
    ns: &str,
    dest: &str,
    via: &str,
    table: Option<&str>,
) -> Result<(), NetnsError> {
    let mut args = if via.contains(':') {
        vec!["-6"]
    } else {
        vec![]
    };
    args.extend_from_slice(&["route", "add", dest, "via", via]);
    if let Some(t) = table {
        args.extend_from_slice(&["table", t]);
    }
    run_ipn(ns, &args)
}

/// Creates a veth pair: `name` inside `ns`, its peer `peer` inside `peer_ns`.
pub(super) fn add_veth(name: &str, ns: &str, peer: &str, peer_ns: &str) -> Result<(), NetnsError> {
    run_ip(&[
        "link", "add", name, "netns", ns, "type", "veth", "peer", "name", peer, "netns", peer_ns,
    ])
}

/// Polls `ip <args…>` (bounded by `deadline`) until `done` accepts its stdout;
/// gives up at once if the command fails.
pub(super) fn poll_ip(
    args: &[&str],
    deadline: Instant,
    pause: Duration,
    done: impl Fn(&[u8]) -> bool,
) {
    while Instant::now() < deadline {
        let out = Command::new(ip_program())
            .args(args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                if done(&o.stdout) {
                    return;
                }
                std::thread::sleep(pause);
            }
            _ => return,
        }
    }
}

/// Sets `key` (dotted, e.g. `net.ipv4.ip_forward`) to `value` inside `ns`.
pub(super) fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), NetnsError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = Command::new(ip_program())
        .args([
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo {value} > {path}"),
        ])
        .stdin(Stdio::null())
        .output();
    check_output(&format!("ip netns exec {ns} sysctl {key}={value}"), out)
}

pub(super) fn ns_command(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(ip_program());
    c.args(["netns", "exec", ns]).arg(program);
    for (k, _) in std::env::vars_os() {
        let key = k.to_string_lossy();
        let lower = key.to_ascii_lowercase();
        if key.starts_with("AWS_") || key.starts_with("KUBERNETES_") || lower.ends_with("_proxy") {
            c.env_remove(&k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `cmd` capturing stdout/stderr; kills it (by its PID) after `timeout` and
/// returns an error of kind `TimedOut` whose message contains what it printed.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut b);
        }
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut b);
        }
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{cmd:?} killed after {timeout:?}; stdout: {}; stderr: {}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        )),
    }
}

/// Waits until `pid` is gone or a zombie (a zombie holds no namespace).
pub(super) fn wait_exited(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    while Instant::now() < deadline {
        match std::fs::read_to_string(&stat) {
            Err(_) => return,
            Ok(s) => {
                let state = s
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.trim().chars().next());
                if matches!(state, Some('Z' | 'X')) {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("eks-pod-identity-testkit: teardown: process {pid} still running after {timeout:?}");
}
