//! Step 2 of a runtime case: injecting the fault.

use super::*;

/// What the injection needs from the case's set-up.
pub(crate) struct Scene {
    pub(crate) clock: ManualClock,
    pub(crate) n: Arc<AtomicUsize>,
    pub(crate) resolver: MapResolver,
    pub(crate) token_path: PathBuf,
    pub(crate) imds_state: ImdsState,
}

/// Injects `fault` at `fault_at` (into the peer, the token file or the
/// resolver); returns the expiry of the credentials the case then expects,
/// if it names one.
pub(crate) async fn inject(
    fault: &Fault,
    peer: &Peer,
    scene: &Scene,
    fault_at: SystemTime,
) -> Option<SystemTime> {
    let Scene {
        clock,
        n,
        resolver,
        token_path,
        imds_state,
    } = scene;
    let mut expected_expiry = None;
    let base = fault_at + 2 * HOUR;
    {
        let n = n.clone();
        let clock2 = clock.clone();
        match fault {
            Fault::Refused => peer.refuse().await,
            Fault::Blackhole => peer.blackhole().await,
            Fault::Reply(r) => {
                let r = r.clone();
                peer.set(move |_| r.clone())
            }
            Fault::ReplyThenOk(k, r) => {
                let r = r.clone();
                let k = *k;
                let seen = AtomicUsize::new(0);
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if seen.fetch_add(1, Ordering::SeqCst) < k {
                        r.clone()
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::Body(f) => {
                let f = *f;
                peer.set(move |_| Reply::json(f(n.fetch_add(1, Ordering::SeqCst), base)))
            }
            Fault::ValidFor(secs) => {
                let exp = if *secs >= 0 {
                    fault_at + Duration::from_secs(*secs as u64)
                } else {
                    fault_at - Duration::from_secs(secs.unsigned_abs())
                };
                if *secs > 60 {
                    expected_expiry = Some(exp);
                }
                peer.set(move |_| {
                    Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &fmt(exp)))
                })
            }
            Fault::Fraction(d) => {
                let digits = &"123456789"[..*d];
                let nanos: u64 = if *d == 0 {
                    0
                } else {
                    digits.parse::<u64>().unwrap() * 10u64.pow(9 - *d as u32)
                };
                let secs = base
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
                let text = fmt(whole).trim_end_matches('Z').to_owned();
                let text = if *d == 0 {
                    format!("{text}Z")
                } else {
                    format!("{text}.{digits}Z")
                };
                expected_expiry = Some(whole + Duration::from_nanos(nanos));
                peer.set(move |_| Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &text)))
            }
            Fault::Offset(minutes) => {
                let text = with_offset(base, *minutes);
                expected_expiry = Some(base);
                peer.set(move |_| Reply::json(agent_doc(n.fetch_add(1, Ordering::SeqCst), &text)))
            }
            Fault::TokenExpired { rotate } => {
                let rotate = *rotate;
                let path = token_path.clone();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        return ok(q);
                    }
                    if rotate {
                        // The kubelet rotates the token while this request is answered.
                        std::fs::write(&path, format!("{TOKEN_B}\n")).unwrap();
                    }
                    Reply::text(
                        400,
                        "Service account token failed basic claim validations: token is expired",
                    )
                })
            }
            Fault::Redirect => {
                let to = peer.url("/steal");
                peer.set(move |_| Reply::text(307, "moved").with_header("Location", &to))
            }
            Fault::TokenMissing => std::fs::remove_file(token_path).unwrap(),
            Fault::TokenContent(bytes) => {
                std::fs::write(token_path, bytes).unwrap();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        ok(q)
                    } else {
                        Reply::text(400, "Service account token cannot be parsed")
                    }
                })
            }
            Fault::TokenRotated => {
                std::fs::write(token_path, TOKEN_B).unwrap();
                let ok = healthy_agent(clock2, n);
                peer.set(move |q| {
                    if q.header("authorization") == Some(TOKEN_B) {
                        ok(q)
                    } else {
                        Reply::text(400, "Service account token failed basic claim validations: token is expired")
                    }
                })
            }
            Fault::TokenIsDirectory => {
                std::fs::remove_file(token_path).unwrap();
                std::fs::create_dir(token_path).unwrap();
            }
            Fault::TokenOversize => std::fs::write(token_path, "a".repeat(16 * 1024 + 1)).unwrap(),
            Fault::ResolvesToRefused => resolver.set("agent.test", &["127.0.0.1", "10.9.8.7"]),
            Fault::ImdsPutHang => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::Hang
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsPut403 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::text(403, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::Imds401MidRun { recover } => {
                let next = ImdsState {
                    token: if *recover { IMDS_TOKEN_2 } else { IMDS_TOKEN_1 },
                    ..imds_state.clone()
                };
                let recover = *recover;
                let inner = imds_handler(next);
                peer.set(move |q| {
                    if !recover && q.method == "GET" {
                        Reply::text(401, "")
                    } else {
                        inner(q)
                    }
                })
            }
            Fault::ImdsRoles404 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path == ROLES {
                        Reply::text(404, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsRolesEmpty => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path == ROLES {
                        Reply::status(200, "text/plain", "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsRoleRenamed => peer.set(imds_handler(ImdsState {
                role: "renamed-role",
                ..imds_state.clone()
            })),
            Fault::ImdsTtlMissing => peer.set(imds_handler(ImdsState {
                ttl: None,
                ..imds_state.clone()
            })),
            Fault::ImdsV1Only => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.method == "PUT" {
                        Reply::text(405, "")
                    } else {
                        let mut q = q.clone();
                        q.headers
                            .push(("x-aws-ec2-metadata-token".into(), IMDS_TOKEN_1.into()));
                        ok(&q)
                    }
                })
            }
            Fault::Imds500 => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path.len() > ROLES.len() {
                        Reply::text(500, "")
                    } else {
                        ok(q)
                    }
                })
            }
            Fault::ImdsNotSuccess => peer.set(imds_handler(ImdsState {
                code: "AssumeRoleUnauthorizedAccess",
                ..imds_state.clone()
            })),
            Fault::ImdsExpired => peer.set(imds_handler(ImdsState {
                valid_for: -600,
                ..imds_state.clone()
            })),
            Fault::ImdsStreamForever => {
                let ok = imds_handler(imds_state.clone());
                peer.set(move |q| {
                    if q.path.len() > ROLES.len() {
                        Reply::StreamForever
                    } else {
                        ok(q)
                    }
                })
            }
        }
    }
    expected_expiry
}
