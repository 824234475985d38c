//! IMDSv2 client and the pod-aware chain against wiremock peers.

mod common;

use common::{SECRET, SESSION};
use eks_pod_identity_provider::test_util::ManualClock;
use eks_pod_identity_provider::CredentialSource;
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::{
    ChainError, CredentialChain, ErrorChain, ErrorKind, FallbackPolicy, ImdsError, ProviderContext,
    RetryPolicy,
};
use eks_pod_identity_provider::{ImdsOptions, ImdsSource};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROLES: &str = "/latest/meta-data/iam/security-credentials/";

fn creds_json(code: &str, valid_for: i64) -> serde_json::Value {
    let exp = if valid_for >= 0 {
        SystemTime::now() + Duration::from_secs(valid_for as u64)
    } else {
        SystemTime::now() - Duration::from_secs((-valid_for) as u64)
    };
    serde_json::json!({
        "Code": code,
        "LastUpdated": "2026-11-27T08:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIANODEROLE",
        "SecretAccessKey": SECRET,
        "Token": SESSION,
        "Expiration": eks_pod_identity_provider::protocol::rfc3339::format(exp),
    })
}

/// A conforming IMDSv2 with role `node-role` and session token `tok-1`.
async fn imds() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(header("x-aws-ec2-metadata-token-ttl-seconds", "21600"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                .set_body_string("tok-1"),
        )
        .mount(&s)
        .await;
    mount_role(&s, "node-role", "tok-1").await;
    s
}

/// A token endpoint answering `token` with the TTL header.
async fn mount_token(s: &MockServer, token: &str, ttl: &str) {
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-aws-ec2-metadata-token-ttl-seconds", ttl)
                .set_body_string(token),
        )
        .mount(s)
        .await;
}

async fn mount_role(s: &MockServer, role: &str, token: &str) {
    Mock::given(method("GET"))
        .and(path(ROLES))
        .and(header("x-aws-ec2-metadata-token", token))
        .respond_with(ResponseTemplate::new(200).set_body_string(role))
        .mount(s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}{role}")))
        .and(header("x-aws-ec2-metadata-token", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(creds_json("Success", 6 * 3600)))
        .mount(s)
        .await;
}

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
}

fn source_with(s: &MockServer, ctx: ProviderContext, options: ImdsOptions) -> ImdsSource {
    ImdsSource::new(s.uri().parse().unwrap(), ctx, options).unwrap()
}

fn source(s: &MockServer) -> ImdsSource {
    source_with(
        s,
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default().with_retry(fast()),
    )
}

async fn count(s: &MockServer, m: &str, p: &str) -> usize {
    s.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r: &&Request| r.method.as_str() == m && r.url.path() == p)
        .count()
}

fn imds_error(e: &eks_pod_identity_provider::RefreshError) -> &ImdsError {
    e.source_error()
        .downcast_ref::<ImdsError>()
        .expect("ImdsError")
}

#[tokio::test]
async fn one_token_serves_many_fetches_and_labels_the_role() {
    let s = imds().await;
    let src = source(&s);
    for _ in 0..5 {
        let f = src.fetch().await.unwrap();
        assert_eq!(f.label, "imds:node-role");
        assert_eq!(f.credentials.access_key_id(), "ASIANODEROLE");
    }
    assert_eq!(count(&s, "PUT", "/latest/api/token").await, 1);
    assert_eq!(
        count(&s, "GET", ROLES).await,
        5,
        "role re-read on every refresh"
    );
}

#[tokio::test]
async fn token_is_renewed_before_its_ttl_ends() {
    let s = MockServer::start().await;
    mount_token(&s, "tok-1", "300").await;
    mount_role(&s, "node-role", "tok-1").await;
    let clock = ManualClock::starting_now();
    let src = source_with(
        &s,
        ProviderContext::new()
            .with_env(MapEnv::default())
            .with_clock(clock.clone()),
        ImdsOptions::default(),
    );
    src.fetch().await.unwrap();
    clock.advance(Duration::from_secs(170));
    src.fetch().await.unwrap();
    assert_eq!(
        count(&s, "PUT", "/latest/api/token").await,
        1,
        "still inside TTL-120s"
    );
    clock.advance(Duration::from_secs(20));
    src.fetch().await.unwrap();
    assert_eq!(
        count(&s, "PUT", "/latest/api/token").await,
        2,
        "renewed 120 s before TTL"
    );
}

