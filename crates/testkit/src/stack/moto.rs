//! [`MotoStack`]: a running, seeded moto, and its builder.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::error::StackError;
use super::fixtures::{
    role_arn, DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT, NODE_ROLE_NAME, POD_ROLE_NAME, REGION,
};
use super::process::{find_moto_server, spawn, MotoProcess, Running};
use super::seed::{self, AdminCredentials};
use crate::agent::{FakeAgent, FakeAgentBuilder};
use crate::creds::Minter;
use crate::imds::{FakeImds, FakeImdsBuilder};

/// Builder for [`MotoStack`].
#[derive(Debug, Clone)]
pub struct MotoStackBuilder {
    host: IpAddr,
    port: Option<u16>,
    moto_server: Option<PathBuf>,
    ready_timeout: Duration,
}

impl Default for MotoStackBuilder {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            moto_server: None,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

impl MotoStackBuilder {
    /// Address moto listens on (default 127.0.0.1; `0.0.0.0` for network namespaces).
    pub fn bind_host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// A fixed port (default: one moto's own listener picks, port 0, so no other
    /// process can take it between choosing and binding).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Path of `moto_server` (default: see [`find_moto_server`]).
    pub fn moto_server(mut self, path: impl Into<PathBuf>) -> Self {
        self.moto_server = Some(path.into());
        self
    }

    /// How long to wait for readiness (default 30 s; it takes ~0.4–2 s).
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }

    /// Starts, waits until ready, seeds, enables IAM enforcement.
    pub async fn start(self) -> Result<MotoStack, StackError> {
        let path = match self.moto_server {
            Some(p) => p,
            None => find_moto_server()?,
        };
        let port = self.port.unwrap_or(0);
        let Running {
            process,
            endpoint,
            addr,
            http,
        } = spawn(&path, self.host, port, self.ready_timeout).await?;
        // On a seeding error, dropping `process` kills moto.
        let admin = seed::seed(&http, &endpoint).await?;
        Ok(MotoStack {
            process,
            endpoint,
            addr,
            admin,
            http,
        })
    }
}

/// A running, seeded moto server. Killed when dropped.
pub struct MotoStack {
    process: MotoProcess,
    endpoint: String,
    addr: SocketAddr,
    admin: AdminCredentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for MotoStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoStack")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.process.pid())
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl MotoStack {
    /// Starts with defaults (127.0.0.1, free port, `moto_server` found by
    /// [`find_moto_server`]).
    pub async fn start() -> Result<Self, StackError> {
        Self::builder().start().await
    }

    /// A builder.
    pub fn builder() -> MotoStackBuilder {
        MotoStackBuilder::default()
    }

    /// For tests: starts the stack, or — when `moto_server` is not installed and
    /// `CI` is not `true` — skips `test` ([`crate::skip::skip`]: printed and
    /// counted) and returns `None`.
    /// Panics on any other failure, and under `CI=true` on a missing moto too.
    pub async fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start().await {
            Ok(s) => Some(s),
            Err(e @ StackError::NotFound { .. }) if !crate::skip::ci() => {
                crate::skip::skip(test, crate::skip::Need::Moto, &e.to_string());
                None
            }
            Err(e) => panic!("{test}: cannot start the moto stack: {e}"),
        }
    }

    /// `http://127.0.0.1:PORT` (loopback when bound to an unspecified address).
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    /// The address clients on this host use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The endpoint as reached through another address of this host (e.g. a veth
    /// address inside a network namespace).
    pub fn endpoint_url_via(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(a) => format!("http://{a}:{}", self.port()),
            IpAddr::V6(a) => format!("http://[{a}]:{}", self.port()),
        }
    }

    /// moto's PID.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The admin access key.
    pub fn admin(&self) -> &AdminCredentials {
        &self.admin
    }

    /// ARN of [`POD_ROLE_NAME`].
    pub fn pod_role_arn(&self) -> String {
        role_arn(POD_ROLE_NAME)
    }

    /// ARN of [`NODE_ROLE_NAME`].
    pub fn node_role_arn(&self) -> String {
        role_arn(NODE_ROLE_NAME)
    }

    /// The region.
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// An STS minter that assumes roles with the admin key.
    pub fn sts_minter(&self) -> Minter {
        Minter::sts(
            self.endpoint.clone(),
            self.admin.access_key_id.clone(),
            self.admin.secret_access_key.clone(),
        )
    }

    /// A [`FakeAgent`] builder minting real moto credentials, with the deployed
    /// association (`my-app-namespace`/`my-app-sa` → the pod role).
    pub fn fake_agent(&self) -> FakeAgentBuilder {
        FakeAgent::builder().minter(self.sts_minter()).association(
            DEFAULT_NAMESPACE,
            DEFAULT_SERVICE_ACCOUNT,
            self.pod_role_arn(),
        )
    }

    /// A [`FakeImds`] builder serving `node-role` credentials minted by moto.
    pub fn fake_imds(&self) -> FakeImdsBuilder {
        FakeImds::builder()
            .minter(self.sts_minter())
            .role(NODE_ROLE_NAME, self.node_role_arn())
    }

    /// Turns IAM enforcement on (`true`) or off.
    pub async fn set_enforcement(&self, on: bool) -> Result<(), StackError> {
        seed::set_enforcement(&self.http, &self.endpoint, on).await
    }
}
