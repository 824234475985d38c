//! [`EksNode`]: an emulated EKS node made of Linux network namespaces, with the
//! production addresses and a **real** IMDS hop limit.
//!
//! ```text
//!  ┌───────── pod ─────────┐      ┌──────────────── node (host network) ───────────────┐      ┌──────── imds ────────┐
//!  │ s3_reader, doctor …   │ veth │ ip_forward=1                                       │ veth │ FakeImds             │
//!  │ eth0 169.254.10.2/30  ├──────┤ vpod 169.254.10.1   vimds 169.254.20.1             ├──────┤ eth0 169.254.20.2/30 │
//!  │      fd00:10::2/64    │      │      fd00:10::1          fd00:20::1                 │      │      fd00:20::2/64   │
//!  │ default via node      │      │ lo: 169.254.170.23, fd00:ec2::23 (FakeAgent :80)   │      │ lo: 169.254.169.254  │
//!  └───────────────────────┘      │ moto_server 0.0.0.0:PORT (S3/STS/IAM)              │      │     fd00:ec2::254    │
//!                                 │ ip rules for BlockMode (blackhole/prohibit/sink)   │      │ (:80, hop limit N)   │
//!                                 └────────────────────────────────────────────────────┘      └──────────────────────┘
//! ```
//!
//! The hop limit is what EC2 does: [`FakeImds`] sets `IP_TTL` / `IPV6_UNICAST_HOPS`
//! on the accepted socket just before answering the token `PUT`. With a hop limit
//! of 1 a pod completes the TCP handshake (the SYN-ACK leaves with the default TTL)
//! and then never receives the answer: the node's forwarding decrements the TTL to
//! 0 and drops it. A process in `node` (hostNetwork, one hop) gets it. 2 reaches
//! the pod.
//!
//! Servers run *inside* the namespaces: each namespace gets a dedicated OS thread
//! that moves itself into the namespace with `setns(2)` and drives its own tokio
//! runtime; sockets created there (listeners, outgoing connections) and processes
//! spawned there (moto) belong to that namespace. Clients run with
//! [`EksNode::command_in_pod`] (`ip netns exec`) or in-process with
//! [`EksNode::run_in`].
//!
//! Everything — processes, runtimes, veths, namespaces, the token file — is removed
//! when the [`EksNode`] is dropped, also while unwinding from a panic. Namespaces
//! left behind by a test process that was killed are swept by the next start.
//!
//! Needs root (CAP_NET_ADMIN) and iproute2. [`EksNodeBuilder::start_or_skip`] skips
//! a test when not root, except under `CI=true`, where it fails.

use std::ffi::OsStr;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::agent::REAL_AGENT_HOSTS;
use crate::creds::Minter;
use crate::fault::FaultPlan;
use crate::imds::{ImdsMode, DEFAULT_ROLE_NAME};
use crate::skip::{self, Need};
use crate::stack::{self, StackError, DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT, REGION};
use crate::{token, FakeAgent, FakeImds, MotoStack};

/// The Pod Identity Agent's IPv4 address (on `lo` in `node`).
pub const AGENT_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The Pod Identity Agent's IPv6 address (on `lo` in `node`).
pub const AGENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
/// IMDS's IPv4 address (on `lo` in `imds`).
pub const IMDS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// IMDS's IPv6 address (on `lo` in `imds`).
pub const IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
/// The pod's address (its `eth0`).
pub const POD_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
/// The pod's IPv6 address.
pub const POD_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 2);
/// The node's address on the pod link (the pod's gateway; moto is reached here).
pub const NODE_POD_SIDE_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 1);
/// The node's IPv6 address on the pod link.
pub const NODE_POD_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
/// The node's address on the IMDS link (IMDS reaches moto here).
pub const NODE_IMDS_SIDE_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 1);
/// The pod subnet (source of the block rules).
pub const POD_SUBNET_V4: &str = "169.254.10.0/30";
/// The pod IPv6 subnet.
pub const POD_SUBNET_V6: &str = "fd00:10::/64";
/// `KUBERNETES_SERVICE_HOST` in [`EksNode::pod_env`] (EKS's default service CIDR).
pub const KUBERNETES_SERVICE_HOST: &str = "10.100.0.1";
/// Where EKS mounts the token; [`EksNode::token_file`] uses a per-node temp path with
/// the same file name instead.
pub const TOKEN_FILE_NAME: &str = "eks-pod-identity-token";

