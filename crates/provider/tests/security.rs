//! Security: secret hygiene across the whole fault matrix, refused hosts
//! never contacted, redirects never followed, proxy variables never used
//! (whatever the endpoint's host form), and body caps under a peer that
//! streams forever.
//!
//! The proxy test sets proxy variables only in a child process (this same
//! test binary, re-executed), never in this multi-threaded process.

#[path = "common/matrix/mod.rs"]
mod matrix;
#[path = "common/peer.rs"]
mod peer;

use eks_pod_identity_provider::config::{container_credentials_from_env, vars};
use eks_pod_identity_provider::test_util::MapResolver;
use eks_pod_identity_provider::CredentialSource;
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::{
    AgentError, CredentialChain, ErrorChain, ErrorKind, FallbackPolicy, PodIdentityProvider,
    ProviderContext, RetryPolicy,
};
use eks_pod_identity_provider::{ImdsOptions, ImdsSource};
use matrix::{SECRET, SECRETS, SESSION, TOKEN_A};
use peer::{Peer, Reply};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, texts: &[String]) {
    for t in texts {
        for s in SECRETS {
            assert!(!t.contains(s), "{what}: secret {s:?} leaked into: {t}");
        }
        // No distinctive fragment of a secret either.
        for frag in [
            "MATRIXSECRET",
            "MATRIXSESSION",
            "c2EtdG9rZW4",
            "sigALPHA",
            "sigBRAVO",
        ] {
            assert!(
                !t.contains(frag),
                "{what}: fragment {frag:?} leaked into: {t}"
            );
        }
    }
}

fn agent_doc(valid_for: Duration) -> String {
    matrix::agent_doc(
        1,
        &eks_pod_identity_provider::protocol::rfc3339::format(SystemTime::now() + valid_for),
    )
}

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(2)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(2))
}

/// Every tracing event (all levels, all targets) and every Debug/Display
/// the matrix produced: no secret appears.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_logs_debug_or_errors_across_the_fault_matrix() {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not thread-scoped: with `set_default`, callsites first hit by
    // the other tests of this binary (no subscriber) cache "never" interest
    // and their events would be lost. Everything this binary logs is captured.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let cases = matrix::cases();
    let mut out = matrix::Outcome::default();
    for case in &cases {
        matrix::run(case, &mut out)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }

    // Public types configured with secrets.
    let env = MapEnv::from_iter([
        (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
        (vars::TOKEN, TOKEN_A),
    ]);
    let found = container_credentials_from_env(&env).unwrap().unwrap();
    out.rendered.push(format!("{found:?} {env:?}"));
    let builder = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(env.clone()))
        .token(TOKEN_A);
    out.rendered.push(format!("{builder:?}"));
    let provider = builder.build().unwrap();
    out.rendered
        .push(format!("{provider:?} {:?}", provider.status()));
    let chain = CredentialChain::builder()
        .context(ProviderContext::new().with_env(env))
        .build()
        .unwrap();
    out.rendered.push(format!("{chain:?} {:?}", chain.status()));
    let creds =
        aws_credential_types::Credentials::new("ASIA", SECRET, Some(SESSION.into()), None, "t");
    out.rendered.push(format!("{creds:?}"));

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("credentials fetch failed") && logs.contains("error_kind"),
        "the capture saw the provider's events: {} lines, e.g. {:?}",
        logs.lines().count(),
        logs.lines().take(3).collect::<Vec<_>>()
    );
    assert!(
        logs.lines().count() > 100,
        "{} log lines",
        logs.lines().count()
    );
    assert_clean("tracing", std::slice::from_ref(&logs));
    assert_clean("Debug/Display", &out.rendered);
    println!(
        "secret hygiene: {} fault cases, {} log lines, {} rendered values/errors, no secret",
        cases.len(),
        logs.lines().count(),
        out.rendered.len()
    );
}

/// A hostile or misrouted peer that echoes the Authorization header in its
/// error body must not get the token into our errors or logs.
#[tokio::test]
async fn an_agent_echoing_the_token_does_not_leak_it() {
    let p = Peer::start(|q| {
        let auth = q.header("authorization").unwrap_or("").to_owned();
        Reply::text(400, &format!("invalid token {auth:?} (got {auth})"))
    })
    .await;
    let provider = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(p.url("/v1/credentials"))
        .token(TOKEN_A)
        .retry_policy(fast())
        .build()
        .unwrap();
    let err = provider.credentials().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClientError);
    let agent = err.source_error().downcast_ref::<AgentError>().unwrap();
    assert_clean(
        "echoed token",
        &[
            err.to_string(),
            ErrorChain(&err).to_string(),
            format!("{err:?}"),
            format!("{agent:?}"),
        ],
    );
    assert!(
        ErrorChain(&err).to_string().contains("invalid token"),
        "{err}"
    );
}

