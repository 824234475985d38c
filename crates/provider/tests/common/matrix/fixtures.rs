//! The provider under test as each case builds it, and the fake peers' handlers.

use super::*;

pub(crate) fn ctx(clock: &ManualClock, resolver: &MapResolver) -> ProviderContext {
    ProviderContext::new()
        .with_env(MapEnv::default())
        .with_clock(clock.clone())
        .with_random(FixedRandom(0.999))
        .with_resolver(resolver.clone())
}

pub(crate) fn retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(4))
}

pub(crate) fn build_agent(
    endpoint: &str,
    token_path: &std::path::Path,
    clock: &ManualClock,
    resolver: &MapResolver,
) -> Result<PodIdentityProvider, BuildError> {
    PodIdentityProvider::builder()
        .context(ctx(clock, resolver))
        .endpoint(endpoint)
        .token_file(token_path)
        .retry_policy(retries())
        .connect_timeout(Duration::from_millis(200))
        .attempt_timeout(Duration::from_millis(300))
        .fetch_timeout(Duration::from_secs(3))
        .build()
}

pub(crate) fn healthy_agent(clock: ManualClock, n: Arc<AtomicUsize>) -> impl Fn(&Req) -> Reply {
    move |_req| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Reply::json(agent_doc(i, &fmt(clock.now() + HOUR)))
    }
}

#[derive(Clone)]
pub(crate) struct ImdsState {
    pub(crate) clock: ManualClock,
    pub(crate) n: Arc<AtomicUsize>,
    pub(crate) ttl: Option<&'static str>,
    pub(crate) token: &'static str,
    pub(crate) role: &'static str,
    pub(crate) valid_for: i64,
    pub(crate) code: &'static str,
}

pub(crate) fn imds_creds(s: &ImdsState) -> Reply {
    let i = s.n.fetch_add(1, Ordering::SeqCst);
    let now = s.clock.now();
    let exp = if s.valid_for >= 0 {
        now + Duration::from_secs(s.valid_for as u64)
    } else {
        now - Duration::from_secs((-s.valid_for) as u64)
    };
    Reply::json(
        serde_json::json!({
            "Code": s.code,
            "LastUpdated": fmt(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": format!("ASIAIMDS{i:08}"),
            "SecretAccessKey": SECRET,
            "Token": SESSION,
            "Expiration": fmt(exp),
        })
        .to_string(),
    )
}

pub(crate) fn imds_handler(s: ImdsState) -> impl Fn(&Req) -> Reply {
    move |req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            let r = Reply::status(200, "text/plain", s.token);
            match s.ttl {
                Some(ttl) => r.with_header("x-aws-ec2-metadata-token-ttl-seconds", ttl),
                None => r,
            }
        }
        ("GET", p) if req.header("x-aws-ec2-metadata-token") != Some(s.token) => {
            let _ = p;
            Reply::text(401, "")
        }
        ("GET", ROLES) => Reply::status(200, "text/plain", s.role),
        ("GET", p) if p == format!("{ROLES}{}", s.role) => imds_creds(&s),
        _ => Reply::text(404, "Not Found"),
    }
}
