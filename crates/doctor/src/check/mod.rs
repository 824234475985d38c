//! The runtime `check`: probes from inside a pod (or on a host) that tell
//! whether this pod can take the node's IAM role, and whether Pod Identity
//! works for it.
//!
//! Probes run concurrently, each bounded by [`CheckOptions::probe_timeout`]
//! (2 s), the whole check by [`CheckOptions::timeout`] (5 s):
//!
//! | probe | what | rules |
//! |---|---|---|
//! | `imds-ipv4`, `imds-ipv6` | raw TCP + HTTP/1.1 to IMDS: refused / unreachable / connect timeout / PUT unanswered / 403 / token / role / credentials / IMDSv1 | `EPI-IMDS-*` |
//! | `pod-identity-env` | `AWS_CONTAINER_CREDENTIALS_FULL_URI` present and allowed | `EPI-PI-001`, `-002` |
//! | `pod-identity-token` | token file present, readable, JWT-shaped, audience, expiry | `EPI-PI-003`..`-007` |
//! | `pod-identity-agent` | `GET` with the token: status or error text | `EPI-PI-008`..`-010` |
//! | `env-shadowing` | static keys, `AWS_PROFILE`, shared files, IRSA vars | `EPI-ENV-*` |
//! | `identity` | what our `CredentialChain` resolves to; STS `GetCallerIdentity` vs the IMDS role | `EPI-ID-001`..`-004` |
//! | `host-network` | pod IP == host IP (downward API env) | `EPI-ID-010` |
//!
//! Every outcome is a finding with its own rule id (protected ones as `info`)
//! and a [`ProbeResult`](crate::report::ProbeResult) in the report, so a clean
//! run shows *why* it is clean.
//!
//! Each probe is a module (`imds`, `pod_identity`, `token`, `shadow`,
//! `identity`, `host_network`) with its own outcome enum and two halves: I/O
//! steps that gather raw results, and a pure `classify` that turns them into
//! outcomes. The enum alone decides each outcome's JSON name, rule and status
//! (exhaustive matches, so the compiler checks the whole matrix); `probe`
//! holds what they share.
//! Nothing secret is ever printed: credentials appear as an AccessKeyId prefix
//! (`ASIA…`), a role name and an expiry; tokens never.
//!
//! The environment is injected ([`CheckOptions::env`]), and every file path
//! comes from it (token file, `HOME`, `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE`), so tests never touch the process environment.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eks_pod_identity_doctor::check::CheckError> {
//! use eks_pod_identity_doctor::check::{run_check, CheckOptions};
//! use eks_pod_identity_doctor::report::{Severity, Verdict};
//! let report = run_check(&CheckOptions::default()).await?;
//! if report.verdict(Severity::High) == Verdict::LeaksNodeRole {
//!     eprintln!("this pod can take the node role");
//! }
//! # Ok(()) }
//! ```

mod host_network;
pub mod http;
mod identity;
mod imds;
pub mod pod_identity;
mod probe;
mod shadow;
mod summary;
mod token;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use eks_pod_identity_provider::config::vars;
use eks_pod_identity_provider::protocol::{IMDS_ENDPOINT_V4, IMDS_ENDPOINT_V6};
use eks_pod_identity_provider::{Env, ProcessEnv};
use tokio::time::{timeout_at, Instant};
use url::{Host, Url};

use crate::report::{Command, Report};

use identity::IdentityOutcome;
use imds::ImdsOutcome;
use pod_identity::{AgentOutcome, EnvOutcome, AGENT_PROBE, ENV_PROBE, TOKEN_PROBE};
use probe::Probe;
use token::TokenOutcome;

pub use identity::role_of_arn;

/// Probe name of the IPv4 IMDS probe.
pub const PROBE_IMDS_IPV4: &str = "imds-ipv4";
/// Probe name of the IPv6 IMDS probe.
pub const PROBE_IMDS_IPV6: &str = "imds-ipv6";
/// Probe name of the host-network hint.
pub const PROBE_HOST_NETWORK: &str = host_network::PROBE;
/// Probe name of the identity probe.
pub const PROBE_IDENTITY: &str = identity::PROBE;