/// Hostnames that resolve to any refused address: nothing connects, even
/// though a listener we control is among the addresses.
#[tokio::test]
async fn refused_hosts_are_never_contacted() {
    let p = Peer::start(|_| Reply::json(agent_doc(Duration::from_secs(3600)))).await;
    let resolver = MapResolver::default();
    resolver.set("good.test", &["127.0.0.1"]);
    let refused = [
        ("imds.test", ["127.0.0.1", "169.254.169.254"]),
        ("private.test", ["127.0.0.1", "10.1.2.3"]),
        ("linklocal.test", ["127.0.0.1", "169.254.170.24"]),
        ("v6.test", ["127.0.0.1", "fd00:ec2::254"]),
        ("mapped.test", ["127.0.0.1", "::ffff:10.0.0.1"]),
        ("public.test", ["127.0.0.1", "52.94.0.1"]),
    ];
    for (host, addrs) in &refused {
        resolver.set(host, addrs);
    }
    let build = |host: &str| {
        PodIdentityProvider::builder()
            .context(
                ProviderContext::new()
                    .with_env(MapEnv::default())
                    .with_resolver(resolver.clone()),
            )
            .endpoint(format!("http://{host}:{}/v1/credentials", p.port()))
            .token(TOKEN_A)
            .retry_policy(fast())
            .build()
            .unwrap()
    };
    for (host, addrs) in &refused {
        let err = build(host).credentials().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RefusedHost, "{host}: {err}");
        assert!(ErrorChain(&err).to_string().contains(addrs[1]), "{err}");
        assert_eq!(p.connections(), 0, "{host}: a refused host was contacted");
    }
    // Control: the same listener is reachable through an allowed name.
    build("good.test").credentials().await.unwrap();
    assert_eq!(p.connections(), 1);
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let elsewhere = Peer::start(|_| Reply::json(agent_doc(Duration::from_secs(3600)))).await;
    for status in [301u16, 302, 303, 307, 308] {
        let to = elsewhere.url("/steal");
        let p =
            Peer::start(move |_| Reply::text(status, "moved").with_header("Location", &to)).await;
        let err = PodIdentityProvider::builder()
            .context(ProviderContext::new().with_env(MapEnv::default()))
            .endpoint(p.url("/v1/credentials"))
            .token(TOKEN_A)
            .retry_policy(fast())
            .build()
            .unwrap()
            .credentials()
            .await
            .unwrap_err();
        let agent = err.source_error().downcast_ref::<AgentError>().unwrap();
        assert_eq!(agent.status(), Some(status));
        let imds = ImdsSource::new(
            p.url("").parse().unwrap(),
            ProviderContext::new().with_env(MapEnv::default()),
            ImdsOptions::default(),
        )
        .unwrap();
        assert!(imds.fetch().await.is_err());
    }
    assert_eq!(elsewhere.connections(), 0, "a redirect was followed");
}

/// Under a peer that streams a body forever, agent and IMDS clients stop at
/// the 64 KiB cap and hang up.
#[tokio::test]
async fn body_caps_hold_against_endless_streams() {
    let p = Peer::start(|_| Reply::StreamForever).await;
    let err = PodIdentityProvider::builder()
        .context(ProviderContext::new().with_env(MapEnv::default()))
        .endpoint(p.url("/v1/credentials"))
        .token(TOKEN_A)
        .retry_policy(fast())
        .build()
        .unwrap()
        .credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(ErrorChain(&err).to_string().contains("65536"), "{err}");
    let imds_peer = Peer::start(|q| {
        if q.method == "PUT" {
            Reply::status(200, "text/plain", "tok")
                .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        } else {
            Reply::StreamForever
        }
    })
    .await;
    let imds = ImdsSource::new(
        imds_peer.url("").parse().unwrap(),
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default(),
    )
    .unwrap();
    let err = imds.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    // The peers stopped because we hung up, long before their 256 MiB limit
    // (what they wrote is the cap plus socket buffers).
    for (name, peer) in [("agent", &p), ("imds", &imds_peer)] {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let before = peer.streamed();
                tokio::time::sleep(Duration::from_millis(50)).await;
                if peer.streamed() == before {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} peer still streaming: the client never hung up"));
        assert!(
            peer.streamed() < 32 << 20,
            "{name}: {} bytes",
            peer.streamed()
        );
    }
}

