//! The agent client against a wiremock agent (real sockets, real time with
//! tiny backoffs; the hang case uses paused time).

mod common;

use aws_credential_types::provider::ProvideCredentials;
use common::{SECRET, SESSION};
use eks_pod_identity_provider::test_util::{ManualClock, MapResolver};
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::{
    AgentError, BuildError, ErrorChain, ErrorKind, PodIdentityProvider, ProviderContext,
    RetryPolicy,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN_A: &str = "eyJhbGciOiJSUzI1NiJ9.token-a.sig";
const TOKEN_B: &str = "eyJhbGciOiJSUzI1NiJ9.token-b.sig";

fn body(valid_for: Duration) -> serde_json::Value {
    let exp = SystemTime::now() + valid_for;
    serde_json::json!({
        "AccessKeyId": "ASIAAGENTTEST",
        "SecretAccessKey": SECRET,
        "Token": SESSION,
        "AccountId": "123456789012",
        "Expiration": eks_pod_identity_provider::protocol::rfc3339::format(exp),
    })
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body(Duration::from_secs(6 * 3600)))
}

fn text(status: u16, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/plain; charset=utf-8")
        .set_body_string(format!("{msg}\n"))
}

struct Fixture {
    server: MockServer,
    _dir: tempfile::TempDir,
    token_path: PathBuf,
}

impl Fixture {
    async fn new() -> Self {
        let server = MockServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let token_path = dir.path().join("eks-pod-identity-token");
        std::fs::write(&token_path, format!("{TOKEN_A}\n")).unwrap();
        Self {
            server,
            _dir: dir,
            token_path,
        }
    }

    fn uri(&self) -> String {
        format!("{}/v1/credentials", self.server.uri())
    }

