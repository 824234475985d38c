//! FakeImds behaviour over real loopback HTTP.

use std::time::Duration;

use eks_pod_identity_testkit::fault::{Fault, FaultPlan};
use eks_pod_identity_testkit::imds::{FakeImds, ImdsMode, TOKEN_HEADER, TTL_HEADER};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

const ROLES: &str = "/latest/meta-data/iam/security-credentials/";

async fn put_token(imds: &FakeImds, ttl: Option<&str>) -> reqwest::Response {
    let mut req = client().put(format!("{}/latest/api/token", imds.endpoint()));
    if let Some(t) = ttl {
        req = req.header(TTL_HEADER, t);
    }
    req.send().await.unwrap()
}

async fn token(imds: &FakeImds) -> String {
    let r = put_token(imds, Some("21600")).await;
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

async fn get(imds: &FakeImds, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(format!("{}{path}", imds.endpoint()));
    if let Some(t) = token {
        req = req.header(TOKEN_HEADER, t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn is_imds_time(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SSZ
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

#[tokio::test]
async fn token_flow_and_credentials() {
    let imds = FakeImds::builder().start().await.unwrap();
    let r = put_token(&imds, Some("21600")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()[TTL_HEADER], "21600");
    let tok = r.text().await.unwrap();
    assert!(tok.len() >= 40);

    let (s, role) = get(&imds, ROLES, Some(&tok)).await;
    assert_eq!((s, role.as_str()), (200, "node-role"));

    let (s, body) = get(&imds, &format!("{ROLES}node-role"), Some(&tok)).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Code"], "Success");
    assert_eq!(v["Type"], "AWS-HMAC");
    for k in ["AccessKeyId", "SecretAccessKey", "Token"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    assert!(is_imds_time(v["Expiration"].as_str().unwrap()), "{v}");
    assert!(is_imds_time(v["LastUpdated"].as_str().unwrap()), "{v}");

    // Unknown role and unknown paths: 404.
    assert_eq!(
        get(&imds, &format!("{ROLES}other"), Some(&tok)).await.0,
        404
    );
    assert_eq!(get(&imds, "/latest/nope", Some(&tok)).await.0, 404);

    let st = imds.stats();
    assert_eq!(st.token_puts, 1);
    assert_eq!(st.credentials_served, 1);
    assert_eq!(st.total, 5);
    assert!(!st.log[0].had_token);
    assert!(st.log[1].had_token);
    assert_eq!(st.log[0].method, "PUT");
    assert!(!format!("{st:?}").contains(&tok), "tokens are never logged");
}

#[tokio::test]
async fn ttl_header_is_required_and_bounded() {
    let imds = FakeImds::builder().start().await.unwrap();
    assert_eq!(put_token(&imds, None).await.status().as_u16(), 400);
    assert_eq!(put_token(&imds, Some("0")).await.status().as_u16(), 400);
    assert_eq!(put_token(&imds, Some("21601")).await.status().as_u16(), 400);
    assert_eq!(put_token(&imds, Some("abc")).await.status().as_u16(), 400);
    assert_eq!(put_token(&imds, Some("1")).await.status().as_u16(), 200);
    let r = client()
        .get(format!("{}/latest/api/token", imds.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn gets_need_a_valid_token_unless_imdsv1() {
    let imds = FakeImds::builder().start().await.unwrap();
    assert_eq!(get(&imds, ROLES, None).await.0, 401);
    assert_eq!(get(&imds, ROLES, Some("bogus")).await.0, 401);
    let tok = token(&imds).await;
    assert_eq!(get(&imds, ROLES, Some(&tok)).await.0, 200);
    imds.invalidate_tokens();
    assert_eq!(get(&imds, ROLES, Some(&tok)).await.0, 401);

    imds.set_imdsv1(true);
    assert_eq!(get(&imds, ROLES, None).await, (200, "node-role".into()));
    assert_eq!(get(&imds, ROLES, Some("bogus")).await.0, 401);
    imds.set_imdsv1(false);
    assert_eq!(get(&imds, ROLES, None).await.0, 401);

    let v1 = FakeImds::builder().imdsv1(true).start().await.unwrap();
    assert_eq!(get(&v1, ROLES, None).await.0, 200);
    assert_eq!(imds.stats().status(401), 5);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_on_tokio_time() {
    let imds = FakeImds::builder()
        .token_ttl_override(Some(Duration::from_secs(5)))
        .start()
        .await
        .unwrap();
    // No client timeout: with paused time, auto-advance must not fire it.
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = c
        .put(format!("{}/latest/api/token", imds.endpoint()))
        .header(TTL_HEADER, "21600")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[TTL_HEADER],
        "5",
        "the override is what is reported"
    );
    let tok = r.text().await.unwrap();
    let status = |tok: String| {
        let c = c.clone();
        let url = format!("{}{ROLES}", imds.endpoint());
        async move {
            c.get(url)
                .header(TOKEN_HEADER, tok)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(tok.clone()).await, 200);
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(status(tok).await, 401);
}

#[tokio::test]
async fn omitting_the_ttl_header_emulates_moto() {
    let imds = FakeImds::builder()
        .omit_ttl_header(true)
        .start()
        .await
        .unwrap();
    let r = put_token(&imds, Some("21600")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get(TTL_HEADER).is_none());
    imds.set_omit_ttl_header(false);
    assert!(put_token(&imds, Some("60"))
        .await
        .headers()
        .get(TTL_HEADER)
        .is_some());
}

#[tokio::test]
async fn hang_put_accepts_and_never_answers() {
    let imds = FakeImds::builder()
        .mode(ImdsMode::HangPut)
        .start()
        .await
        .unwrap();
    let r = client()
        .put(format!("{}/latest/api/token", imds.endpoint()))
        .header(TTL_HEADER, "21600")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let e = r.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(!e.is_connect(), "the TCP connection itself succeeds");
    let st = imds.stats();
    assert_eq!(st.total, 1);
    assert_eq!(st.token_puts, 0);
    assert_eq!(st.log[0].status, None);
    imds.set_mode(ImdsMode::Normal);
    assert_eq!(put_token(&imds, Some("21600")).await.status().as_u16(), 200);
}

#[tokio::test]
async fn disabled_is_403() {
    let imds = FakeImds::builder()
        .mode(ImdsMode::Disabled)
        .start()
        .await
        .unwrap();
    assert_eq!(put_token(&imds, Some("21600")).await.status().as_u16(), 403);
    assert_eq!(get(&imds, ROLES, None).await.0, 403);
}

#[tokio::test]
async fn no_role_and_rename() {
    let imds = FakeImds::builder().no_role(true).start().await.unwrap();
    let tok = token(&imds).await;
    assert_eq!(get(&imds, ROLES, Some(&tok)).await.0, 404);
    assert_eq!(
        get(&imds, "/latest/meta-data/iam/info", Some(&tok)).await.0,
        404
    );
    imds.set_no_role(false);
    assert_eq!(get(&imds, ROLES, Some(&tok)).await.1, "node-role");
    let (s, info) = get(&imds, "/latest/meta-data/iam/info", Some(&tok)).await;
    assert_eq!(s, 200);
    assert!(info.contains(":instance-profile/node-role"), "{info}");
    imds.rename_role("renamed-role");
    assert_eq!(get(&imds, ROLES, Some(&tok)).await.1, "renamed-role");
    assert_eq!(
        get(&imds, &format!("{ROLES}node-role"), Some(&tok)).await.0,
        404
    );
    assert_eq!(
        get(&imds, &format!("{ROLES}renamed-role"), Some(&tok))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn serves_expired_credentials_on_request() {
    let imds = FakeImds::builder()
        .serve_expired(true)
        .start()
        .await
        .unwrap();
    let tok = token(&imds).await;
    let (_, body) = get(&imds, &format!("{ROLES}node-role"), Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exp = time::OffsetDateTime::parse(
        v["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(exp < time::OffsetDateTime::now_utc());
    imds.set_serve_expired(false);
    let (_, body) = get(&imds, &format!("{ROLES}node-role"), Some(&tok)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exp = time::OffsetDateTime::parse(
        v["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(exp > time::OffsetDateTime::now_utc() + time::Duration::hours(5));
}

#[tokio::test]
async fn fault_script_of_5xx() {
    let imds = FakeImds::builder()
        .faults(FaultPlan::script([
            Fault::Status(500, "Internal Server Error".into()),
            Fault::Status(503, "Service Unavailable".into()),
        ]))
        .start()
        .await
        .unwrap();
    assert_eq!(put_token(&imds, Some("21600")).await.status().as_u16(), 500);
    assert_eq!(put_token(&imds, Some("21600")).await.status().as_u16(), 503);
    assert_eq!(put_token(&imds, Some("21600")).await.status().as_u16(), 200);
    imds.set_faults(FaultPlan::script([Fault::Drop]));
    assert!(client()
        .put(format!("{}/latest/api/token", imds.endpoint()))
        .header(TTL_HEADER, "60")
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn hop_limit_is_applied_to_the_accepted_socket() {
    // On loopback nothing decrements the TTL, so the answer arrives whatever the
    // hop limit: what can be checked here is the socket option itself, read back
    // from the kernel (getsockopt) on the v4 and v6 sockets. The namespace tests
    // (tests/netns.rs) check its effect on real forwarding.
    let imds = FakeImds::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .bind("[::1]:0".parse().unwrap())
        .hop_limit(Some(1))
        .start()
        .await
        .unwrap();
    let put = |a: std::net::SocketAddr| async move {
        let url = match a {
            std::net::SocketAddr::V4(a) => format!("http://{a}/latest/api/token"),
            std::net::SocketAddr::V6(a) => {
                format!("http://[{}]:{}/latest/api/token", a.ip(), a.port())
            }
        };
        let r = client()
            .put(url)
            .header(TTL_HEADER, "21600")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    };
    for a in imds.addrs() {
        put(*a).await;
    }
    assert_eq!(imds.stats().put_hop_limits, [1, 1]);
    imds.set_hop_limit(Some(2));
    put(imds.addrs()[1]).await;
    assert_eq!(imds.stats().put_hop_limits, [1, 1, 2]);
    assert_eq!(imds.stats().token_puts, 3);

    // Without a hop limit the answer keeps the kernel's default (not 1 or 2).
    let plain = FakeImds::builder().start().await.unwrap();
    put(plain.addr()).await;
    let default = plain.stats().put_hop_limits;
    assert_eq!(default.len(), 1);
    assert!(default[0] > 2, "{default:?}");
}

#[tokio::test]
async fn never_contacted_is_observable() {
    let imds = FakeImds::builder().start().await.unwrap();
    assert!(!imds.was_contacted());
    assert_eq!(imds.stats().total, 0);
}