const CHILD: &str = "EKS_POD_IDENTITY_PROXY_CHILD";

/// Proxy variables (all spellings) point at a hostile proxy, given as an IP
/// literal, in a child process: a plain client goes through it (control);
/// our agent client does not, whether the endpoint is an IP literal, a
/// hostname (whose resolution must then still be checked against the
/// allow-list) or an IPv4-mapped IPv6 literal, and neither does IMDS.
#[test]
fn proxy_env_does_not_route_local_traffic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(Peer::start(|_| {
        Reply::json(matrix::agent_doc(666, "2099-01-01T00:00:00Z"))
    }));
    let proxy_url = proxy.url("");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "proxy_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("https_proxy", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .env("all_proxy", &proxy_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("proxy child: ok"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = proxy.requests();
    assert_eq!(
        seen.len(),
        1,
        "only the control request may reach the proxy: {seen:?}"
    );
    assert!(seen[0].path.starts_with("http://127.0.0.1:"), "{seen:?}");
    assert!(seen[0].path.ends_with("/control"), "{seen:?}");
    drop(rt);
}

#[tokio::test]
#[ignore = "run by proxy_env_does_not_route_local_traffic in a child process"]
async fn proxy_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let agent = Peer::start(|_| Reply::json(agent_doc(Duration::from_secs(3600)))).await;
    // Control: an ordinary client honours the proxy variables.
    let control = reqwest::Client::new()
        .get(agent.url("/control"))
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 200);
    assert_eq!(
        agent.request_count(),
        0,
        "the control went through the proxy"
    );

    let resolver = MapResolver::default();
    resolver.set("agent.test", &["127.0.0.1"]);
    let port = agent.port();
    for (n, endpoint) in [
        agent.url("/v1/credentials"),
        format!("http://agent.test:{port}/v1/credentials"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1/credentials"),
    ]
    .into_iter()
    .enumerate()
    {
        let provider = PodIdentityProvider::builder()
            .context(
                ProviderContext::new()
                    .with_env(MapEnv::default())
                    .with_resolver(resolver.clone()),
            )
            .endpoint(&endpoint)
            .token(TOKEN_A)
            .build()
            .unwrap();
        let creds = provider.credentials().await.unwrap();
        assert_eq!(
            creds.access_key_id(),
            "ASIAMATRIX00000001",
            "{endpoint}: creds came from the agent"
        );
        assert_eq!(agent.request_count(), n + 1, "{endpoint}: direct");
    }

    // A hostname that resolves to a refused address is refused, not handed
    // to the proxy (which would skip the check).
    resolver.set("agent.test", &["10.1.2.3"]);
    let err = PodIdentityProvider::builder()
        .context(
            ProviderContext::new()
                .with_env(MapEnv::default())
                .with_resolver(resolver.clone()),
        )
        .endpoint(format!("http://agent.test:{port}/v1/credentials"))
        .token(TOKEN_A)
        .retry_policy(fast())
        .build()
        .unwrap()
        .credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RefusedHost, "{err}");

    let imds_peer = Peer::start(|q| match (q.method.as_str(), q.path.as_str()) {
        ("PUT", _) => Reply::status(200, "text/plain", "tok")
            .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        (_, "/latest/meta-data/iam/security-credentials/") => {
            Reply::status(200, "text/plain", "node-role")
        }
        _ => Reply::json(
            serde_json::json!({
                "Code": "Success",
                "AccessKeyId": "ASIAIMDSDIRECT",
                "SecretAccessKey": SECRET,
                "Token": SESSION,
                "Expiration": "2099-01-01T00:00:00Z",
            })
            .to_string(),
        ),
    })
    .await;
    let imds = ImdsSource::new(
        imds_peer.url("").parse().unwrap(),
        ProviderContext::new().with_env(MapEnv::default()),
        ImdsOptions::default(),
    )
    .unwrap();
    assert_eq!(
        imds.fetch().await.unwrap().credentials.access_key_id(),
        "ASIAIMDSDIRECT"
    );
    assert_eq!(imds_peer.request_count(), 3);
    let _ = FallbackPolicy::Deny;
    println!("proxy child: ok");
}
