//! [`MotoStack`]: a local `moto_server` (S3 + STS + IAM) seeded like the blog's
//! Terraform, with IAM enforcement turned on.
//!
//! Seeding (before enforcement, with unsigned-but-scoped requests, which moto
//! accepts then): IAM user `admin` with a `*` policy and an access key; role
//! [`POD_ROLE_NAME`] allowed `s3:GetObject`/`s3:ListBucket` on [`APP_BUCKET`] only;
//! role [`NODE_ROLE_NAME`] allowed the same on [`OTHER_BUCKET`] only; both trust
//! `{"AWS": <admin ARN>, "Service": "pods.eks.amazonaws.com"}` for `sts:AssumeRole` +
//! `sts:TagSession`; both buckets get [`SEED_OBJECTS`]. Then
//! `POST /moto-api/reset-auth` with `0`: from then on every request must be SigV4
//! signed with a known key and is checked against IAM policies.
//!
//! The process is killed by its own PID when the stack is dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use crate::agent::FakeAgentBuilder;
use crate::creds::{Minter, ACCOUNT_ID};
use crate::imds::FakeImdsBuilder;
use crate::{FakeAgent, FakeImds};

/// Region used for everything.
pub const REGION: &str = "us-east-1";
/// The application's bucket (readable by the pod role).
pub const APP_BUCKET: &str = "my-app-bucket";
/// A bucket only the node role may read.
pub const OTHER_BUCKET: &str = "other-bucket";
/// The pod's role.
pub const POD_ROLE_NAME: &str = "my-app-pod-identity-role";
/// The node's (instance profile) role.
pub const NODE_ROLE_NAME: &str = "node-role";
/// The admin IAM user.
pub const ADMIN_USER: &str = "admin";
/// The app's namespace in the blog.
pub const DEFAULT_NAMESPACE: &str = "my-app-namespace";
/// The app's service account in the blog.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "my-app-sa";
/// Objects put in both buckets: (key, body).
pub const SEED_OBJECTS: &[(&str, &str)] = &[
    ("hello.txt", "hello from EKS Pod Identity\n"),
    ("reports/2026-10.csv", "month,requests\n2026-10,1000\n"),
    ("reports/2026-11.csv", "month,requests\n2026-11,1200\n"),
];

/// The ARN of role `name` in moto's account.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}")
}

/// Why the stack could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// No `moto_server` executable.
    #[error(
        "moto_server not found at {}: run scripts/ensure-moto.sh (or set MOTO_SERVER to its path)",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// Paths looked at.
        tried: Vec<PathBuf>,
    },
    /// Spawning failed.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// moto could not bind its port (with a fixed [`MotoStackBuilder::port`] in use).
    #[error("moto_server could not listen on {host}:{port}; its log ends with:\n{log}")]
    Port {
        /// The bind host.
        host: IpAddr,
        /// The port asked for (0: any).
        port: u16,
        /// Tail of its output.
        log: String,
    },
    /// The process exited before being ready.
    #[error("moto_server exited before becoming ready ({status}); its log ends with:\n{log}")]
    Exited {
        /// Exit status.
        status: String,
        /// Tail of its output.
        log: String,
    },
    /// Not ready in time.
    #[error(
        "moto_server did not answer on {endpoint} within {timeout:?}; its log ends with:\n{log}"
    )]
    NotReady {
        /// Endpoint polled.
        endpoint: String,
        /// Bound.
        timeout: Duration,
        /// Tail of its output.
        log: String,
    },
    /// A seeding request failed.
    #[error("seeding moto failed at step `{step}`: {detail}")]
    Seed {
        /// What was being done.
        step: String,
        /// Status/body or transport error.
        detail: String,
    },
}

/// The admin user's access key (has a `*` policy).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret (never printed by `Debug`).
    pub secret_access_key: String,
    /// The user's ARN.
    pub user_arn: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("user_arn", &self.user_arn)
            .finish()
    }
}

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
        let mut stack = spawn(&path, self.host, port, self.ready_timeout).await?;
        stack.seed().await?;
        Ok(stack)
    }
}

/// A running, seeded moto server. Killed when dropped.
pub struct MotoStack {
    child: tokio::process::Child,
    endpoint: String,
    addr: SocketAddr,
    log: PathBuf,
    admin: AdminCredentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for MotoStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoStack")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Drop for MotoStack {
    fn drop(&mut self) {
        // Our own child, by its PID (tokio's start_kill); kill_on_drop is the backstop.
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Locates `moto_server`: `$MOTO_SERVER`, else `<dir>/.venv/bin/moto_server` for the
/// first `dir` walking up from `CARGO_MANIFEST_DIR` (build- and run-time) and from
/// the current directory.
pub fn find_moto_server() -> Result<PathBuf, StackError> {
    if let Some(p) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(StackError::NotFound { tried: vec![p] })
        };
    }
    let mut starts: Vec<PathBuf> = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Some(d) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(d.into());
    }
    if let Ok(d) = std::env::current_dir() {
        starts.push(d);
    }
    let mut tried = Vec::new();
    for start in starts {
        for dir in start.ancestors() {
            let cand = dir.join(".venv/bin/moto_server");
            if cand.is_file() {
                return Ok(cand);
            }
            if dir.join(".git").exists() || dir.join("Cargo.lock").exists() {
                if !tried.contains(&cand) {
                    tried.push(cand);
                }
                break;
            }
        }
    }
    if tried.is_empty() {
        tried.push(PathBuf::from(".venv/bin/moto_server"));
    }
    Err(StackError::NotFound { tried })
}