const NETNS_DIR: &str = "/var/run/netns";
const NAME_PREFIX: &str = "epi-";
const BLOCK_TABLE: &str = "100";

/// The namespaces of an [`EksNode`].
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

/// How the node treats the pod's traffic to IMDS (169.254.169.254 and
/// fd00:ec2::254), as a node firewall / network policy would. Only the pod subnet
/// is affected; `node` itself still reaches IMDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BlockMode {
    /// No block.
    #[default]
    None,
    /// Refused at once (`ECONNREFUSED`), like `iptables -j REJECT` (port-unreachable
    /// or `--reject-with tcp-reset`). Without iptables: a policy route sends the
    /// pod's IMDS traffic to a sink namespace that owns the IMDS addresses and
    /// listens on nothing, so its kernel answers the SYN with a RST.
    Reject,
    /// Silently dropped: the connect times out (`ip rule … blackhole`), like
    /// `iptables -j DROP` or a deny-all network policy.
    Drop,
    /// ICMP "administratively prohibited" (`ip rule … prohibit`), like
    /// `REJECT --reject-with icmp-admin-prohibited`: `EHOSTUNREACH` ("No route to
    /// host") over IPv4, `EACCES` over IPv6.
    Prohibit,
}

/// Why the emulated node could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// Not root.
    #[error(
        "an emulated EKS node needs root (CAP_NET_ADMIN) to create network namespaces: run the tests as root (CI does)"
    )]
    NotRoot,
    /// An `ip` command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A thread could not enter a namespace.
    #[error("cannot enter network namespace {name}: {source}")]
    Enter {
        /// Namespace name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A server could not be started inside a namespace.
    #[error("cannot start {what} in network namespace {ns}: {detail}")]
    Start {
        /// What.
        what: &'static str,
        /// Namespace name.
        ns: String,
        /// Why.
        detail: String,
    },
    /// moto could not be started or seeded.
    #[error("moto in the node namespace: {0}")]
    Moto(#[from] StackError),
    /// The token file could not be written.
    #[error("cannot write the service-account token file {path}: {source}")]
    TokenFile {
        /// Path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// Why a test would be skipped (`None`: it must run). Only when not root and `CI`
/// is not `true`.
pub fn skip_reason() -> Option<String> {
    if rustix::process::geteuid().is_root() || skip::ci() {
        None
    } else {
        Some(NetnsError::NotRoot.to_string())
    }
}

/// Builder for [`EksNode`].
#[derive(Debug, Clone)]
pub struct EksNodeBuilder {
    hop_limit: u32,
    imdsv1: bool,
    imds_disabled: bool,
    no_role: bool,
    block: BlockMode,
    agent_faults: FaultPlan,
    with_moto: bool,
    imds_role: Option<String>,
}

impl Default for EksNodeBuilder {
    fn default() -> Self {
        Self {
            hop_limit: 1,
            imdsv1: false,
            imds_disabled: false,
            no_role: false,
            block: BlockMode::None,
            agent_faults: FaultPlan::new(),
            with_moto: false,
            imds_role: None,
        }
    }
}

impl EksNodeBuilder {
    /// The IMDS `http_put_response_hop_limit` (default 1, EC2's default). 2 lets
    /// ordinary pods take the node role.
    pub fn hop_limit(mut self, hops: u32) -> Self {
        self.hop_limit = hops;
        self
    }

    /// IMDSv1 open (`http_tokens = "optional"`): GETs without a token work, at any
    /// hop limit (only the token PUT's answer gets the hop limit).
    pub fn imdsv1(mut self, on: bool) -> Self {
        self.imdsv1 = on;
        self
    }

    /// IMDS disabled (`http_endpoint = "disabled"`): 403 on everything.
    pub fn imds_disabled(mut self, on: bool) -> Self {
        self.imds_disabled = on;
        self
    }

    /// No instance profile: 404 on the role list.
    pub fn no_role(mut self, on: bool) -> Self {
        self.no_role = on;
        self
    }

    /// Block the pod's traffic to IMDS (default none).
    pub fn block(mut self, mode: BlockMode) -> Self {
        self.block = mode;
        self
    }

    /// A fault script for the agent.
    pub fn agent_faults(mut self, plan: FaultPlan) -> Self {
        self.agent_faults = plan;
        self
    }

    /// Run a seeded moto (S3/STS/IAM, IAM enforced) in `node`; the agent and IMDS
    /// then hand out real moto credentials (pod role / node role). Default off
    /// (static fake credentials).
    pub fn with_moto(mut self, on: bool) -> Self {
        self.with_moto = on;
        self
    }

    /// The instance-profile role name IMDS serves (default `node-role`).
    pub fn imds_role_name(mut self, name: impl Into<String>) -> Self {
        self.imds_role = Some(name.into());
        self
    }

    /// Creates the namespaces and starts the servers. Blocking (also fine inside an
    /// async test: the work happens on other threads and in `ip` processes).
    pub fn start(self) -> Result<EksNode, NetnsError> {
        if !rustix::process::geteuid().is_root() {
            return Err(NetnsError::NotRoot);
        }
        sweep_stale();
        let base = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut node = EksNode {
            base: base.clone(),
            names: Names {
                pod: format!("{base}-pod"),
                node: format!("{base}-node"),
                imds: format!("{base}-imds"),
                sink: (self.block == BlockMode::Reject).then(|| format!("{base}-blk")),
            },
            created: Vec::new(),
            threads: Vec::new(),
            agent: None,
            imds: None,
            moto: None,
            token_dir: std::env::temp_dir().join(&base),
            hop_limit: self.hop_limit,
            block: self.block,
        };
        // On any error below, dropping `node` tears down what exists so far.
        node.create_topology()?;
        for ns in [Netns::Pod, Netns::Node, Netns::Imds] {
            let t = NsThread::start(node.name(ns))?;
            node.threads.push((ns, t));
        }
        node.start_servers(&self)?;
        node.warm_neighbours();
        node.write_token(&token::mint(DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT))?;
        Ok(node)
    }

    /// For tests: starts the node, or returns `None` after skipping `test`
    /// ([`skip::skip`]: printed and counted) — only when not root and `CI` is not `true`, or (with moto) when
    /// `moto_server` is not installed and `CI` is not `true`. Panics on any other
    /// failure, and under `CI=true` on every failure.
    pub fn start_or_skip(self, test: &str) -> Option<EksNode> {
        if let Some(why) = skip_reason() {
            skip::skip(test, Need::Root, &why);
            return None;
        }
        match self.start() {
            Ok(n) => Some(n),
            Err(e @ NetnsError::Moto(StackError::NotFound { .. })) if !skip::ci() => {
                skip::skip(test, Need::Moto, &e.to_string());
                None
            }
            Err(e) => panic!("{test}: cannot set up the emulated EKS node: {e}"),
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
struct Names {
    pod: String,
    node: String,
    imds: String,
    sink: Option<String>,
}

/// A running emulated EKS node. Dropping it stops every server and process it
/// started and deletes its namespaces (and with them the veths).
pub struct EksNode {
    base: String,
    names: Names,
    /// Namespaces actually created (deleted on drop, in reverse).
    created: Vec<String>,
    threads: Vec<(Netns, NsThread)>,
    agent: Option<FakeAgent>,
    imds: Option<FakeImds>,
    moto: Option<MotoStack>,
    token_dir: PathBuf,
    hop_limit: u32,
    block: BlockMode,
}

impl std::fmt::Debug for EksNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksNode")
            .field("names", &self.names)
            .field("hop_limit", &self.hop_limit)
            .field("block", &self.block)
            .field("moto", &self.moto)
            .finish_non_exhaustive()
    }
}

impl EksNode {
    /// A builder (hop limit 1, IMDSv2 only, instance profile present, no block, no
    /// agent faults, no moto).
    pub fn builder() -> EksNodeBuilder {
        EksNodeBuilder::default()
    }

    /// This node's unique id (the namespaces' common prefix, `epi-<pid>-<n>`).
    pub fn id(&self) -> &str {
        &self.base
    }

    /// The namespace's name (for `ip netns exec` / `ip -n`).
    pub fn name(&self, ns: Netns) -> &str {
        match ns {
            Netns::Pod => &self.names.pod,
            Netns::Node => &self.names.node,
            Netns::Imds => &self.names.imds,
        }
    }

    /// Every namespace name of this node (including the REJECT sink, if any).
    pub fn namespace_names(&self) -> Vec<String> {
        let mut v = vec![
            self.names.pod.clone(),
            self.names.node.clone(),
            self.names.imds.clone(),
        ];
        v.extend(self.names.sink.clone());
        v
    }

    /// The configured hop limit.
    pub fn hop_limit(&self) -> u32 {
        self.hop_limit
    }

    /// The configured block mode.
    pub fn block_mode(&self) -> BlockMode {
        self.block
    }

    /// The fake agent (in `node`, on 169.254.170.23:80 and `[fd00:ec2::23]:80`, with
    /// the real agent's `Host` check): stats, request log, fault injection.
    pub fn agent(&self) -> &FakeAgent {
        self.agent
            .as_ref()
            .expect("agent runs while the node lives")
    }

    /// The fake IMDS (in `imds`, on 169.254.169.254:80 and `[fd00:ec2::254]:80`):
    /// stats, request log, mode changes.
    pub fn imds(&self) -> &FakeImds {
        self.imds.as_ref().expect("IMDS runs while the node lives")
    }

    /// moto (in `node`), when built [`with_moto`](EksNodeBuilder::with_moto).
    pub fn moto(&self) -> Option<&MotoStack> {
        self.moto.as_ref()
    }

    /// `http://169.254.170.23/v1/credentials` — what EKS injects.
    pub fn agent_uri(&self) -> String {
        FakeAgent::uri_for(SocketAddr::from((AGENT_V4, 80)))
    }

    /// `http://[fd00:ec2::23]/v1/credentials` — the IPv6 cluster variant.
    pub fn agent_uri_v6(&self) -> String {
        FakeAgent::uri_for(SocketAddr::from((AGENT_V6, 80)))
    }

    /// `http://169.254.169.254`.
    pub fn imds_endpoint(&self) -> String {
        format!("http://{IMDS_V4}")
    }

    /// `http://[fd00:ec2::254]`.
    pub fn imds_endpoint_v6(&self) -> String {
        format!("http://[{IMDS_V6}]")
    }

    /// moto's endpoint as reached from the pod (the node's veth address), e.g.
    /// `http://169.254.10.1:41234`.
    pub fn moto_endpoint_from_pod(&self) -> Option<String> {
        self.moto
            .as_ref()
            .map(|m| m.endpoint_url_via(IpAddr::V4(NODE_POD_SIDE_V4)))
    }

    /// The service-account token file (a minted token for
    /// `my-app-namespace`/`my-app-sa`, audience `pods.eks.amazonaws.com`).
    pub fn token_file(&self) -> PathBuf {
        self.token_dir.join(TOKEN_FILE_NAME)
    }

    /// Replaces the token in [`token_file`](Self::token_file) (the kubelet's rotation).
    pub fn write_token(&self, jwt: &str) -> Result<(), NetnsError> {
        let path = self.token_file();
        std::fs::create_dir_all(&self.token_dir)
            .and_then(|()| std::fs::write(&path, jwt))
            .map_err(|source| NetnsError::TokenFile { path, source })
    }

    /// The environment EKS gives a pod with a pod identity association:
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (IPv4 agent),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, `AWS_REGION`,
    /// `KUBERNETES_SERVICE_HOST`/`_PORT`, and (with moto) `AWS_ENDPOINT_URL`.
    pub fn pod_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
                self.agent_uri(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_owned(),
                self.token_file().display().to_string(),
            ),
            ("AWS_REGION".to_owned(), REGION.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned()),
            (
                "KUBERNETES_SERVICE_HOST".to_owned(),
                KUBERNETES_SERVICE_HOST.to_owned(),
            ),
            ("KUBERNETES_SERVICE_PORT".to_owned(), "443".to_owned()),
        ];
        if let Some(url) = self.moto_endpoint_from_pod() {
            env.push(("AWS_ENDPOINT_URL".to_owned(), url));
        }
        env
    }

    /// [`pod_env`](Self::pod_env) of a pod *without* a pod identity association
    /// (no `AWS_CONTAINER_*`): region, endpoint and Kubernetes vars only.
    pub fn pod_env_without_pod_identity(&self) -> Vec<(String, String)> {
        self.pod_env()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("AWS_CONTAINER_"))
            .collect()
    }

    /// `ip netns exec <ns> <program>`: a process in that namespace. Its environment
    /// is the test's minus `AWS_*`, `KUBERNETES_*` and proxy variables (a fresh pod);
    /// add [`pod_env`](Self::pod_env) yourself. The program is exec'ed by `ip`, so
    /// the child's PID is the program's.
    pub fn command_in(&self, ns: Netns, program: impl AsRef<OsStr>) -> Command {
        ns_command(self.name(ns), program)
    }

    /// [`command_in`](Self::command_in) the pod.
    pub fn command_in_pod(&self, program: impl AsRef<OsStr>) -> Command {
        self.command_in(Netns::Pod, program)
    }

    /// [`command_in`](Self::command_in) the node (a hostNetwork process).
    pub fn command_in_node(&self, program: impl AsRef<OsStr>) -> Command {
        self.command_in(Netns::Node, program)
    }

    /// Runs `argv` in the pod with [`pod_env`](Self::pod_env), killed after
    /// `timeout`.
    pub fn run_in_pod<S: AsRef<OsStr>>(
        &self,
        argv: &[S],
        timeout: Duration,
    ) -> std::io::Result<Output> {
        self.run_argv(Netns::Pod, argv, timeout)
    }

    /// Runs `argv` in the node with [`pod_env`](Self::pod_env), killed after
    /// `timeout`.
    pub fn run_in_node<S: AsRef<OsStr>>(
        &self,
        argv: &[S],
        timeout: Duration,
    ) -> std::io::Result<Output> {
        self.run_argv(Netns::Node, argv, timeout)
    }

    fn run_argv<S: AsRef<OsStr>>(
        &self,
        ns: Netns,
        argv: &[S],
        timeout: Duration,
    ) -> std::io::Result<Output> {
        let Some((program, args)) = argv.split_first() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty argv",
            ));
        };
        let mut cmd = self.command_in(ns, program);
        cmd.args(args).envs(self.pod_env());
        output_with_timeout(&mut cmd, timeout)
    }

    /// Runs `fut` on the namespace's runtime thread (its sockets belong to that
    /// namespace) and returns its output; a panic in `fut` is resumed here.
    pub async fn run_in<F>(&self, ns: Netns, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.thread(ns).handle.spawn(fut).await {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("task in netns {} was cancelled: {e}", self.name(ns)),
        }
    }

    /// Blocking [`run_in`](Self::run_in), for synchronous code (not from the
    /// namespace's own thread).
    pub fn block_in<F>(&self, ns: Netns, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.thread(ns).block(fut)
    }

    fn thread(&self, ns: Netns) -> &NsThread {
        self.threads
            .iter()
            .find(|(n, _)| *n == ns)
            .map(|(_, t)| t)
            .expect("a runtime thread per namespace")
    }

    fn ip(&self, args: &[&str]) -> Result<(), NetnsError> {
        run_ip(args)
    }

    fn ipn(&self, ns: &str, args: &[&str]) -> Result<(), NetnsError> {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        run_ip(&v)
    }

    fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<(), NetnsError> {
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

    fn create_topology(&mut self) -> Result<(), NetnsError> {
        let (pod, node, imds) = (
            self.names.pod.clone(),
            self.names.node.clone(),
            self.names.imds.clone(),
        );
        let mut all = vec![pod.clone(), node.clone(), imds.clone()];
        all.extend(self.names.sink.clone());
        for ns in &all {
            self.ip(&["netns", "add", ns])?;
            self.created.push(ns.clone());
            // No IPv6 duplicate address detection: link-local addresses would be
            // tentative for ~2 s and the first IPv6 packets would be lost.
            self.sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")?;
            self.sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")?;
            self.ipn(ns, &["link", "set", "lo", "up"])?;
        }
        // veths are created directly inside their namespaces: fixed names are fine.
        self.ip(&[
            "link", "add", "eth0", "netns", &pod, "type", "veth", "peer", "name", "vpod", "netns",
            &node,
        ])?;
        self.ip(&[
            "link", "add", "vimds", "netns", &node, "type", "veth", "peer", "name", "eth0",
            "netns", &imds,
        ])?;
        let addrs: &[(&str, &str, &str)] = &[
            (&pod, "eth0", "169.254.10.2/30"),
            (&pod, "eth0", "fd00:10::2/64"),
            (&node, "vpod", "169.254.10.1/30"),
            (&node, "vpod", "fd00:10::1/64"),
            (&node, "vimds", "169.254.20.1/30"),
            (&node, "vimds", "fd00:20::1/64"),
            (&imds, "eth0", "169.254.20.2/30"),
            (&imds, "eth0", "fd00:20::2/64"),
            (&node, "lo", "169.254.170.23/32"),
            (&node, "lo", "fd00:ec2::23/128"),
            (&imds, "lo", "169.254.169.254/32"),
            (&imds, "lo", "fd00:ec2::254/128"),
        ];
        for (ns, dev, a) in addrs {
            // nodad: IPv6 addresses are usable at once (no tentative phase).
            if a.contains(':') {
                self.ipn(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
            } else {
                self.ipn(ns, &["addr", "add", a, "dev", dev])?;
            }
        }
        for (ns, dev) in [
            (&pod, "eth0"),
            (&node, "vpod"),
            (&node, "vimds"),
            (&imds, "eth0"),
        ] {
            self.ipn(ns, &["link", "set", dev, "up"])?;
        }
        self.sysctl(&node, "net.ipv4.ip_forward", "1")?;
        self.sysctl(&node, "net.ipv6.conf.all.forwarding", "1")?;
        self.ipn(&pod, &["route", "add", "default", "via", "169.254.10.1"])?;
        self.ipn(
            &pod,
            &["-6", "route", "add", "default", "via", "fd00:10::1"],
        )?;
        self.ipn(
            &node,
            &["route", "add", "169.254.169.254/32", "via", "169.254.20.2"],
        )?;
        self.ipn(
            &node,
            &[
                "-6",
                "route",
                "add",
                "fd00:ec2::254/128",
                "via",
                "fd00:20::2",
            ],
        )?;
        self.ipn(
            &imds,
            &["route", "add", POD_SUBNET_V4, "via", "169.254.20.1"],
        )?;
        self.ipn(
            &imds,
            &["-6", "route", "add", POD_SUBNET_V6, "via", "fd00:20::1"],
        )?;
        self.block_rules()?;
        self.wait_ipv6_ready(&all);
        Ok(())
    }

    /// Resolves the neighbours on both veth links, both directions, before a
    /// test runs. On a fresh link the first forwarded IPv6 SYN is lost while
    /// neighbour discovery completes, and the 1 s SYN retransmission that
    /// follows would read as a DROP rule to a probe; a real node's neighbour
    /// caches are warm. One UDP datagram (to the discard port) per direction
    /// starts the resolution; we then wait, bounded, until it is done.
    fn warm_neighbours(&self) {
        let pairs: [(Netns, &'static str); 8] = [
            (Netns::Pod, "fd00:10::1"),
            (Netns::Node, "fd00:10::2"),
            (Netns::Node, "fd00:20::2"),
            (Netns::Imds, "fd00:20::1"),
            (Netns::Pod, "169.254.10.1"),
            (Netns::Node, "169.254.10.2"),
            (Netns::Node, "169.254.20.2"),
            (Netns::Imds, "169.254.20.1"),
        ];
        for (ns, addr) in pairs {
            self.block_in(ns, async move {
                let ip: std::net::IpAddr = addr.parse().expect("a literal address");
                let bind: std::net::SocketAddr = if ip.is_ipv6() {
                    "[::]:0".parse().expect("literal")
                } else {
                    "0.0.0.0:0".parse().expect("literal")
                };
                if let Ok(sock) = tokio::net::UdpSocket::bind(bind).await {
                    let _ = sock.send_to(b"warm", (ip, 9)).await;
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (ns, addr) in pairs {
            while Instant::now() < deadline {
                let out = Command::new(ip_program())
                    .args(["-n", self.name(ns), "neigh", "show", addr])
                    .stdin(Stdio::null())
                    .output();
                match out {
                    Ok(o) if o.status.success() => {
                        let text = String::from_utf8_lossy(&o.stdout);
                        if text.contains("lladdr") {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => break,
                }
            }
        }
    }

    /// Waits (bounded) until no IPv6 address is tentative in any namespace.
    fn wait_ipv6_ready(&self, namespaces: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for ns in namespaces {
            while Instant::now() < deadline {
                let out = Command::new(ip_program())
                    .args(["-n", ns, "-6", "addr", "show", "tentative"])
                    .stdin(Stdio::null())
                    .output();
                match out {
                    Ok(o) if o.status.success() && o.stdout.is_empty() => break,
                    Ok(o) if o.status.success() => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => break,
                }
            }
        }
    }

    fn block_rules(&mut self) -> Result<(), NetnsError> {
        let node = self.names.node.clone();
        let v4 = ["from", POD_SUBNET_V4, "to", "169.254.169.254/32"];
        let v6 = ["from", POD_SUBNET_V6, "to", "fd00:ec2::254/128"];
        let action = match self.block {
            BlockMode::None => return Ok(()),
            BlockMode::Drop => vec!["blackhole"],
            BlockMode::Prohibit => vec!["prohibit"],
            BlockMode::Reject => vec!["lookup", BLOCK_TABLE],
        };
        let mut r4 = vec!["rule", "add"];
        r4.extend_from_slice(&v4);
        r4.extend_from_slice(&action);
        self.ipn(&node, &r4)?;
        let mut r6 = vec!["-6", "rule", "add"];
        r6.extend_from_slice(&v6);
        r6.extend_from_slice(&action);
        self.ipn(&node, &r6)?;
        if self.block != BlockMode::Reject {
            return Ok(());
        }
        // The REJECT sink: owns the IMDS addresses, listens on nothing → RST.
        let sink = self.names.sink.clone().expect("sink namespace for Reject");
        self.ip(&[
            "link", "add", "vblk", "netns", &node, "type", "veth", "peer", "name", "eth0", "netns",
            &sink,
        ])?;
        for (ns, dev, a) in [
            (&node, "vblk", "169.254.30.1/30"),
            (&node, "vblk", "fd00:30::1/64"),
            (&sink, "eth0", "169.254.30.2/30"),
            (&sink, "eth0", "fd00:30::2/64"),
            (&sink, "lo", "169.254.169.254/32"),
            (&sink, "lo", "fd00:ec2::254/128"),
        ] {
            if a.contains(':') {
                self.ipn(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
            } else {
                self.ipn(ns, &["addr", "add", a, "dev", dev])?;
            }
        }
        self.ipn(&node, &["link", "set", "vblk", "up"])?;
        self.ipn(&sink, &["link", "set", "eth0", "up"])?;
        self.ipn(&sink, &["route", "add", "default", "via", "169.254.30.1"])?;
        self.ipn(
            &sink,
            &["-6", "route", "add", "default", "via", "fd00:30::1"],
        )?;
        self.ipn(
            &node,
            &[
                "route",
                "add",
                "169.254.169.254/32",
                "via",
                "169.254.30.2",
                "table",
                BLOCK_TABLE,
            ],
        )?;
        self.ipn(
            &node,
            &[
                "-6",
                "route",
                "add",
                "fd00:ec2::254/128",
                "via",
                "fd00:30::2",
                "table",
                BLOCK_TABLE,
            ],
        )
    }

    fn start_servers(&mut self, cfg: &EksNodeBuilder) -> Result<(), NetnsError> {
        let node_ns = self.names.node.clone();
        let imds_ns = self.names.imds.clone();
        if cfg.with_moto {
            let moto = self.thread(Netns::Node).block(async {
                MotoStack::builder()
                    .bind_host(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                    .start()
                    .await
            })?;
            self.moto = Some(moto);
        }
        let (agent_builder, imds_minter) = match &self.moto {
            Some(m) => {
                let admin = m.admin();
                (
                    // Mints with moto at 127.0.0.1 — the node's own loopback.
                    m.fake_agent(),
                    Some((
                        Minter::sts(
                            m.endpoint_url_via(IpAddr::V4(NODE_IMDS_SIDE_V4)),
                            admin.access_key_id.clone(),
                            admin.secret_access_key.clone(),
                        ),
                        m.node_role_arn(),
                    )),
                )
            }
            None => (
                FakeAgent::builder().association(
                    DEFAULT_NAMESPACE,
                    DEFAULT_SERVICE_ACCOUNT,
                    stack::role_arn(stack::POD_ROLE_NAME),
                ),
                None,
            ),
        };
        let agent_builder = agent_builder
            .bind(SocketAddr::from((AGENT_V4, 80)))
            .bind(SocketAddr::from((AGENT_V6, 80)))
            .host_check(REAL_AGENT_HOSTS)
            .faults(cfg.agent_faults.clone());
        let agent = self
            .thread(Netns::Node)
            .block(async move { agent_builder.start().await })
            .map_err(|e| NetnsError::Start {
                what: "the fake Pod Identity Agent",
                ns: node_ns,
                detail: e.to_string(),
            })?;
        self.agent = Some(agent);

        let role_name = cfg
            .imds_role
            .clone()
            .unwrap_or_else(|| DEFAULT_ROLE_NAME.to_owned());
        let mut imds_builder = FakeImds::builder()
            .bind(SocketAddr::from((IMDS_V4, 80)))
            .bind(SocketAddr::from((IMDS_V6, 80)))
            .hop_limit(Some(cfg.hop_limit))
            .imdsv1(cfg.imdsv1)
            .no_role(cfg.no_role);
        imds_builder = match imds_minter {
            Some((minter, arn)) => imds_builder.minter(minter).role(role_name, arn),
            None => {
                let arn = stack::role_arn(&role_name);
                imds_builder.role(role_name, arn)
            }
        };
        if cfg.imds_disabled {
            imds_builder = imds_builder.mode(ImdsMode::Disabled);
        }
        let imds = self
            .thread(Netns::Imds)
            .block(async move { imds_builder.start().await })
            .map_err(|e| NetnsError::Start {
                what: "the fake IMDS",
                ns: imds_ns,
                detail: e.to_string(),
            })?;
        self.imds = Some(imds);
        Ok(())
    }
}

impl Drop for EksNode {
    fn drop(&mut self) {
        // 1. Servers: abort their tasks (sockets close when the runtimes stop).
        self.agent.take();
        self.imds.take();
        // 2. moto: killed by its PID; wait until it has left the namespace.
        if let Some(moto) = self.moto.take() {
            let pid = moto.pid();
            match self.threads.iter().find(|(n, _)| *n == Netns::Node) {
                // Dropped on the runtime that spawned it (its child reaper).
                Some((_, t)) => t.block(async move { drop(moto) }),
                None => drop(moto),
            }
            if let Some(pid) = pid {
                wait_exited(pid, Duration::from_secs(5));
            }
        }
        // 3. Runtime threads: stop, join (each held a reference to its namespace).
        for (_, mut t) in self.threads.drain(..) {
            t.stop();
        }
        // 4. Namespaces (their veths go with them).
        for ns in self.created.drain(..).rev() {
            if let Err(e) = run_ip(&["netns", "del", &ns]) {
                eprintln!("eks-pod-identity-testkit: teardown: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.token_dir);
    }
}

/// Waits until `pid` is gone or a zombie (a zombie holds no namespace).
fn wait_exited(pid: u32, timeout: Duration) {
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

/// Deletes namespaces left by test processes that no longer exist (killed before
/// their `Drop` ran).
fn sweep_stale() {
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

fn ip_program() -> &'static str {
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

fn run_ip(args: &[&str]) -> Result<(), NetnsError> {
    let out = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output();
    check_output(&format!("ip {}", args.join(" ")), out)
}

fn ns_command(ns: &str, program: impl AsRef<OsStr>) -> Command {
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

/// A thread inside a network namespace, driving a current-thread tokio runtime.
struct NsThread {
    name: String,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsThread {
    fn start(name: &str) -> Result<Self, NetnsError> {
        let path = Path::new(NETNS_DIR).join(name);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_name = format!("netns-{name}");
        let ns_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let setup = (|| -> std::io::Result<tokio::runtime::Runtime> {
                    let f = std::fs::File::open(&path)?;
                    // setns(2) affects only this thread; tokio's blocking-pool
                    // threads are spawned from it and inherit the namespace.
                    rustix::thread::move_into_link_name_space(
                        f.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )?;
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                })();
                let rt = match setup {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                if ready_tx.send(Ok((rt.handle().clone(), stop_tx))).is_err() {
                    return;
                }
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|source| NetnsError::Enter {
                name: ns_name.clone(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok((handle, stop))) => Ok(Self {
                name: ns_name,
                handle,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(NetnsError::Enter {
                    name: ns_name,
                    source,
                })
            }
            Err(_) => {
                let _ = thread.join();
                Err(NetnsError::Enter {
                    name: ns_name,
                    source: std::io::Error::other("namespace thread died during setup"),
                })
            }
        }
    }

    /// Runs `fut` on this thread's runtime and waits for it (blocking).
    fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = self.handle.spawn(fut);
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        match rx.recv() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("task in netns {} was cancelled: {e}", self.name),
            Err(_) => panic!("the runtime of netns {} has stopped", self.name),
        }
    }

    fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        self.stop();
    }
}
