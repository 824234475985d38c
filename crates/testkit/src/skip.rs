//! Skipped tests, made visible and countable.
//!
//! A test that cannot run here (not root, no `moto_server`, no IPv6 loopback)
//! returns early, and `cargo test` reports it `ok`. So that a partial run is
//! never mistaken for the full proof, every skip goes through [`skip`]: it prints
//! `SKIPPED …` to stderr and, when [`LOG_ENV`] names a file (`scripts/test.sh`
//! sets it), appends one line `need<TAB>test<TAB>why` to it. `scripts/test.sh`
//! counts those lines and ends with `PARTIAL: N tests skipped (…)` instead of
//! `all checks passed`.
//!
//! Under `CI=true` nothing skips: [`skip`] panics with the reason, so the test fails.

use std::io::Write as _;

/// The environment variable naming the file skips are appended to.
pub const LOG_ENV: &str = "EPI_SKIP_LOG";

/// What a skipped test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Need {
    /// Root (CAP_NET_ADMIN) for network namespaces.
    Root,
    /// `moto_server` (`scripts/ensure-moto.sh`).
    Moto,
    /// An IPv6 loopback (`[::1]`).
    Ipv6,
}

impl Need {
    /// The word written to the skip log (`root`, `moto`, `ipv6`).
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Root => "root",
            Need::Moto => "moto",
            Need::Ipv6 => "ipv6",
        }
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `true` when `CI` is `true`: every skip is then a failure.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the running test, which needs `need`; `label` names it for the reader,
/// `why` says what is missing and how to get it.
///
/// Prints `SKIPPED <test> (needs <need>): <why>` to stderr and appends a line to
/// the file named by [`LOG_ENV`], if set. The test is identified by its test
/// binary and libtest thread name (`netns/hop_limit_2_reaches_the_pod`), falling
/// back to `label`, so a test that skips twice is counted once.
///
/// # Panics
///
/// Under `CI=true` (see [`ci`]), always: a CI run must not skip. Also when the
/// log file cannot be written (a skip that cannot be counted must not pass).
pub fn skip(label: &str, need: Need, why: &str) {
    let why = one_line(why);
    if ci() {
        panic!("CI=true: {label} cannot be skipped (needs {need}): {why}");
    }
    let test = test_id(label);
    eprintln!("SKIPPED {test} (needs {need}): {why}");
    let Some(path) = std::env::var_os(LOG_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!("{need}\t{test}\t{why}\n");
    // One `write` of one short line with O_APPEND: lines from tests running in
    // parallel (threads or processes) do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| {
            panic!(
                "cannot record the skip of {test} in {}={}: {e}",
                LOG_ENV,
                std::path::Path::new(&path).display()
            )
        });
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r', '\t'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<test binary>/<libtest thread name>`, or `label` outside libtest.
fn test_id(label: &str) -> String {
    let thread = std::thread::current();
    let name = thread.name().filter(|n| *n != "main" && !n.is_empty());
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| strip_hash(&s).to_owned());
    match (binary, name) {
        (Some(b), Some(n)) => format!("{b}/{n}"),
        (None, Some(n)) => n.to_owned(),
        (_, None) => one_line(label),
    }
}

/// `netns-0123456789abcdef` → `netns` (cargo's metadata hash on test binaries).
fn strip_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            base
        }
        _ => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_binary_and_the_test() {
        assert_eq!(strip_hash("netns-0123456789abcdef"), "netns");
        assert_eq!(strip_hash("check_netns-fedcba9876543210"), "check_netns");
        assert_eq!(strip_hash("pod-identity-doctor"), "pod-identity-doctor");
        // libtest runs each test on a thread named after it.
        let id = test_id("label");
        assert!(
            id.ends_with("/skip::tests::ids_name_the_binary_and_the_test"),
            "{id}"
        );
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\n  b\tc\r\n"), "a b c");
    }
}