/// The port in werkzeug's startup line ` * Running on http://127.0.0.1:PORT`
/// (printed once its socket listens; with port 0 it names the port it got).
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("* Running on http://")?;
        let port = rest.split_whitespace().next()?.rsplit_once(':')?.1;
        port.parse().ok()
    })
}

/// Whether `GET /moto-api/data.json` answered like moto: 200 and a JSON object
/// (its backends' state). Any other server on the port does not pass.
async fn is_moto(http: &reqwest::Client, endpoint: &str) -> bool {
    let Ok(r) = http
        .get(format!("{endpoint}/moto-api/data.json"))
        .timeout(Duration::from_millis(2000))
        .send()
        .await
    else {
        return false;
    };
    if r.status() != reqwest::StatusCode::OK {
        return false;
    }
    r.bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.is_object())
}

static LOG_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn spawn(
    path: &Path,
    host: IpAddr,
    port: u16,
    timeout: Duration,
) -> Result<MotoStack, StackError> {
    let log = std::env::temp_dir().join(format!(
        "eks-pod-identity-moto-{}-{}.log",
        std::process::id(),
        LOG_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let log_file = std::fs::File::create(&log).map_err(|source| StackError::Spawn {
        path: log.clone(),
        source,
    })?;
    let log_err = log_file.try_clone().map_err(|source| StackError::Spawn {
        path: log.clone(),
        source,
    })?;
    let child = tokio::process::Command::new(path)
        .arg("-H")
        .arg(host.to_string())
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StackError::Spawn {
            path: path.to_owned(),
            source,
        })?;
    let mut child = child;
    let deadline = Instant::now() + timeout;
    // moto binds the port itself (0: the kernel picks) and logs it once listening.
    let port = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log_tail = tail(&log);
            let _ = std::fs::remove_file(&log);
            return Err(if log_tail.contains("in use") {
                StackError::Port {
                    host,
                    port,
                    log: log_tail,
                }
            } else {
                StackError::Exited {
                    status: status.to_string(),
                    log: log_tail,
                }
            });
        }
        if let Some(p) = listening_port(&std::fs::read_to_string(&log).unwrap_or_default()) {
            break p;
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            let log_tail = tail(&log);
            let _ = std::fs::remove_file(&log);
            return Err(StackError::NotReady {
                endpoint: format!("{host}:{port} (no startup line yet)"),
                timeout,
                log: log_tail,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let connect_ip = if host.is_unspecified() {
        match host {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        host
    };
    let addr = SocketAddr::new(connect_ip, port);
    let endpoint = match addr {
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StackError::Seed {
            step: "http client".into(),
            detail: e.to_string(),
        })?;
    let mut stack = MotoStack {
        child,
        endpoint,
        addr,
        log,
        admin: AdminCredentials {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            user_arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}"),
        },
        http,
    };
    loop {
        if let Ok(Some(status)) = stack.child.try_wait() {
            return Err(StackError::Exited {
                status: status.to_string(),
                log: tail(&stack.log),
            });
        }
        if is_moto(&stack.http, &stack.endpoint).await {
            return Ok(stack);
        }
        if Instant::now() >= deadline {
            return Err(StackError::NotReady {
                endpoint: format!("{}/moto-api/data.json", stack.endpoint),
                timeout,
                log: tail(&stack.log),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An `Authorization` header moto routes by (service from the credential scope);
/// the signature is not checked before enforcement is on.
fn scope_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0000"
    )
}

fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

fn trust_policy(admin_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": admin_arn, "Service": "pods.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }]
    })
    .to_string()
}

fn bucket_read_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        }]
    })
    .to_string()
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
        self.child.id()
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

    /// A [`FakeAgent`] builder minting real moto credentials, with the blog's
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
        let step = format!("reset-auth {}", if on { "0" } else { "inf" });
        let r = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(if on { "0" } else { "inf" })
            .send()
            .await
            .map_err(|e| StackError::Seed {
                step: step.clone(),
                detail: e.to_string(),
            })?;
        if !r.status().is_success() {
            return Err(StackError::Seed {
                step,
                detail: format!(
                    "HTTP {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    async fn iam(&self, step: &str, params: &[(&str, &str)]) -> Result<String, StackError> {
        let mut pairs = vec![("Version", "2010-05-08")];
        pairs.extend_from_slice(params);
        let r = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", scope_auth("iam"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&pairs))
            .send()
            .await
            .map_err(|e| StackError::Seed {
                step: step.into(),
                detail: e.to_string(),
            })?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(StackError::Seed {
                step: step.into(),
                detail: format!("HTTP {status}: {body}"),
            });
        }
        Ok(body)
    }

    async fn s3_put(&self, step: &str, path: &str, body: &str) -> Result<(), StackError> {
        let r = self
            .http
            .put(format!("{}/{path}", self.endpoint))
            .header("authorization", scope_auth("s3"))
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| StackError::Seed {
                step: step.into(),
                detail: e.to_string(),
            })?;
        if !r.status().is_success() {
            return Err(StackError::Seed {
                step: step.into(),
                detail: format!(
                    "HTTP {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    async fn seed(&mut self) -> Result<(), StackError> {
        let admin_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
        })
        .to_string();
        let user = self
            .iam(
                "CreateUser admin",
                &[("Action", "CreateUser"), ("UserName", ADMIN_USER)],
            )
            .await?;
        if let Some(arn) = xml_field(&user, "Arn") {
            self.admin.user_arn = arn;
        }
        self.iam(
            "PutUserPolicy admin",
            &[
                ("Action", "PutUserPolicy"),
                ("UserName", ADMIN_USER),
                ("PolicyName", "admin-all"),
                ("PolicyDocument", &admin_policy),
            ],
        )
        .await?;
        let key = self
            .iam(
                "CreateAccessKey admin",
                &[("Action", "CreateAccessKey"), ("UserName", ADMIN_USER)],
            )
            .await?;
        match (
            xml_field(&key, "AccessKeyId"),
            xml_field(&key, "SecretAccessKey"),
        ) {
            (Some(id), Some(secret)) => {
                self.admin.access_key_id = id;
                self.admin.secret_access_key = secret;
            }
            _ => {
                return Err(StackError::Seed {
                    step: "CreateAccessKey admin".into(),
                    detail: "no AccessKeyId/SecretAccessKey in the answer".into(),
                })
            }
        }
        let trust = trust_policy(&self.admin.user_arn);
        for (role, bucket) in [(POD_ROLE_NAME, APP_BUCKET), (NODE_ROLE_NAME, OTHER_BUCKET)] {
            self.iam(
                &format!("CreateRole {role}"),
                &[
                    ("Action", "CreateRole"),
                    ("RoleName", role),
                    ("AssumeRolePolicyDocument", &trust),
                    ("MaxSessionDuration", "43200"),
                ],
            )
            .await?;
            self.iam(
                &format!("PutRolePolicy {role}"),
                &[
                    ("Action", "PutRolePolicy"),
                    ("RoleName", role),
                    ("PolicyName", &format!("read-{bucket}")),
                    ("PolicyDocument", &bucket_read_policy(bucket)),
                ],
            )
            .await?;
        }
        for bucket in [APP_BUCKET, OTHER_BUCKET] {
            self.s3_put(&format!("CreateBucket {bucket}"), bucket, "")
                .await?;
            for (key, body) in SEED_OBJECTS {
                self.s3_put(
                    &format!("PutObject {bucket}/{key}"),
                    &format!("{bucket}/{key}"),
                    body,
                )
                .await?;
            }
        }
        self.set_enforcement(true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_forms() {
        assert_eq!(
            form_encode(&[("A", "b c/{\"x\"}"), ("k", "v")]),
            "A=b%20c%2F%7B%22x%22%7D&k=v"
        );
    }

    #[test]
    fn parses_xml_fields() {
        assert_eq!(
            xml_field("<a><AccessKeyId>AK</AccessKeyId></a>", "AccessKeyId").as_deref(),
            Some("AK")
        );
        assert_eq!(xml_field("<a/>", "x"), None);
    }

    #[test]
    fn finds_the_port_moto_listens_on() {
        let log = "WARNING: This is a development server.\n * Running on http://127.0.0.1:43781\nPress CTRL+C to quit\n";
        assert_eq!(listening_port(log), Some(43781));
        let all = " * Running on all addresses (0.0.0.0)\n * Running on http://127.0.0.1:5123\n * Running on http://10.0.0.5:5123\n";
        assert_eq!(listening_port(all), Some(5123));
        assert_eq!(listening_port("Starting...\n"), None);
    }

    #[test]
    fn not_found_message_names_the_script() {
        let e = StackError::NotFound {
            tried: vec![PathBuf::from("/r/.venv/bin/moto_server")],
        };
        assert_eq!(
            e.to_string(),
            "moto_server not found at /r/.venv/bin/moto_server: run scripts/ensure-moto.sh (or set MOTO_SERVER to its path)"
        );
    }
}
