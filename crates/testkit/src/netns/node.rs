//! [`EksNode`]: a running node — its fakes, addresses, pod environment, the ways
//! to run code inside its namespaces, and its teardown.

use std::ffi::OsStr;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::addresses::{
    AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6, KUBERNETES_SERVICE_HOST, NODE_POD_SIDE_V4,
    TOKEN_FILE_NAME,
};
use super::command::{ns_command, output_with_timeout, run_ip, wait_exited};
use super::error::NetnsError;
use super::firewall::BlockMode;
use super::namespaces::{Names, Netns};
use super::thread::NsThread;
use crate::agent::FakeAgent;
use crate::imds::FakeImds;
use crate::stack::{MotoStack, REGION};

/// A running emulated EKS node. Dropping it stops every server and process it
/// started and deletes its namespaces (and with them the veths).
pub struct EksNode {
    pub(super) base: String,
    pub(super) names: Names,
    /// Namespaces actually created (deleted on drop, in reverse).
    pub(super) created: Vec<String>,
    pub(super) threads: Vec<(Netns, NsThread)>,
    pub(super) agent: Option<FakeAgent>,
    pub(super) imds: Option<FakeImds>,
    pub(super) moto: Option<MotoStack>,
    pub(super) token_dir: PathBuf,
    pub(super) hop_limit: u32,
    pub(super) block: BlockMode,
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
    /// This node's unique id (the namespaces' common prefix, `epi-<pid>-<n>`).
    pub fn id(&self) -> &str {
        &self.base
    }

    /// The namespace's name (for `ip netns exec` / `ip -n`).
    pub fn name(&self, ns: Netns) -> &str {
        self.names.get(ns)
    }

    /// Every namespace name of this node (including the REJECT sink, if any).
    pub fn namespace_names(&self) -> Vec<String> {
        self.names.all()
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

    /// moto (in `node`), when built [`with_moto`](super::EksNodeBuilder::with_moto).
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

    pub(super) fn thread(&self, ns: Netns) -> &NsThread {
        self.threads
            .iter()
            .find(|(n, _)| *n == ns)
            .map(|(_, t)| t)
            .expect("a runtime thread per namespace")
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