    fn env(&self) -> MapEnv {
        MapEnv::from_iter([
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", self.uri()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                self.token_path.display().to_string(),
            ),
        ])
    }

    /// Every credentials request gets `response`.
    async fn answer(&self, response: ResponseTemplate) {
        Mock::given(path("/v1/credentials"))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    fn provider(&self) -> PodIdentityProvider {
        PodIdentityProvider::builder()
            .context(ProviderContext::new().with_env(self.env()))
            .retry_policy(fast_retries())
            .build()
            .unwrap()
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// The `Authorization` header of every request the agent received, in order.
    async fn tokens_sent(&self) -> Vec<String> {
        self.requests()
            .await
            .iter()
            .map(|r| {
                r.headers
                    .get("authorization")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
}

fn agent_error(err: &eks_pod_identity_provider::RefreshError) -> &AgentError {
    err.source_error()
        .downcast_ref::<AgentError>()
        .expect("an AgentError")
}

#[tokio::test]
async fn sends_raw_token_and_parses_credentials() {
    let f = Fixture::new().await;
    Mock::given(method("GET"))
        .and(path("/v1/credentials"))
        .and(header("authorization", TOKEN_A))
        .and(header("accept", "application/json"))
        .respond_with(ok())
        .expect(1)
        .mount(&f.server)
        .await;
    let p = f.provider();
    let creds = p.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAAGENTTEST");
    assert_eq!(creds.secret_access_key(), SECRET);
    assert_eq!(creds.session_token(), Some(SESSION));
    assert_eq!(creds.account_id().unwrap().as_str(), "123456789012");
    // Cached: the second call does not reach the agent.
    p.provide_credentials().await.unwrap();
    assert_eq!(f.requests().await.len(), 1);
    assert_eq!(p.status().source, "pod-identity");
}

#[tokio::test]
async fn token_file_is_reread_on_every_fetch() {
    let f = Fixture::new().await;
    f.answer(ResponseTemplate::new(200).set_body_json(body(Duration::from_secs(30))))
        .await;
    let clock = ManualClock::starting_now();
    let p = PodIdentityProvider::builder()
        .context(
            ProviderContext::new()
                .with_env(f.env())
                .with_clock(clock.clone()),
        )
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    // 30 s credentials are accepted on defaults (mandatory window 7.5 s).
    p.credentials().await.expect("30 s credentials");
    std::fs::write(&f.token_path, TOKEN_B).unwrap();
    // Into their mandatory window: the next call fetches, with the new token.
    clock.advance(Duration::from_secs(25));
    p.credentials().await.expect("refetched");
    let seen = f.tokens_sent().await;
    assert_eq!(seen, [TOKEN_A, TOKEN_B]);
}

/// Twenty-second credentials (what the example app got from its
/// agent) work on the default policy: accepted, served from the cache.
#[tokio::test]
async fn short_lived_credentials_are_accepted_on_defaults() {
    let f = Fixture::new().await;
    f.answer(ResponseTemplate::new(200).set_body_json(body(Duration::from_secs(20))))
        .await;
    let p = f.provider();
    for _ in 0..100 {
        p.credentials().await.expect("20 s credentials on defaults");
    }
    assert_eq!(f.requests().await.len(), 1, "served from the cache");
}

/// An agent that answers 404 at once (no association): callers share the
/// error during the backoff instead of each asking the agent, whose rate
/// budget is the whole node's.
#[tokio::test]
async fn a_fast_failing_agent_gets_one_request_per_backoff_not_per_caller() {
    let f = Fixture::new().await;
    f.answer(text(
        404,
        "[r]: (ResourceNotFoundException): no association, fault: client",
    ))
    .await;
    let clock = ManualClock::starting_now();
    let p = PodIdentityProvider::builder()
        .context(
            ProviderContext::new()
                .with_env(f.env())
                .with_clock(clock.clone()),
        )
        .build()
        .unwrap();
    for _ in 0..500 {
        let err = p.credentials().await.unwrap_err();
        assert_eq!(agent_error(&err).status(), Some(404));
    }
    assert_eq!(
        f.requests().await.len(),
        1,
        "500 callers, one agent request"
    );
    // After the backoff (at most 1 s after a first failure) the next caller
    // asks again, once.
    clock.advance(Duration::from_secs(1));
    for _ in 0..500 {
        p.credentials().await.unwrap_err();
    }
    assert_eq!(f.requests().await.len(), 2);
    assert_eq!(p.status().consecutive_failures, 2);
}

#[tokio::test]
async fn server_errors_are_retried_three_times_and_shared_by_100_waiters() {
    let f = Fixture::new().await;
    f.answer(text(
        500,
        "[req-1]: (InternalServerException): boom, fault: server",
    ))
    .await;
    let p = f.provider();
    let calls = (0..100).map(|_| {
        let p = p.clone();
        tokio::spawn(async move { p.credentials().await })
    });
    for r in futures_util::future::join_all(calls).await {
        let err = r.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerError);
        assert!(
            ErrorChain(&err)
                .to_string()
                .contains("InternalServerException"),
            "{err}"
        );
    }
    assert_eq!(
        f.requests().await.len(),
        3,
        "one fetch = 3 attempts, for all 100 callers"
    );
}

#[tokio::test]
async fn throttling_is_retried_then_succeeds() {
    let f = Fixture::new().await;
    Mock::given(path("/v1/credentials"))
        .respond_with(text(429, "Too Many Requests"))
        .up_to_n_times(2)
        .mount(&f.server)
        .await;
    f.answer(ok()).await;
    f.provider().credentials().await.unwrap();
    assert_eq!(f.requests().await.len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_the_agents_message() {
    for (status, msg, kind, hint) in [
        (
            400,
            "Service account token cannot be empty",
            ErrorKind::ClientError,
            "",
        ),
        (
            400,
            "Service account token cannot be parsed",
            ErrorKind::ClientError,
            "",
        ),
        (403, "Forbidden", ErrorKind::ClientError, "169.254.170.23"),
        (
            404,
            "[r]: (ResourceNotFoundException): no association, fault: client",
            ErrorKind::ClientError,
            "pod identity association",
        ),
        (
            400,
            "[r]: (AccessDeniedException): denied, fault: client",
            ErrorKind::ClientError,
            "sts:TagSession",
        ),
    ] {
        let f = Fixture::new().await;
        f.answer(text(status, msg)).await;
        let err = f.provider().credentials().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status} {msg}");
        assert_eq!(agent_error(&err).status(), Some(status));
        let shown = ErrorChain(&err).to_string();
        assert!(shown.contains(msg) && shown.contains(hint), "{shown}");
        assert_eq!(f.requests().await.len(), 1, "{status} must not be retried");
    }
}

#[tokio::test]
async fn expired_token_rereads_the_file_and_retries_once_at_once() {
    let f = Fixture::new().await;
    // The agent rejects TOKEN_A as expired, and the kubelet rotates the
    // file to TOKEN_B while that answer is on its way: the provider must
    // re-read the file and retry at once, within the same fetch.
    let token_path = f.token_path.clone();
    Mock::given(path("/v1/credentials"))
        .and(header("authorization", TOKEN_A))
        .respond_with(move |_: &Request| {
            std::fs::write(&token_path, format!("{TOKEN_B}\n")).unwrap();
            text(
                400,
                "Service account token failed basic claim validations: token is expired",
            )
        })
        .mount(&f.server)
        .await;
    Mock::given(path("/v1/credentials"))
        .and(header("authorization", TOKEN_B))
        .respond_with(ok())
        .mount(&f.server)
        .await;
    let p = f.provider();
    let creds = p.credentials().await.expect("the retry with the new token");
    assert_eq!(creds.access_key_id(), "ASIAAGENTTEST");
    let sent = f.tokens_sent().await;
    assert_eq!(sent, [TOKEN_A, TOKEN_B], "re-read and retried exactly once");
    let status = p.status();
    assert_eq!((status.fetches, status.failures), (1, 0));
}

#[tokio::test]
async fn expired_token_is_retried_only_once_when_the_file_is_not_rotated() {
    let f = Fixture::new().await;
    f.answer(text(
        400,
        "Service account token failed basic claim validations: token is expired",
    ))
    .await;
    let err = f.provider().credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenExpired);
    assert_eq!(
        f.requests().await.len(),
        2,
        "one re-read, one retry, no more"
    );
}

#[tokio::test]
async fn invalid_documents_and_oversized_bodies_are_typed_errors() {
    for (resp, needle) in [
        (
            ResponseTemplate::new(200).set_body_string("{not json"),
            "invalid credentials document",
        ),
        (
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"AccessKeyId":"a"})),
            "missing field SecretAccessKey",
        ),
        (
            ResponseTemplate::new(200).set_body_string("x".repeat(70 * 1024)),
            "body over 65536 bytes",
        ),
    ] {
        let f = Fixture::new().await;
        f.answer(resp).await;
        let err = f.provider().credentials().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(ErrorChain(&err).to_string().contains(needle), "{err}");
        assert_eq!(f.requests().await.len(), 1);
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let f = Fixture::new().await;
    let elsewhere = MockServer::start().await;
    f.answer(
        ResponseTemplate::new(307).insert_header("location", format!("{}/steal", elsewhere.uri())),
    )
    .await;
    let err = f.provider().credentials().await.unwrap_err();
    assert_eq!(agent_error(&err).status(), Some(307));
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn connection_refused_names_the_agent_uri() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let uri = format!("http://127.0.0.1:{port}/v1/credentials");
    let p = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(&uri)
        .token("t")
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = p.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(ErrorChain(&err).to_string().contains(&uri), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_agent_times_out_within_the_fetch_deadline() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    let p = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(format!("http://{addr}/v1/credentials"))
        .token("t")
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = p.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let waited = start.elapsed();
    assert!(
        waited <= Duration::from_secs(12) + Duration::from_millis(50),
        "{waited:?}"
    );
    accepted.abort();
}

#[tokio::test]
async fn hostnames_must_resolve_only_to_allowed_addresses() {
    let f = Fixture::new().await;
    f.answer(ok()).await;
    let port = f.server.address().port();
    let resolver = MapResolver::from_hosts([
        ("good.agent.test", &["127.0.0.1"][..]),
        ("evil.agent.test", &["127.0.0.1", "10.9.8.7"][..]),
    ]);
    let ctx = ProviderContext::new()
        .with_env(MapEnv::default())
        .with_resolver(resolver);
    let build = |host: &str| {
        PodIdentityProvider::builder()
            .context(ctx.clone())
            .endpoint(format!("http://{host}:{port}/v1/credentials"))
            .token("t")
            .retry_policy(fast_retries())
            .build()
            .unwrap()
    };
    build("good.agent.test").credentials().await.unwrap();
    assert_eq!(f.requests().await.len(), 1);
    let err = build("evil.agent.test").credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RefusedHost);
    assert!(ErrorChain(&err).to_string().contains("10.9.8.7"), "{err}");
    assert_eq!(
        f.requests().await.len(),
        1,
        "nothing was sent for the refused host"
    );
}

#[test]
fn refused_hosts_and_missing_config_fail_at_build() {
    let err = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::from_iter([(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/node",
        )])))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("instance metadata service"),
        "{err}"
    );
    let err = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NotConfigured));
    assert!(err
        .to_string()
        .contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
}