/// Settings of one check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Where every environment variable (and thereby every file path) comes from.
    pub env: Arc<dyn Env>,
    /// Bound on the whole check (default 5 s).
    pub timeout: Duration,
    /// Bound on each probe (default 2 s); also how long an unanswered token PUT is waited for.
    pub probe_timeout: Duration,
    /// TCP connect timeout (default 1.5 s): past it, the SYN counts as dropped.
    pub connect_timeout: Duration,
    /// IPv4 IMDS endpoint (default: `AWS_EC2_METADATA_SERVICE_ENDPOINT` when it is
    /// not an IPv6 literal, else `http://169.254.169.254`).
    pub imds_endpoint: Option<String>,
    /// IPv6 IMDS endpoint (default: `AWS_EC2_METADATA_SERVICE_ENDPOINT` when it is
    /// an IPv6 literal, else `http://[fd00:ec2::254]`).
    pub imds_ipv6_endpoint: Option<String>,
    /// Probe IMDS over IPv6 too (default `true`).
    pub ipv6: bool,
    /// Ask STS `GetCallerIdentity` who the resolved credentials are (default `true`).
    pub sts: bool,
    /// STS endpoint (default: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, then the SDK's).
    pub sts_endpoint: Option<String>,
    /// Env var holding the pod IP (default `POD_IP`, from the downward API `status.podIP`).
    pub pod_ip_env: String,
    /// Env var holding the host IP (default `HOST_IP`, from `status.hostIP`).
    pub host_ip_env: String,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            env: Arc::new(ProcessEnv),
            timeout: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            // > 1 s: an IPv6 ICMP prohibit surfaces only after the first SYN retransmit.
            connect_timeout: Duration::from_millis(1500),
            imds_endpoint: None,
            imds_ipv6_endpoint: None,
            ipv6: true,
            sts: true,
            sts_endpoint: None,
            pod_ip_env: "POD_IP".into(),
            host_ip_env: "HOST_IP".into(),
        }
    }
}

impl CheckOptions {
    /// Defaults, reading variables from `env` instead of the process.
    pub fn with_env(env: impl Env) -> Self {
        CheckOptions {
            env: Arc::new(env),
            ..Default::default()
        }
    }
}

/// Why a check could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An IMDS endpoint (flag or env) is not a valid `http(s)` URL.
    #[error("invalid IMDS endpoint {value:?} (from {origin}): {reason}")]
    InvalidEndpoint {
        /// The value.
        value: String,
        /// Flag or variable it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A timeout is zero.
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
}

