//! FakeAgent behaviour over real loopback HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eks_pod_identity_testkit::agent::{
    FakeAgent, RateLimit, MSG_EMPTY, MSG_EXPIRED, MSG_PARSE, REAL_AGENT_HOSTS,
};
use eks_pod_identity_testkit::fault::{BadBody, Fault, FaultPlan, PLAIN_TEXT_BODY};
use eks_pod_identity_testkit::token::{self, TokenBuilder};

const NS: &str = "my-app-namespace";
const SA: &str = "my-app-sa";
const ROLE: &str = "arn:aws:iam::123456789012:role/my-app-pod-identity-role";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn agent() -> FakeAgent {
    FakeAgent::builder()
        .association(NS, SA, ROLE)
        .start()
        .await
        .unwrap()
}

async fn send_with(agent: &FakeAgent, token: &str) -> reqwest::Response {
    client()
        .get(agent.uri())
        .header("authorization", token)
        .send()
        .await
        .unwrap()
}

async fn get(agent: &FakeAgent, token: Option<&str>) -> (u16, String, String) {
    let mut req = client().get(agent.uri());
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn serves_credentials_json() {
    let agent = agent().await;
    assert!(agent.uri().starts_with("http://127.0.0.1:"));
    assert!(agent.uri().ends_with("/v1/credentials"));
    let tok = token::mint(NS, SA);
    let (status, ct, body) = get(&agent, Some(&tok)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    for k in [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "AccountId",
        "Expiration",
    ] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
    }
    assert_eq!(v["AccountId"], "123456789012");
    // Unique keys per fetch.
    let (_, _, body2) = get(&agent, Some(&tok)).await;
    let v2: serde_json::Value = serde_json::from_str(&body2).unwrap();
    assert_ne!(v["AccessKeyId"], v2["AccessKeyId"]);
    let st = agent.stats();
    assert_eq!(st.total, 2);
    assert_eq!(st.status(200), 2);
    assert_eq!(st.minted, 2);
    assert_eq!(st.in_flight, 0);
    // Secrets and the token never appear in the stats/log.
    let dump = format!("{st:?}");
    assert!(!dump.contains(&tok));
    assert!(!dump.contains(v["SecretAccessKey"].as_str().unwrap()));
    assert_eq!(st.log[0].path, "/v1/credentials");
    assert_eq!(st.log[0].method, "GET");
    assert_eq!(st.log[0].status, Some(200));
}

#[tokio::test]
async fn expiration_is_rfc3339_nano_from_the_injected_clock() {
    // 2026-11-27T10:00:00.123456789Z
    let now = UNIX_EPOCH + Duration::new(1_795_773_600, 123_456_789);
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .clock(Arc::new(move || now))
        .lifetime(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let tok = TokenBuilder::new(NS, SA).issued_at(now).build();
    let (_, _, body) = get(&agent, Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Expiration"], "2026-11-27T11:00:00.123456789Z");

    // Whole seconds: no fractional part at all.
    let now = UNIX_EPOCH + Duration::from_secs(1_795_773_600);
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .clock(Arc::new(move || now))
        .lifetime(Duration::from_secs(900))
        .start()
        .await
        .unwrap();
    let tok = TokenBuilder::new(NS, SA).issued_at(now).build();
    let (_, _, body) = get(&agent, Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Expiration"], "2026-11-27T10:15:00Z");

    // The injected clock also decides token expiry: a token valid "now" in the real
    // world is expired at a clock two days later.
    let later = SystemTime::now() + Duration::from_secs(48 * 3600);
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .clock(Arc::new(move || later))
        .start()
        .await
        .unwrap();
    let (status, _, body) = get(&agent, Some(&token::mint(NS, SA))).await;
    assert_eq!(
        (status, body.as_str()),
        (400, format!("{MSG_EXPIRED}\n").as_str())
    );
}

#[tokio::test]
async fn token_errors_match_the_agent() {
    let agent = agent().await;
    let cases: Vec<(Option<String>, u16, String)> = vec![
        (None, 400, format!("{MSG_EMPTY}\n")),
        (Some(String::new()), 400, format!("{MSG_EMPTY}\n")),
        (Some("not-a-jwt".into()), 400, format!("{MSG_PARSE}\n")),
        (Some("a.b.c".into()), 400, format!("{MSG_PARSE}\n")),
        (
            Some(token::mint_expired(NS, SA)),
            400,
            "Service account token failed basic claim validations: token is expired\n".into(),
        ),
    ];
    for (tok, status, body) in cases {
        let (s, ct, b) = get(&agent, tok.as_deref()).await;
        assert_eq!((s, b.as_str()), (status, body.as_str()), "token {tok:?}");
        assert_eq!(ct, "text/plain; charset=utf-8");
    }
    assert_eq!(MSG_EMPTY, "Service account token cannot be empty");
    assert_eq!(MSG_PARSE, "Service account token cannot be parsed");

    let (s, ct, b) = get(&agent, Some(&token::mint_wrong_audience(NS, SA))).await;
    assert_eq!(s, 400);
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert!(b.contains("(InvalidTokenException)"), "{b}");
    assert!(b.ends_with(", fault: client\n"), "{b}");

    let (s, _, b) = get(&agent, Some(&token::mint(NS, "other-sa"))).await;
    assert_eq!(s, 404);
    assert_eq!(b.len() - b.trim_end().len(), 1, "one trailing newline");
    // [<uuid>]: (ResourceNotFoundException): ..., fault: client
    let rest = b.strip_prefix('[').unwrap();
    let (id, rest) = rest.split_once("]: ").unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    assert!(rest.starts_with("(ResourceNotFoundException): "), "{rest}");
    assert!(rest.contains("other-sa") && rest.contains(NS), "{rest}");
    assert!(rest.ends_with(", fault: client\n"));

    // Associations are changeable at runtime.
    agent.add_association(NS, "other-sa", ROLE);
    assert_eq!(get(&agent, Some(&token::mint(NS, "other-sa"))).await.0, 200);
    agent.remove_association(NS, "other-sa");
    assert_eq!(get(&agent, Some(&token::mint(NS, "other-sa"))).await.0, 404);

    // Other paths: 404.
    let r = client()
        .get(format!("http://{}/v1/other", agent.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let st = agent.stats();
    assert_eq!(st.status(400), 6);
    assert_eq!(st.status(404), 3);
    assert_eq!(st.status(200), 1);
    assert_eq!(st.minted, 1);
}

#[tokio::test]
async fn host_check_like_the_real_agent() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .host_check(REAL_AGENT_HOSTS)
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);
    let (s, ct, _) = get(&agent, Some(&tok)).await;
    assert_eq!(s, 403);
    assert_eq!(ct, "text/plain; charset=utf-8");
    for host in ["169.254.170.23", "[fd00:ec2::23]"] {
        let r = client()
            .get(agent.uri())
            .header("host", host)
            .header("authorization", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "host {host}");
    }
    agent.set_host_check(None);
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
}

#[tokio::test]
async fn token_bucket_limits_and_can_be_disabled() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .rate_limit(Some(RateLimit {
            per_second: 0.001,
            burst: 5,
        }))
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (s, _, b) = get(&agent, Some(&tok)).await;
        if s == 429 {
            assert_eq!(b, "Too Many Requests\n");
        }
        statuses.push(s);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    agent.set_rate_limit(None);
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
    assert_eq!(agent.stats().status(429), 3);
}

#[tokio::test]
async fn default_token_bucket_allows_a_burst_of_500() {
    let agent = agent().await;
    let tok = token::mint(NS, SA);
    let c = client();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (c, uri, tok) = (c.clone(), agent.uri(), tok.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..100 {
                let r = c
                    .get(&uri)
                    .header("authorization", &tok)
                    .send()
                    .await
                    .unwrap();
                if r.status() == 200 {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut ok = 0;
    for h in handles {
        ok += h.await.unwrap();
    }
    assert_eq!(ok, 400, "400 requests fit in the burst of 500");
}

#[tokio::test]
async fn fault_script_then_normal() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .faults(
            FaultPlan::new()
                .then(Fault::internal_error())
                .then(Fault::TooManyRequests)
                .then(Fault::Malformed)
                .then(Fault::Drop)
                .then(Fault::Slow(Duration::from_millis(20)))
                .then(Fault::ExpiredCredentials)
                .then(Fault::ExpiresIn(Duration::from_secs(30)))
                .then(Fault::Status(503, "custom body".into())),
        )
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);

    let (s, ct, b) = get(&agent, Some(&tok)).await;
    assert_eq!(s, 500);
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert!(b.contains("(InternalServerException)") && b.ends_with("fault: server\n"));

    assert_eq!(get(&agent, Some(&tok)).await.0, 429);

    let (s, _, b) = get(&agent, Some(&tok)).await;
    assert_eq!(s, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&b).is_err(),
        "{b}"
    );

    let err = client()
        .get(agent.uri())
        .header("authorization", &tok)
        .send()
        .await;
    assert!(err.is_err(), "dropped connection must fail: {err:?}");

    let start = tokio::time::Instant::now();
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(20));

    let before = SystemTime::now();
    let (_, _, b) = get(&agent, Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let exp = time::OffsetDateTime::parse(
        v["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(SystemTime::from(exp) < before, "already expired");

    let (_, _, b) = get(&agent, Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let exp = SystemTime::from(
        time::OffsetDateTime::parse(
            v["Expiration"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap(),
    );
    let left = exp.duration_since(SystemTime::now()).unwrap();
    assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(20));

    assert_eq!(
        get(&agent, Some(&tok)).await,
        (
            503,
            "text/plain; charset=utf-8".into(),
            "custom body\n".into()
        )
    );
    // Script consumed: normal again.
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);

    let st = agent.stats();
    assert_eq!(st.total, 9);
    assert_eq!(st.dropped, 1);
    let faults: Vec<_> = st.log.iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("status"),
            Some("too_many_requests"),
            Some("malformed"),
            Some("drop"),
            Some("slow"),
            Some("expired_credentials"),
            Some("expires_in"),
            Some("status"),
            None
        ]
    );
    assert_eq!(st.log[3].status, None);
}

#[tokio::test]
async fn hang_keeps_the_request_in_flight_and_faults_change_at_runtime() {
    let agent = agent().await;
    let tok = token::mint(NS, SA);
    agent.set_faults(FaultPlan::script([Fault::Hang]));
    let hung = client()
        .get(agent.uri())
        .header("authorization", &tok)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    // The client gave up; the next request is answered normally.
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
    let st = agent.stats();
    assert_eq!(st.total, 2);
    assert_eq!(st.log[0].fault, Some("hang"));
    assert_eq!(st.log[0].status, None);

    // Seeded rate: always faulting with probability 1.
    agent.set_faults(FaultPlan::new().with_rate(1.0, [Fault::TooManyRequests], 1));
    assert_eq!(get(&agent, Some(&tok)).await.0, 429);
    assert_eq!(get(&agent, Some(&tok)).await.0, 429);
    agent.push_fault(Fault::Status(500, "x".into()));
    assert_eq!(get(&agent, Some(&tok)).await.0, 500);
    agent.set_faults(FaultPlan::new());
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
}

#[tokio::test]
async fn hung_request_is_counted_in_flight() {
    let agent = Arc::new(agent().await);
    agent.set_faults(FaultPlan::script([Fault::Hang]));
    let (uri, tok) = (agent.uri(), token::mint(NS, SA));
    let pending =
        tokio::spawn(async move { client().get(uri).header("authorization", tok).send().await });
    tokio::time::timeout(Duration::from_secs(10), agent.wait_for_requests(1))
        .await
        .unwrap();
    assert_eq!(agent.stats().in_flight, 1);
    pending.abort();
}

#[tokio::test]
async fn latency_is_added() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .latency(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(get(&agent, Some(&token::mint(NS, SA))).await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(200));
    agent.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn cache_per_token_like_the_agent() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .cache(true)
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);
    let (_, _, a) = get(&agent, Some(&tok)).await;
    let (_, _, b) = get(&agent, Some(&tok)).await;
    assert_eq!(a, b);
    let other = TokenBuilder::new(NS, SA)
        .lifetime(Duration::from_secs(3600))
        .build();
    assert_ne!(other, tok);
    let (_, _, c) = get(&agent, Some(&other)).await;
    assert_ne!(a, c, "another token has its own entry");
    assert_eq!(agent.stats().minted, 2);
    agent.clear_cache();
    let (_, _, d) = get(&agent, Some(&tok)).await;
    assert_ne!(a, d);
}

#[tokio::test]
async fn lifetime_must_exceed_fifteen_seconds() {
    let err = FakeAgent::builder()
        .lifetime(Duration::from_secs(15))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("15 s"), "{err}");
    let agent = agent().await;
    assert!(agent.set_lifetime(Duration::from_secs(10)).is_err());
    assert!(agent.set_lifetime(Duration::from_secs(16)).is_ok());
}

#[tokio::test]
async fn binds_v4_and_v6() {
    let agent = FakeAgent::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .bind("[::1]:0".parse().unwrap())
        .association(NS, SA, ROLE)
        .start()
        .await
        .unwrap();
    assert_eq!(agent.addrs().len(), 2);
    let tok = token::mint(NS, SA);
    for a in agent.addrs() {
        let uri = FakeAgent::uri_for(*a);
        let r = client()
            .get(&uri)
            .header("authorization", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{uri}");
    }
    assert!(FakeAgent::uri_for(agent.addrs()[1]).starts_with("http://[::1]:"));
}

#[tokio::test]
async fn stops_serving_when_dropped() {
    let agent = agent().await;
    let uri = agent.uri();
    drop(agent);
    let r = client().get(&uri).send().await;
    assert!(r.is_err());
}

#[tokio::test]
async fn bad_bodies_plain_text_cut_off_and_oversized() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .faults(FaultPlan::script([
            Fault::Body(BadBody::PlainText),
            Fault::Body(BadBody::CutOff),
            Fault::Body(BadBody::Oversized(1 << 20)),
        ]))
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);

    let (s, ct, b) = get(&agent, Some(&tok)).await;
    assert_eq!(
        (s, ct.as_str(), b.as_str()),
        (200, "text/plain; charset=utf-8", PLAIN_TEXT_BODY)
    );

    // Headers promise more than arrives: the status is read, the body fails.
    let r = send_with(&agent, &tok).await;
    assert_eq!(r.status().as_u16(), 200);
    let promised = r.content_length().expect("Content-Length announced");
    let body = r.bytes().await;
    assert!(body.is_err(), "a cut-off body must fail to read: {body:?}");

    let r = send_with(&agent, &tok).await;
    assert_eq!(r.content_length(), Some(1 << 20));
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v.get("AccessKeyId").is_none(), "no credentials in it");

    // Script consumed: normal again.
    assert_eq!(get(&agent, Some(&tok)).await.0, 200);
    let st = agent.stats();
    let faults: Vec<_> = st.log.iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("plain_text_body"),
            Some("cut_off_body"),
            Some("oversized_body"),
            None
        ]
    );
    assert!(promised > 100, "a whole document announced: {promised}");
    // Only the real credentials answer carries an expiration.
    let exps: Vec<bool> = st.log.iter().map(|r| r.expiration.is_some()).collect();
    assert_eq!(exps, [false, false, false, true]);
}

