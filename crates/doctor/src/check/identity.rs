//! Which source our `CredentialChain` resolves to, and who that is (STS).

use std::sync::Arc;
use std::time::Duration;

use eks_pod_identity_provider::Env;
use eks_pod_identity_provider::{CredentialChain, ProviderContext};
use tokio::time::{timeout_at, Instant};

use super::probe::{key_id_hint, SharedEnv};

pub(crate) const PROBE: &str = "identity";

/// What the chain (and STS) said; judged later against the IMDS role name.
#[derive(Debug, Default)]
pub(crate) struct IdentityObservation {
    /// `pod-identity` or `imds:<role>` when credentials resolved.
    pub source: Option<String>,
    /// The resolved credentials' AccessKeyId, shortened (`ASIA…`).
    pub key_id_hint: Option<String>,
    /// Why the chain resolved nothing.
    pub chain_error: Option<String>,
    /// `GetCallerIdentity` ARN.
    pub arn: Option<String>,
    /// Why STS could not be asked (or `None` when it was, or was switched off).
    pub sts_error: Option<String>,
    /// STS switched off.
    pub sts_skipped: bool,
}

pub(crate) struct IdentitySettings {
    pub imds_endpoint: Option<String>,
    pub sts: bool,
    pub sts_endpoint: Option<String>,
    pub connect_timeout: Duration,
    pub probe_timeout: Duration,
}

pub(crate) async fn probe(
    env: Arc<dyn Env>,
    settings: &IdentitySettings,
    deadline: Instant,
) -> IdentityObservation {
    let mut obs = IdentityObservation {
        sts_skipped: !settings.sts,
        ..Default::default()
    };
    let ctx = ProviderContext::new().with_env(SharedEnv(env.clone()));
    let mut builder = CredentialChain::builder()
        .context(ctx)
        .imds_timeouts(settings.connect_timeout, settings.probe_timeout)
        // The probe's own deadline bounds the whole check; the chain's IMDS
        // deadline only has to admit one request of these timeouts.
        .imds_fetch_timeout(settings.connect_timeout + 2 * settings.probe_timeout);
    if let Some(e) = &settings.imds_endpoint {
        builder = builder.imds_endpoint(e.clone());
    }
    let chain = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            // The chain's own fix text duplicates the EPI-PI findings' fixes.
            let text = e.to_string();
            let short = text.split(" Fix: ").next().unwrap_or(&text);
            obs.chain_error = Some(short.trim_end_matches('.').to_owned());
            return obs;
        }
    };
    let chain_deadline = deadline.min(Instant::now() + settings.probe_timeout);
    match timeout_at(chain_deadline, chain.credentials()).await {
        Err(_) => {
            obs.chain_error = Some(format!(
                "no credentials within {} ms",
                settings.probe_timeout.as_millis()
            ));
            return obs;
        }
        Ok(Err(e)) => {
            obs.chain_error = Some(e.to_string());
            return obs;
        }
        Ok(Ok(creds)) => {
            obs.source = Some(chain.status().source);
            obs.key_id_hint = Some(key_id_hint(creds.access_key_id()));
        }
    }
    if !settings.sts {
        return obs;
    }
    let region = env
        .non_empty("AWS_REGION")
        .or_else(|| env.non_empty("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = settings
        .sts_endpoint
        .clone()
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL_STS"))
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL"));
    let mut conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region))
        .credentials_provider(chain.clone());
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e);
    }
    let client = aws_sdk_sts::Client::from_conf(conf.build());
    let sts_deadline = deadline.min(Instant::now() + settings.probe_timeout);
    match timeout_at(sts_deadline, client.get_caller_identity().send()).await {
        Err(_) => {
            obs.sts_error = Some(format!(
                "GetCallerIdentity: no answer within {} ms",
                settings.probe_timeout.as_millis()
            ))
        }
        Ok(Err(e)) => {
            let text = match e.as_service_error() {
                Some(se) => format!(
                    "GetCallerIdentity: {}: {}",
                    se.meta().code().unwrap_or("error"),
                    se.meta().message().unwrap_or("")
                ),
                None => format!(
                    "GetCallerIdentity: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ),
            };
            obs.sts_error = Some(text.chars().take(300).collect());
        }
        Ok(Ok(out)) => obs.arn = out.arn().map(str::to_owned),
    }
    obs
}

/// The role name of an `assumed-role` ARN (`arn:aws:sts::1:assumed-role/ROLE/session`)
/// or a role ARN (`arn:aws:iam::1:role/path/ROLE`).
///
/// ```
/// use eks_pod_identity_doctor::check::role_of_arn;
/// assert_eq!(role_of_arn("arn:aws:sts::123456789012:assumed-role/node-role/i-0abc"), Some("node-role"));
/// assert_eq!(role_of_arn("arn:aws:iam::123456789012:role/path/app"), Some("app"));
/// assert_eq!(role_of_arn("arn:aws:iam::123456789012:user/admin"), None);
/// ```
pub fn role_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        rest.split('/').next().filter(|s| !s.is_empty())
    } else if let Some(rest) = resource.strip_prefix("role/") {
        rest.rsplit('/').next().filter(|s| !s.is_empty())
    } else {
        None
    }
}