#[tokio::test]
async fn unauthorized_get_renews_the_token_and_retries_once() {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                .set_body_string("tok-old"),
        )
        .up_to_n_times(1)
        .mount(&s)
        .await;
    mount_token(&s, "tok-new", "21600").await;
    Mock::given(method("GET"))
        .and(header("x-aws-ec2-metadata-token", "tok-old"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    mount_role(&s, "node-role", "tok-new").await;
    let f = source(&s).fetch().await.unwrap();
    assert_eq!(f.label, "imds:node-role");
    assert_eq!(count(&s, "PUT", "/latest/api/token").await, 2);
}

#[tokio::test]
async fn forbidden_token_request_means_disabled_and_is_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&s)
        .await;
    let err = source(&s).fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImdsDisabled);
    assert!(ErrorChain(&err).to_string().contains("disabled"), "{err}");
    assert_eq!(count(&s, "PUT", "/latest/api/token").await, 1);
}

#[tokio::test]
async fn no_instance_profile_on_404_or_empty() {
    for resp in [
        ResponseTemplate::new(404),
        ResponseTemplate::new(200).set_body_string("\n"),
    ] {
        let s = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    .set_body_string("tok-1"),
            )
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path(ROLES))
            .respond_with(resp)
            .mount(&s)
            .await;
        let err = source(&s).fetch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoInstanceProfile, "{err}");
    }
}

#[tokio::test]
async fn a_renamed_role_is_picked_up_on_the_next_refresh() {
    let s = imds().await;
    let src = source(&s);
    assert_eq!(src.fetch().await.unwrap().label, "imds:node-role");
    s.reset().await;
    mount_token(&s, "tok-1", "21600").await;
    mount_role(&s, "renamed-role", "tok-1").await;
    assert_eq!(src.fetch().await.unwrap().label, "imds:renamed-role");
}

#[tokio::test]
async fn code_other_than_success_is_an_error() {
    let s = MockServer::start().await;
    mount_token(&s, "tok-1", "21600").await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("r"))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}r")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(creds_json("AssumeRoleUnauthorizedAccess", 3600)),
        )
        .mount(&s)
        .await;
    let err = source(&s).fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(
        ErrorChain(&err)
            .to_string()
            .contains("AssumeRoleUnauthorizedAccess"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_ttl_header_is_rejected() {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_string("tok-1"))
        .mount(&s)
        .await;
    mount_role(&s, "node-role", "tok-1").await;
    let err = source(&s).fetch().await.unwrap_err();
    assert!(
        matches!(imds_error(&err), ImdsError::MissingTtlHeader { .. }),
        "{err}"
    );
}

/// An IMDSv1-only server: no token endpoint, GETs without a token work.
async fn v1_only() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(405))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("node-role"))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}node-role")))
        .respond_with(ResponseTemplate::new(200).set_body_json(creds_json("Success", 3600)))
        .mount(&s)
        .await;
    s
}

#[tokio::test]
async fn imdsv1_is_refused_by_default_and_used_only_when_allowed() {
    let s = v1_only().await;
    let err = source(&s).fetch().await.unwrap_err();
    assert!(imds_error(&err).to_string().contains("405"), "{err}");
    assert_eq!(
        count(&s, "GET", ROLES).await,
        0,
        "no tokenless GET by default"
    );
    let allowed = source_with(
        &s,
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default().with_allow_imdsv1(true),
    );
    assert_eq!(allowed.fetch().await.unwrap().label, "imds:node-role");
    let gets = s.received_requests().await.unwrap();
    assert!(gets
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .all(|r| !r.headers.contains_key("x-aws-ec2-metadata-token")));
}

