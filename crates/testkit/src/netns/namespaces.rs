//! The namespaces of a node and their names (`epi-<pid>-<n>-<suffix>`), and the
//! sweep of namespaces left behind by killed test processes.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use super::command::run_ip;

/// Where `ip netns add` creates namespaces.
pub(super) const NETNS_DIR: &str = "/var/run/netns";
const NAME_PREFIX: &str = "epi-";

/// The namespaces of an [`EksNode`](super::EksNode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netns {
    /// An ordinary (non-hostNetwork) pod.
    Pod,
    /// The node's host network: the agent, moto, forwarding, block rules.
    Node,
    /// The instance metadata service.
    Imds,
}

impl Netns {
    fn suffix(self) -> &'static str {
        match self {
            Netns::Pod => "pod",
            Netns::Node => "node",
            Netns::Imds => "imds",
        }
    }
}

impl std::fmt::Display for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.suffix())
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh, unique prefix for one node's namespaces: `epi-<pid>-<n>`.
pub(super) fn new_base() -> String {
    format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The namespace names of one node.
#[derive(Debug)]
pub(super) struct Names {
    pub(super) pod: String,
    pub(super) node: String,
    pub(super) imds: String,
    /// The REJECT sink (only with [`BlockMode::Reject`](super::BlockMode::Reject)).
    pub(super) sink: Option<String>,
}

impl Names {
    /// The names under `base`; `with_sink` adds the REJECT sink.
    pub(super) fn new(base: &str, with_sink: bool) -> Self {
        Self {
            pod: format!("{base}-pod"),
            node: format!("{base}-node"),
            imds: format!("{base}-imds"),
            sink: with_sink.then(|| format!("{base}-blk")),
        }
    }

    /// The name of `ns`.
    pub(super) fn get(&self, ns: Netns) -> &str {
        match ns {
            Netns::Pod => &self.pod,
            Netns::Node => &self.node,
            Netns::Imds => &self.imds,
        }
    }

    /// Every name, the REJECT sink (if any) last.
    pub(super) fn all(&self) -> Vec<String> {
        let mut v = vec![self.pod.clone(), self.node.clone(), self.imds.clone()];
        v.extend(self.sink.clone());
        v
    }
}

/// Deletes namespaces left by test processes that no longer exist (killed before
/// their `Drop` ran).
pub(super) fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_ip(&["netns", "del", &name]);
        }
    }
}
