//! The testkit's fakes keep their own copies of the protocol facts on purpose
//! (a fake that shares the code under test cannot catch its bugs; see
//! "Independent copies of the protocol facts" in the testkit's crate docs).
//! These tests check each copy against the provider, through the provider's
//! public API only (`protocol::*`, env-configured providers on default
//! settings), so that a change to either side's copy fails here:
//!
//! - constants: agent addresses and `Host` values, IMDS endpoints, paths,
//!   header names (case-insensitively, as HTTP compares them) and token TTL;
//! - the testkit's RFC 3339 formatter: a [`FakeAgent`] hands out credentials
//!   whose `Expiration` has 0–9 fractional digits (trailing zeros trimmed), and
//!   the provider's credentials report exactly that instant; the same at
//!   IMDS's seconds precision through a [`FakeImds`];
//! - the testkit's JWT minting: the provider reads minted tokens from the
//!   token file, sends them, and the fake decodes them to the association.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eks_pod_identity_provider::protocol;
use eks_pod_identity_provider::{CredentialChain, MapEnv, PodIdentityProvider, ProviderContext};
use eks_pod_identity_testkit::token::{self, TokenBuilder, POD_IDENTITY_AUDIENCE};
use eks_pod_identity_testkit::{agent, imds, timefmt, FakeAgent, FakeImds};
use proptest::prelude::*;

const NS: &str = "my-app-namespace";
const SA: &str = "my-app-sa";
const ROLE: &str = "arn:aws:iam::123456789012:role/my-app-pod-identity-role";

// ---- constants ---------------------------------------------------------------

#[test]
fn the_fake_agents_host_values_are_the_providers_agent_addresses() {
    let provider_hosts = [
        protocol::POD_IDENTITY_AGENT_V4.to_string(),
        format!("[{}]", protocol::POD_IDENTITY_AGENT_V6),
    ];
    assert_eq!(
        agent::REAL_AGENT_HOSTS,
        provider_hosts.each_ref().map(String::as_str)
    );
}

