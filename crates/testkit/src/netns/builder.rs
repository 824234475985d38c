//! [`EksNodeBuilder`]: what the node looks like (hop limit, IMDS modes, block,
//! agent faults, moto), and the start-up: topology, runtime threads, servers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::addresses::{AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6, NODE_IMDS_SIDE_V4};
use super::error::{skip_reason, NetnsError};
use super::firewall::BlockMode;
use super::links;
use super::namespaces::{new_base, sweep_stale, Names, Netns};
use super::node::EksNode;
use super::thread::NsThread;
use crate::agent::{FakeAgent, REAL_AGENT_HOSTS};
use crate::creds::Minter;
use crate::fault::FaultPlan;
use crate::imds::{FakeImds, ImdsMode, DEFAULT_ROLE_NAME};
use crate::skip::{self, Need};
use crate::stack::{self, MotoStack, StackError, DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT};
use crate::token;

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
        let base = new_base();
        let mut node = EksNode {
            base: base.clone(),
            names: Names::new(&base, self.block == BlockMode::Reject),
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
        links::create(&node.names, node.block, &mut node.created)?;
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

impl EksNode {
    /// A builder (hop limit 1, IMDSv2 only, instance profile present, no block, no
    /// agent faults, no moto).
    pub fn builder() -> EksNodeBuilder {
        EksNodeBuilder::default()
    }

    /// Starts moto (if asked for), the agent and IMDS inside their namespaces.
    fn start_servers(&mut self, cfg: &EksNodeBuilder) -> Result<(), NetnsError> {
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
        let agent = self.start_in(Netns::Node, "the fake Pod Identity Agent", async move {
            agent_builder.start().await
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
        let imds = self.start_in(Netns::Imds, "the fake IMDS", async move {
            imds_builder.start().await
        })?;
        self.imds = Some(imds);
        Ok(())
    }

    /// Runs `start` (a fake's start-up) on the runtime thread of `ns`; a failure
    /// becomes [`NetnsError::Start`] naming `what`.
    fn start_in<T, E, F>(&self, ns: Netns, what: &'static str, start: F) -> Result<T, NetnsError>
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.thread(ns).block(start).map_err(|e| NetnsError::Start {
            what,
            ns: self.name(ns).to_owned(),
            detail: e.to_string(),
        })
    }
}