#[tokio::test]
async fn no_secret_in_debug_display_or_errors() {
    let f = Fixture::new().await;
    Mock::given(path("/v1/credentials"))
        .respond_with(ok())
        .up_to_n_times(1)
        .mount(&f.server)
        .await;
    f.answer(text(500, "boom")).await;
    let p = f.provider();
    let creds = p.credentials().await.unwrap();
    let mut shown = vec![
        format!("{p:?}"),
        format!("{creds:?}"),
        format!("{:?}", p.status()),
    ];
    let p2 = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(f.uri())
        .token(TOKEN_A)
        .build()
        .unwrap();
    shown.push(format!("{p2:?}"));
    let failing = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(f.env()))
        .retry_policy(RetryPolicy::no_retries())
        .build()
        .unwrap();
    // A fetch that fails after a success on the same agent.
    let err = failing.credentials().await.unwrap_err();
    shown.push(err.to_string());
    shown.push(ErrorChain(&err).to_string());
    shown.push(format!("{err:?}"));
    for s in &shown {
        for secret in [SECRET, SESSION, TOKEN_A, "token-a"] {
            assert!(!s.contains(secret), "secret leaked into {s}");
        }
    }
}

/// https to a peer that does not speak TLS: a TLS error, named as such, not
/// a connect failure (and not retried: it will not fix itself).
#[tokio::test]
async fn tls_failures_are_classified_as_tls() {
    let f = Fixture::new().await;
    let p = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(f.uri().replace("http://", "https://"))
        .token(TOKEN_A)
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = p.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        matches!(agent_error(&err), AgentError::Tls { .. }),
        "{err:?}"
    );
    assert!(
        ErrorChain(&err).to_string().contains("TLS handshake"),
        "{err}"
    );
    assert!(!agent_error(&err).is_retryable());
}

