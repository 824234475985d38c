//! Running one case: the environment cases, the cold https case, and the
//! runtime script (prime, fault, expiry).

use super::*;

/// Runs one case; `Err` says what went wrong.
pub async fn run(case: &Case, out: &mut Outcome) -> Result<(), String> {
    match &case.kind {
        CaseKind::Runtime(target, fault) => run_runtime(case, *target, fault, out).await,
        CaseKind::Env(pairs) => run_env(case, pairs, out).await,
        CaseKind::Cold(_) => run_cold_https(case, out).await,
    }
}

pub(crate) async fn run_env(
    case: &Case,
    pairs: &[(&'static str, String)],
    out: &mut Outcome,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN_A).unwrap();
    let mut env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    env.push((vars::TOKEN_FILE.into(), token.display().to_string()));
    let clock = ManualClock::new(t0());
    let built = PodIdentityProvider::builder()
        .context(ctx(&clock, &MapResolver::default()).with_env(env.into_iter().collect::<MapEnv>()))
        .build();
    match (&case.expect, built) {
        (Expect::Build(kind), Err(e)) => {
            out.show(&e);
            out.rendered.push(e.to_string());
            let got = match &e {
                BuildError::NotConfigured => ErrorKind::NotConfigured,
                BuildError::Config(c) => c.kind(),
                other => return Err(format!("unexpected build error {other:?}")),
            };
            check!(got == *kind, "build error kind {got:?}, want {kind:?}: {e}");
            Ok(())
        }
        (Expect::BuildOk(uri), Ok(p)) => {
            out.show(&p);
            check!(
                p.endpoint().uri().as_str() == *uri,
                "endpoint {} want {uri}",
                p.endpoint()
            );
            // Nothing is fetched at build time.
            check!(p.status().fetches == 0, "fetched at build");
            Ok(())
        }
        (want, got) => Err(format!("want {want:?}, got {got:?}")),
    }
}

pub(crate) async fn run_cold_https(case: &Case, out: &mut Outcome) -> Result<(), String> {
    let peer = Peer::start(|_| Reply::text(500, "unreachable")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN_A).unwrap();
    let clock = ManualClock::new(t0());
    let p = build_agent(
        &format!("https://{}/v1/credentials", peer.addr()),
        &token,
        &clock,
        &MapResolver::default(),
    )
    .map_err(|e| format!("https must be accepted: {e}"))?;
    let err = p
        .credentials()
        .await
        .err()
        .ok_or("https to a plain peer succeeded")?;
    out.show_err(&err);
    let Expect::Fail(kind) = case.expect else {
        unreachable!()
    };
    check!(
        err.kind() == kind,
        "kind {:?} want {kind:?}: {err}",
        err.kind()
    );
    check!(
        peer.request_count() == 0,
        "an HTTP request arrived in clear text"
    );
    let raw = peer.raw_bytes();
    check!(!raw.is_empty(), "no TLS handshake reached the peer");
    check!(
        !raw.windows(TOKEN_A.len()).any(|w| w == TOKEN_A.as_bytes()),
        "the token crossed the wire in clear text"
    );
    Ok(())
}

pub(crate) async fn run_runtime(
    case: &Case,
    target: Target,
    fault: &Fault,
    out: &mut Outcome,
) -> Result<(), String> {
    let clock = ManualClock::new(t0());
    let resolver = MapResolver::default();
    let n = Arc::new(AtomicUsize::new(0));
    let dir = tempfile::tempdir().unwrap();
    let token_path: PathBuf = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_path, format!("{TOKEN_A}\n")).unwrap();
    let imds_state = ImdsState {
        clock: clock.clone(),
        n: n.clone(),
        // A 121 s TTL (1 s after the 120 s renewal margin) makes every fetch
        // PUT one new session token, so the faulty fetch exercises the PUT
        // (except in the 401 case, which needs a cached token).
        ttl: Some(if matches!(fault, Fault::Imds401MidRun { .. }) {
            "21600"
        } else {
            "121"
        }),
        token: IMDS_TOKEN_1,
        role: "node-role",
        valid_for: 3600,
        code: "Success",
    };

    let peer = match target {
        Target::Imds => Peer::start(imds_handler(imds_state.clone())).await,
        Target::AgentV6 => Peer::start_on("[::1]:0", healthy_agent(clock.clone(), n.clone())).await,
        _ => Peer::start(healthy_agent(clock.clone(), n.clone())).await,
    };
    let subject = match target {
        Target::Imds => {
            let options = ImdsOptions::default()
                .with_connect_timeout(Duration::from_millis(200))
                .with_read_timeout(Duration::from_millis(200))
                .with_retry(retries())
                .with_allow_imdsv1(false)
                .with_extend_stale_credentials(false);
            let src = ImdsSource::new(
                peer.url("").parse().unwrap(),
                ctx(&clock, &resolver),
                options,
            )
            .map_err(|e| e.to_string())?;
            Subject::Imds(RefreshingCache::new(
                src,
                RefreshPolicy::default(),
                Arc::new(clock.clone()),
                Arc::new(FixedRandom(0.999)),
            ))
        }
        Target::Agent | Target::AgentV6 => Subject::Agent(
            build_agent(&peer.url(AGENT_PATH), &token_path, &clock, &resolver)
                .map_err(|e| e.to_string())?,
        ),
        Target::AgentByName => {
            resolver.set("agent.test", &["127.0.0.1"]);
            Subject::Agent(
                build_agent(
                    &format!("http://agent.test:{}{AGENT_PATH}", peer.port()),
                    &token_path,
                    &clock,
                    &resolver,
                )
                .map_err(|e| e.to_string())?,
            )
        }
    };

    // 1. Prime.
    let primed = subject
        .get()
        .await
        .map_err(|e| format!("prime failed: {e}"))?;
    out.show(&primed);
    out.rendered.push(subject.debug());
    let exp = primed.expiry().ok_or("primed credentials without expiry")?;
    check!(exp == t0() + HOUR, "primed expiry {exp:?}");

    // 2. Fault, inside the mandatory window.
    let fault_at = exp - Duration::from_secs(30);
    clock.set(fault_at);
    let scene = Scene {
        clock: clock.clone(),
        n: n.clone(),
        resolver: resolver.clone(),
        token_path: token_path.clone(),
        imds_state: imds_state.clone(),
    };
    let expected_expiry = inject(fault, &peer, &scene, fault_at).await;
    let requests_before = peer.request_count();
    let connections_before = peer.connections();
    let got = subject.get().await;
    let status = subject.status();
    out.show(&status);
    out.rendered.push(subject.debug());
    let requests = peer.request_count() - requests_before;
    if let Some(want) = case.requests {
        check!(
            requests == want,
            "faulty fetch sent {requests} requests, want {want}"
        );
    }
    if matches!(
        fault,
        Fault::ResolvesToRefused | Fault::Refused | Fault::Blackhole
    ) {
        check!(
            peer.connections() == connections_before,
            "a refused/unreachable peer accepted a connection"
        );
    }
    check!(
        !peer.requests().iter().any(|r| r.path == "/steal"),
        "the redirect was followed"
    );
    match &case.expect {
        Expect::Recover(_) => {
            let c = got.map_err(|e| format!("want recovery, got {e}"))?;
            out.show(&c);
            check!(
                c.access_key_id() != primed.access_key_id(),
                "still the primed credentials"
            );
            let new_exp = c.expiry().ok_or("no expiry")?;
            // Accepted means outside their own mandatory window
            // min(60 s, L/4), which for any lifetime L means unexpired.
            check!(
                new_exp > clock.now(),
                "recovered credentials already expired"
            );
            if let Some(want) = expected_expiry {
                check!(new_exp == want, "expiry {new_exp:?}, want {want:?}");
            }
            check!(
                status.failures == 0 && status.consecutive_failures == 0,
                "recovery recorded a failure: {status:?}"
            );
            if matches!(fault, Fault::ImdsRoleRenamed) {
                check!(
                    status.source == "imds:renamed-role",
                    "label {}",
                    status.source
                );
            }
            Ok(())
        }
        Expect::Fail(kind) => {
            let c = got.map_err(|e| format!("cached credentials not served: {e}"))?;
            check!(
                c.access_key_id() == primed.access_key_id(),
                "served {} not the cached creds",
                c.access_key_id()
            );
            check!(
                status.last_error_kind == Some(*kind),
                "status kind {:?}, want {kind:?}",
                status.last_error_kind
            );
            check!(
                status.failures >= 1 && status.consecutive_failures >= 1,
                "{status:?}"
            );
            check!(status.served_cached_after_failure >= 1, "{status:?}");
            check!(status.expiration == Some(exp), "{status:?}");

            // 3. Past expiry: never the expired credentials.
            clock.set(exp + Duration::from_secs(1));
            let err = match subject.get().await {
                Ok(c) => return Err(format!("served credentials past expiry: {:?}", c.expiry())),
                Err(e) => e,
            };
            out.show_err(&err);
            out.show(&subject.status());
            check!(
                err.kind() == *kind,
                "past-expiry kind {:?}, want {kind:?}: {err}",
                err.kind()
            );
            if let Subject::Agent(p) = &subject {
                use aws_credential_types::provider::ProvideCredentials;
                let sdk = p.provide_credentials().await;
                check!(
                    sdk.is_err(),
                    "ProvideCredentials served expired credentials"
                );
                out.show(&sdk);
            }
            check!(
                subject.status().expiration.is_none_or(|e| e == exp),
                "slot changed"
            );
            Ok(())
        }
        other => Err(format!("runtime case with expectation {other:?}")),
    }
}
