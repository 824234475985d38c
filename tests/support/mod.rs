//! Shared by the end-to-end test binaries (`tests/e2e.rs`, `tests/e2e_node.rs`):
//! the `s3_reader` example binary they run, rebuilt first so that a test never
//! runs code older than the sources; the kubelet's projected token volume;
//! the parsed output of `s3_reader --watch`.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod projected;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `s3_reader` example, built by `cargo build --example s3_reader` once per
/// test binary (a no-op of a second or two when it is up to date).
///
/// The build selects `--workspace` like `scripts/test.sh` does, so it reuses the
/// dependency builds of the test run instead of compiling a second feature set.
/// Panics with cargo's output if the build fails: a stale or missing binary is
/// never used, with or without `CI=true`.
pub fn s3_reader() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_s3_reader)
}

/// [`s3_reader`] from async code: the build runs on a blocking thread.
pub async fn s3_reader_async() -> &'static Path {
    tokio::task::spawn_blocking(s3_reader)
        .await
        .expect("building s3_reader panicked")
}

fn build_s3_reader() -> PathBuf {
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    // Cargo gives this test process the variables it gives a crate at build
    // time (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR …). Build scripts that
    // track them (ring's does) would see other values than in the test run's
    // own build and rerun, rebuilding half the dependency tree twice per run.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_crates) {
            cmd.env_remove(&key);
        }
    }
    cmd.args(["build", "--workspace", "--example", "s3_reader"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest);
    cmd.args(profile_args());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} to build s3_reader: {e}", cargo.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`cargo build --example s3_reader` failed ({}):\n{stderr}",
        out.status
    );
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "s3_reader")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    match exe {
        Some(p) if p.is_file() => p,
        other => panic!(
            "`cargo build --example s3_reader` succeeded but named no executable \
             ({other:?}):\n{stderr}"
        ),
    }
}

/// Whether cargo sets `key` for the crate it builds or runs (not user
/// configuration such as `CARGO_HOME` or `CARGO_TARGET_DIR`).
fn set_by_cargo_for_crates(key: &str) -> bool {
    const NAMES: &[&str] = &[
        "CARGO",
        "OUT_DIR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_BIN_EXE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
    ];
    NAMES.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `--release` / `--profile NAME` matching the profile this test binary was
/// built with (`<target>/<profile>/deps/<test>`), so the example comes from the
/// same build.
fn profile_args() -> Vec<String> {
    let dir = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?.parent()?;
        Some(profile_dir.file_name()?.to_string_lossy().into_owned())
    });
    match dir.as_deref() {
        None | Some("debug") => Vec::new(),
        Some("release") => vec!["--release".into()],
        Some(other) => vec!["--profile".into(), other.into()],
    }
}