/// Out-of-range settings fail at build, with an error that names the field.
#[test]
fn out_of_range_settings_fail_at_build_naming_the_field() {
    use eks_pod_identity_provider::{ConfigError, RefreshPolicy};
    let base = || {
        PodIdentityProvider::builder()
            .context(ProviderContext::new().with_env(MapEnv::default()))
            .endpoint("http://169.254.170.23/v1/credentials")
            .token(TOKEN_A)
    };
    let field = |built: Result<PodIdentityProvider, BuildError>| match built {
        Err(BuildError::Config(ConfigError::InvalidSetting { field, .. })) => field,
        other => panic!("{other:?}"),
    };
    assert!(base().build().is_ok(), "the defaults are valid");
    assert_eq!(
        field(base().attempt_timeout(Duration::from_secs(20)).build()),
        "timeouts.attempt"
    );
    assert_eq!(
        field(base().connect_timeout(Duration::ZERO).build()),
        "timeouts.connect"
    );
    assert_eq!(
        field(
            base()
                .refresh_policy(
                    RefreshPolicy::default().with_mandatory_window(Duration::from_secs(200))
                )
                .build()
        ),
        "refresh_policy.mandatory_window"
    );
    assert_eq!(
        field(
            base()
                .retry_policy(RetryPolicy::default().with_max_attempts(0))
                .build()
        ),
        "retry_policy.max_attempts"
    );
    let err = base()
        .attempt_timeout(Duration::from_secs(20))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("timeouts.attempt") && err.to_string().contains("fetch timeout"),
        "{err}"
    );
}