/// A peer that accepts every connection and never answers (what a pod sees
/// when the IMDS answer dies at hop limit 1); drop the handle to stop it.
async fn silent_listener() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await.unwrap().0);
        }
    });
    (addr, holder)
}

#[tokio::test(start_paused = true)]
async fn a_token_request_that_is_never_answered_reports_the_hop_limit() {
    let (addr, holder) = silent_listener().await;
    let src = ImdsSource::new(
        format!("http://{addr}").parse().unwrap(),
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default(),
    )
    .unwrap();
    let err = src.fetch().await.unwrap_err();
    assert!(
        matches!(imds_error(&err), ImdsError::TokenUnanswered { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        ErrorChain(&err).to_string().contains("hop limit of 1"),
        "{err}"
    );
    holder.abort();
}

#[tokio::test]
async fn stale_imds_credentials_are_extended_only_when_enabled() {
    let s = MockServer::start().await;
    mount_token(&s, "tok-1", "21600").await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("node-role"))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}node-role")))
        .respond_with(ResponseTemplate::new(200).set_body_json(creds_json("Success", -600)))
        .mount(&s)
        .await;
    let before = SystemTime::now();
    let f = source(&s).fetch().await.unwrap();
    assert!(f.expiration >= before + Duration::from_secs(600));
    assert!(f.expiration <= SystemTime::now() + Duration::from_secs(900));
    assert_eq!(f.credentials.expiry(), Some(f.expiration));
    let strict = source_with(
        &s,
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default().with_extend_stale_credentials(false),
    );
    assert!(strict.fetch().await.unwrap().expiration < SystemTime::now());
}

// ---- the chain -------------------------------------------------------------

fn chain_env(pairs: &[(&str, String)]) -> ProviderContext {
    ProviderContext::new().with_env(pairs.iter().cloned().collect::<MapEnv>())
}

#[tokio::test]
async fn configured_pod_identity_never_falls_back_even_when_the_agent_fails() {
    let agent = MockServer::start().await;
    Mock::given(path("/v1/credentials"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom\n"))
        .mount(&agent)
        .await;
    let s = imds().await;
    let chain = CredentialChain::builder()
        .context(chain_env(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{}/v1/credentials", agent.uri()),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t".into()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.uri()),
        ]))
        .fallback_policy(FallbackPolicy::Allow)
        .build()
        .unwrap();
    assert!(chain.uses_pod_identity());
    let err = chain.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerError);
    assert!(
        s.received_requests().await.unwrap().is_empty(),
        "IMDS never contacted"
    );
}

#[tokio::test]
async fn invalid_pod_identity_config_is_an_error_not_a_fallback() {
    let s = imds().await;
    let err = CredentialChain::builder()
        .context(chain_env(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://10.0.0.8/creds".into(),
            ),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.uri()),
        ]))
        .fallback_policy(FallbackPolicy::Allow)
        .build()
        .unwrap_err();
    assert!(matches!(err, ChainError::PodIdentity(_)), "{err}");
    assert!(err.to_string().contains("not falling back"));
}

#[tokio::test]
async fn outside_kubernetes_the_chain_uses_imds() {
    let s = imds().await;
    let chain = CredentialChain::builder()
        .context(chain_env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.uri())]))
        .build()
        .unwrap();
    let creds = chain.credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIANODEROLE");
    assert_eq!(chain.status().source, "imds:node-role");
}