#[test]
fn the_fake_agents_uris_on_the_real_addresses_are_accepted_by_the_provider() {
    // What `EksNode::agent_uri{,_v6}` hand to a pod: the provider must take
    // them as Pod Identity endpoints on its defaults.
    for ip in [
        protocol::POD_IDENTITY_AGENT_V4.into(),
        protocol::POD_IDENTITY_AGENT_V6.into(),
    ] {
        let uri = FakeAgent::uri_for(SocketAddr::new(ip, 80));
        let env = MapEnv::from_iter([
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t"),
        ]);
        let built = PodIdentityProvider::builder()
            .context(ProviderContext::new().with_env(env))
            .build();
        assert!(built.is_ok(), "{uri}: {:?}", built.err());
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_emulated_nodes_addresses_are_the_production_ones() {
    use eks_pod_identity_testkit::netns;
    assert_eq!(netns::AGENT_V4, protocol::POD_IDENTITY_AGENT_V4);
    assert_eq!(netns::AGENT_V6, protocol::POD_IDENTITY_AGENT_V6);
    // `EksNode::imds_endpoint{,_v6}` format these the same way.
    assert_eq!(
        format!("http://{}", netns::IMDS_V4),
        protocol::IMDS_ENDPOINT_V4
    );
    assert_eq!(
        format!("http://[{}]", netns::IMDS_V6),
        protocol::IMDS_ENDPOINT_V6
    );
}

#[test]
fn the_fake_imds_paths_headers_and_ttl_are_the_providers() {
    assert_eq!(imds::TOKEN_PATH, protocol::IMDS_TOKEN_PATH);
    assert_eq!(imds::CREDENTIALS_PATH, protocol::IMDS_ROLE_PATH);
    // Header names are case-insensitive in HTTP (RFC 9110, section 5.1).
    assert!(
        imds::TTL_HEADER.eq_ignore_ascii_case(protocol::IMDS_TOKEN_TTL_HEADER),
        "{} vs {}",
        imds::TTL_HEADER,
        protocol::IMDS_TOKEN_TTL_HEADER
    );
    assert!(
        imds::TOKEN_HEADER.eq_ignore_ascii_case(protocol::IMDS_TOKEN_HEADER),
        "{} vs {}",
        imds::TOKEN_HEADER,
        protocol::IMDS_TOKEN_HEADER
    );
    // The TTL the provider asks for is one IMDS grants.
    assert!(
        (1..=imds::MAX_TOKEN_TTL_SECS).contains(&protocol::IMDS_TOKEN_TTL_SECS),
        "the provider asks for {} s, IMDS grants 1..={} s",
        protocol::IMDS_TOKEN_TTL_SECS,
        imds::MAX_TOKEN_TTL_SECS
    );
}

// ---- RFC 3339 through the agent ------------------------------------------------

/// "Now" truncated to whole seconds, so a test chooses every fractional digit.
fn whole_seconds_now() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A [`FakeAgent`] whose wall clock the test sets, a minted token in a token
/// file, and the pod environment pointing at both.
struct Agent {
    agent: FakeAgent,
    now: Arc<Mutex<SystemTime>>,
    _dir: tempfile::TempDir,
    token_path: PathBuf,
}

impl Agent {
    async fn start() -> Self {
        let now = Arc::new(Mutex::new(whole_seconds_now()));
        let clock_now = now.clone();
        let agent = FakeAgent::builder()
            .association(NS, SA, ROLE)
            .clock(Arc::new(move || *clock_now.lock().unwrap()))
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let token_path = dir.path().join("eks-pod-identity-token");
        std::fs::write(&token_path, token::mint(NS, SA)).unwrap();
        Self {
            agent,
            now,
            _dir: dir,
            token_path,
        }
    }

    /// A provider on default settings, configured as EKS configures a pod.
    fn provider(&self) -> PodIdentityProvider {
        let env = MapEnv::from_iter([
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", self.agent.uri()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                self.token_path.display().to_string(),
            ),
        ]);
        PodIdentityProvider::builder()
            .context(ProviderContext::new().with_env(env))
            .build()
            .unwrap()
    }

    /// The fake hands out credentials expiring at `now + lifetime`; returns
    /// that instant and the one the provider's credentials report.
    async fn expiry_round_trip(
        &self,
        now: SystemTime,
        lifetime: Duration,
    ) -> (SystemTime, SystemTime) {
        *self.now.lock().unwrap() = now;
        self.agent.set_lifetime(lifetime).unwrap();
        let creds = self
            .provider()
            .credentials()
            .await
            .unwrap_or_else(|e| panic!("the provider got no credentials from the fake: {e}"));
        (now + lifetime, creds.expiry().expect("an expiry"))
    }
}

#[tokio::test]
async fn agent_expirations_round_trip_exactly_through_the_provider() {
    let fake = Agent::start().await;
    let now = whole_seconds_now();
    let hour = Duration::from_secs(3600);
    // Fractions whose Go-style encoding has 0 (whole seconds), 1, 2, 3, 5,
    // 6, 8 and 9 digits after trimming trailing zeros.
    for fraction in [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_millis(10),
        Duration::from_millis(123),
        Duration::from_micros(120),
        Duration::from_micros(1),
        Duration::from_nanos(10),
        Duration::from_nanos(1),
        Duration::from_nanos(123_456_789),
        Duration::from_nanos(999_999_999),
    ] {
        let (sent, reported) = fake.expiry_round_trip(now, hour + fraction).await;
        assert_eq!(
            reported,
            sent,
            "the fake sent `Expiration: {}` for {sent:?}; the provider read {reported:?}",
            timefmt::rfc3339_nano(sent)
        );
    }
    assert_eq!(fake.agent.stats().status(200), 10);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any instant within the next five years, at any nanosecond.
    #[test]
    fn any_agent_expiration_round_trips_exactly(
        extra_secs in 0u64..5 * 366 * 86_400,
        nanos in 0u32..1_000_000_000,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (sent, reported) = rt.block_on(async {
            let fake = Agent::start().await;
            let lifetime = Duration::from_secs(3600 + extra_secs) + Duration::from_nanos(nanos.into());
            fake.expiry_round_trip(whole_seconds_now(), lifetime).await
        });
        prop_assert_eq!(
            reported,
            sent,
            "the fake sent `Expiration: {}` for {:?}; the provider read {:?}",
            timefmt::rfc3339_nano(sent),
            sent,
            reported
        );
    }
}

// ---- IMDS's seconds format through the chain -------------------------------------

#[tokio::test]
async fn imds_expirations_round_trip_exactly_through_the_chain() {
    for lifetime in [imds::DEFAULT_LIFETIME, Duration::from_secs(3723)] {
        let now = whole_seconds_now();
        let fake = FakeImds::builder()
            .clock(Arc::new(move || now))
            .lifetime(lifetime)
            .start()
            .await
            .unwrap();
        // Outside Kubernetes, the chain's default takes IMDS at the endpoint
        // the environment names.
        let env = MapEnv::from_iter([("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.endpoint())]);
        let chain = CredentialChain::builder()
            .context(ProviderContext::new().with_env(env))
            .build()
            .unwrap();
        let creds = chain.credentials().await.unwrap();
        assert_eq!(
            creds.expiry(),
            Some(now + lifetime),
            "IMDS sent {}",
            timefmt::imds(now + lifetime)
        );
    }
}

// ---- minted tokens through the provider --------------------------------------------

#[tokio::test]
async fn minted_tokens_pass_the_providers_checks_and_reach_the_fake_intact() {
    let fake = Agent::start().await;
    // Kubernetes' longest names: namespace 63, service account 253 characters.
    let long_ns = "n".repeat(63);
    let long_sa = format!("{}.{}", "s".repeat(126), "a".repeat(126));
    fake.agent.add_association(&long_ns, &long_sa, ROLE);
    let cases: Vec<(&str, String)> = vec![
        ("token::mint", token::mint(NS, SA)),
        (
            "several audiences",
            TokenBuilder::new(NS, SA)
                .audiences(["sts.amazonaws.com", POD_IDENTITY_AUDIENCE])
                .build(),
        ),
        (
            "ten minutes left",
            TokenBuilder::new(NS, SA)
                .lifetime(Duration::from_secs(600))
                .build(),
        ),
        (
            "longest names",
            TokenBuilder::new(long_ns.as_str(), long_sa.as_str()).build(),
        ),
        (
            "file ends with a newline",
            format!("{}\n", token::mint(NS, SA)),
        ),
    ];
    for (i, (what, contents)) in cases.iter().enumerate() {
        std::fs::write(&fake.token_path, contents).unwrap();
        let result = fake.provider().credentials().await;
        assert!(result.is_ok(), "{what}: {}", result.unwrap_err());
        let stats = fake.agent.stats();
        assert_eq!(
            stats.status(200),
            i as u64 + 1,
            "{what}: {:?}",
            stats.by_status
        );
    }
}