#[tokio::test]
async fn upstream_errors_have_the_agents_shape() {
    let f = Fault::expired_token_exception();
    let Fault::Status(400, body) = &f else {
        panic!("{f:?}")
    };
    // [<uuid>]: (ExpiredTokenException): <message>, fault: client
    let (id, rest) = body.strip_prefix('[').unwrap().split_once("]: ").unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(
        rest,
        "(ExpiredTokenException): The specified Kubernetes service account token is expired., fault: client"
    );
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .faults(FaultPlan::script([f.clone()]))
        .start()
        .await
        .unwrap();
    let (s, ct, b) = get(&agent, Some(&token::mint(NS, SA))).await;
    assert_eq!((s, ct.as_str()), (400, "text/plain; charset=utf-8"));
    assert_eq!(b, format!("{body}\n"));
}

#[tokio::test]
async fn expired_token_hook_runs_before_the_400() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .on_expired_token(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .start()
        .await
        .unwrap();
    assert_eq!(get(&agent, Some(&token::mint(NS, SA))).await.0, 200);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "not called for a valid token"
    );
    let (s, _, b) = get(&agent, Some(&token::mint_expired(NS, SA))).await;
    // The hook ran before the answer was sent: it is visible once we have it.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!((s, b.as_str()), (400, format!("{MSG_EXPIRED}\n").as_str()));
}

#[tokio::test]
async fn log_records_the_expiration_served() {
    let agent = FakeAgent::builder()
        .association(NS, SA, ROLE)
        .faults(FaultPlan::script([Fault::ExpiredCredentials]))
        .start()
        .await
        .unwrap();
    let tok = token::mint(NS, SA);
    let parse = |b: &str| {
        let v: serde_json::Value = serde_json::from_str(b).unwrap();
        SystemTime::from(
            time::OffsetDateTime::parse(
                v["Expiration"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap(),
        )
    };
    let expired = parse(&get(&agent, Some(&tok)).await.2);
    let fresh = parse(&get(&agent, Some(&tok)).await.2);
    let st = agent.stats();
    assert_eq!(st.log[0].expiration, Some(expired));
    assert_eq!(st.log[0].fault, Some("expired_credentials"));
    assert_eq!(st.log[1].expiration, Some(fresh));
    assert!(expired < SystemTime::now() && fresh > SystemTime::now());
}