#[tokio::test]
async fn inside_kubernetes_the_default_is_deny_and_imds_is_untouched() {
    let s = imds().await;
    let err = CredentialChain::builder()
        .context(chain_env(&[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.uri()),
            ("KUBERNETES_SERVICE_HOST", "10.100.0.1".into()),
        ]))
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ChainError::FallbackDenied { .. }));
    for needle in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "node's IAM role",
        "pod identity association",
        "FallbackPolicy::Allow",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run_in_k8s_with(policy: FallbackPolicy) -> String {
    let s = imds().await;
    let logs = Captured::default();
    let w = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let chain = CredentialChain::builder()
        .context(chain_env(&[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.uri()),
            ("KUBERNETES_SERVICE_HOST", "10.100.0.1".into()),
        ]))
        .fallback_policy(policy)
        .extend_stale_imds_credentials(false)
        .build()
        .unwrap();
    assert_eq!(
        chain.credentials().await.unwrap().access_key_id(),
        "ASIANODEROLE"
    );
    // A second fetch of the same role must not warn again.
    let src_chain = chain.clone();
    drop(src_chain);
    let out = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!out.contains(SECRET) && !out.contains(SESSION) && !out.contains("tok-1"));
    out
}

#[tokio::test(flavor = "current_thread")]
async fn warn_policy_falls_back_with_one_warning() {
    let out = run_in_k8s_with(FallbackPolicy::Warn).await;
    assert_eq!(out.matches("NODE's IAM role").count(), 1, "{out}");
    assert!(out.contains("imds:node-role"), "{out}");
}

#[tokio::test(flavor = "current_thread")]
async fn allow_policy_falls_back_silently() {
    let out = run_in_k8s_with(FallbackPolicy::Allow).await;
    assert!(!out.contains("NODE's IAM role"), "{out}");
}

#[tokio::test]
async fn disabled_imds_without_pod_identity_is_no_source() {
    let err = CredentialChain::builder()
        .context(chain_env(&[("AWS_EC2_METADATA_DISABLED", "true".into())]))
        .build()
        .unwrap_err();
    assert!(matches!(err, ChainError::NoSource), "{err}");
}

/// A TTL header that does not fit the clock (a broken or hostile IMDS) is
/// capped, never a panic, and the token is still used.
#[tokio::test]
async fn an_overflowing_token_ttl_is_capped_not_a_panic() {
    let s = MockServer::start().await;
    mount_token(&s, "tok-1", "9999999999999999999").await;
    mount_role(&s, "node-role", "tok-1").await;
    let src = source(&s);
    for _ in 0..2 {
        assert_eq!(src.fetch().await.unwrap().label, "imds:node-role");
    }
    assert_eq!(
        count(&s, "PUT", "/latest/api/token").await,
        1,
        "token reused"
    );
}

/// Credentials that are still valid, however briefly, are never extended:
/// only really expired ones are (the one exception to "never past expiry").
#[tokio::test]
async fn briefly_valid_imds_credentials_are_not_extended() {
    let s = MockServer::start().await;
    mount_token(&s, "tok-1", "21600").await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("node-role"))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}node-role")))
        .respond_with(ResponseTemplate::new(200).set_body_json(creds_json("Success", 30)))
        .mount(&s)
        .await;
    let f = source(&s).fetch().await.unwrap();
    assert!(
        f.expiration <= SystemTime::now() + Duration::from_secs(30),
        "30 s credentials were extended to {:?}",
        f.expiration
    );
    assert!(f.expiration > SystemTime::now());
}

/// A whole IMDS fetch ends at its deadline (default 10 s) even when every
/// request times out on its own schedule: here the token PUT and every
/// IMDSv1 GET connect and hang (1 s read timeout each), and with 20
/// attempts per request the fetch would last 21 s and more without the
/// overall deadline.
#[tokio::test(start_paused = true)]
async fn an_imds_fetch_ends_at_its_overall_deadline() {
    let (addr, holder) = silent_listener().await;
    let src = ImdsSource::new(
        format!("http://{addr}").parse().unwrap(),
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default()
            .with_allow_imdsv1(true)
            .with_retry(RetryPolicy::default().with_max_attempts(20)),
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    let err = src.fetch().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        matches!(imds_error(&err), ImdsError::Timeout { after, .. } if *after == Duration::from_secs(10)),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(11),
        "{took:?}"
    );
    holder.abort();
}