fn parse_endpoint(value: &str, origin: &str) -> Result<Url, CheckError> {
    let err = |reason: String| CheckError::InvalidEndpoint {
        value: value.to_owned(),
        origin: origin.to_owned(),
        reason,
    };
    let url = Url::parse(value.trim()).map_err(|e| err(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(err(format!(
            "scheme {} (IMDS is probed over plain http)",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(err("no host".into()));
    }
    Ok(url)
}

/// The IPv4 and IPv6 IMDS endpoints to probe, from the options and the env.
fn imds_endpoints(opts: &CheckOptions) -> Result<(Url, Url), CheckError> {
    let env_endpoint = opts
        .env
        .non_empty(vars::IMDS_ENDPOINT)
        .map(|v| parse_endpoint(&v, vars::IMDS_ENDPOINT))
        .transpose()?;
    let env_is_v6 = env_endpoint
        .as_ref()
        .is_some_and(|u| matches!(u.host(), Some(Host::Ipv6(_))));
    let v4 = match &opts.imds_endpoint {
        Some(v) => parse_endpoint(v, "--imds-endpoint")?,
        None => match &env_endpoint {
            Some(u) if !env_is_v6 => u.clone(),
            _ => parse_endpoint(IMDS_ENDPOINT_V4, "default")?,
        },
    };
    let v6 = match &opts.imds_ipv6_endpoint {
        Some(v) => parse_endpoint(v, "--imds-ipv6-endpoint")?,
        None => match &env_endpoint {
            Some(u) if env_is_v6 => u.clone(),
            _ => parse_endpoint(IMDS_ENDPOINT_V6, "default")?,
        },
    };
    Ok((v4, v6))
}

/// Runs every probe and returns the report (findings sorted, probes in a fixed order).
///
/// What the probes find is in the report, never an error.
///
/// # Errors
///
/// [`CheckError::ZeroTimeout`] when a timeout of `opts` is zero, and
/// [`CheckError::InvalidEndpoint`] when an IMDS endpoint (an option or
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`) is not a valid `http` URL.
pub async fn run_check(opts: &CheckOptions) -> Result<Report, CheckError> {
    for (d, name) in [
        (opts.timeout, "--timeout"),
        (opts.probe_timeout, "--probe-timeout"),
        (opts.connect_timeout, "--connect-timeout"),
    ] {
        if d.is_zero() {
            return Err(CheckError::ZeroTimeout(name));
        }
    }
    let (v4, v6) = imds_endpoints(opts)?;
    let start = Instant::now();
    let overall = start + opts.timeout;
    let probe_deadline = overall.min(start + opts.probe_timeout);
    let connect_timeout = opts.connect_timeout.min(opts.probe_timeout);
    let id_settings = identity::IdentitySettings {
        imds_endpoint: opts.imds_endpoint.clone(),
        sts: opts.sts,
        sts_endpoint: opts.sts_endpoint.clone(),
        connect_timeout,
        probe_timeout: opts.probe_timeout,
    };
    let now = SystemTime::now();

    let imds4 = timeout_at(
        overall,
        imds::probe(PROBE_IMDS_IPV4, &v4, connect_timeout, probe_deadline),
    );
    let imds6 = async {
        if opts.ipv6 {
            Some(
                timeout_at(
                    overall,
                    imds::probe(PROBE_IMDS_IPV6, &v6, connect_timeout, probe_deadline),
                )
                .await,
            )
        } else {
            None
        }
    };
    let pi = timeout_at(
        overall,
        pod_identity::probe(&*opts.env, now, connect_timeout, probe_deadline),
    );
    let id = timeout_at(
        overall,
        identity::probe(opts.env.clone(), &id_settings, overall),
    );
    let (imds4, imds6, pi, id) = tokio::join!(imds4, imds6, pi, id);

    let mut report = Report::new(Command::Check);
    let mut roles = Vec::new();

    for (name, url, res) in [
        (PROBE_IMDS_IPV4, &v4, Some(imds4)),
        (PROBE_IMDS_IPV6, &v6, imds6),
    ] {
        roles.extend(imds_result(name, url, res, opts.timeout).finish_with_role(&mut report));
    }
    match pi {
        Ok(obs) => obs.probes.into_iter().for_each(|p| p.finish(&mut report)),
        Err(_) => {
            let budget = opts.timeout;
            probe::timed_out(ENV_PROBE, None, EnvOutcome::TimedOut, budget).finish(&mut report);
            probe::timed_out(TOKEN_PROBE, None, TokenOutcome::TimedOut, budget).finish(&mut report);
            probe::timed_out(AGENT_PROBE, None, AgentOutcome::TimedOut, budget).finish(&mut report);
        }
    }
    shadow::probe(&*opts.env).finish(&mut report);
    match id {
        Ok(obs) => {
            let in_kubernetes = opts.env.non_empty(vars::KUBERNETES_SERVICE_HOST).is_some();
            let mut p = Probe::new(PROBE_IDENTITY, None);
            p.record(identity::classify(&obs, &roles, in_kubernetes));
            p.finish(&mut report);
        }
        Err(_) => probe::timed_out(
            PROBE_IDENTITY,
            None,
            IdentityOutcome::TimedOut,
            opts.timeout,
        )
        .finish(&mut report),
    }
    host_network::probe(&*opts.env, &opts.pod_ip_env, &opts.host_ip_env).finish(&mut report);
    report.sort();
    Ok(report)
}

/// What an IMDS probe contributes: its observation, a `timeout`, or `skipped`
/// (`None`: `--no-ipv6`).
fn imds_result(
    name: &'static str,
    url: &Url,
    res: Option<Result<imds::ImdsObservation, tokio::time::error::Elapsed>>,
    budget: Duration,
) -> imds::ImdsObservation {
    match res {
        Some(Ok(obs)) => obs,
        // Exposure unknown: a finding, so the report does not read as clean.
        Some(Err(_)) => imds::ImdsObservation {
            probe: probe::timed_out(
                name,
                Some(imds::display(url)),
                ImdsOutcome::TimedOut,
                budget,
            ),
            role: None,
        },
        None => imds::ImdsObservation {
            probe: probe::skipped(
                name,
                Some(imds::display(url)),
                ImdsOutcome::Skipped,
                "--no-ipv6",
            ),
            role: None,
        },
    }
}

impl imds::ImdsObservation {
    /// Adds the probe to `report`; returns the role it read, if any.
    fn finish_with_role(self, report: &mut Report) -> Option<String> {
        self.probe.finish(report);
        self.role
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProbeStatus, Severity};

    #[tokio::test]
    async fn a_probe_cut_off_by_the_overall_budget_is_a_timeout_outcome() {
        // A probe that never finishes (run_check bounds each probe with
        // `timeout_at(overall, ..)`; a deadline already past stands in for the
        // budget running out).
        let url = Url::parse("http://169.254.169.254").unwrap();
        let cut = timeout_at(
            Instant::now(),
            std::future::pending::<imds::ImdsObservation>(),
        )
        .await;
        assert!(cut.is_err());
        let obs = imds_result(PROBE_IMDS_IPV4, &url, Some(cut), Duration::from_secs(5));
        let mut report = Report::new(Command::Check);
        assert_eq!(obs.finish_with_role(&mut report), None);
        let p = &report.probes()[0];
        assert_eq!(p.probe, PROBE_IMDS_IPV4);
        assert_eq!(p.outcomes, ["timeout"]);
        assert_eq!(p.status, ProbeStatus::Unknown);
        assert_eq!(p.detail, "did not finish within 5000 ms");
        assert_eq!(p.target.as_deref(), Some("http://169.254.169.254"));
        // Exposure unknown, and said so: EPI-IMDS-016, so the report does not
        // read as clean at --fail-on medium.
        let ids: Vec<&str> = report
            .findings()
            .iter()
            .map(|f| f.rule_id.as_str())
            .collect();
        assert_eq!(ids, ["EPI-IMDS-016"]);
        assert_eq!(
            report.findings()[0].evidence,
            "the probe did not finish within the check's 5000 ms"
        );
        assert_ne!(
            report.verdict(Severity::Medium),
            crate::report::Verdict::Protected
        );

        // `None` is --no-ipv6: skipped, never a timeout.
        let obs = imds_result(PROBE_IMDS_IPV6, &url, None, Duration::from_secs(5));
        assert_eq!(obs.probe.outcomes, ["skipped"]);
    }
}
