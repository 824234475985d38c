//! How the fake answers one request, in the real agent's order: latency, path,
//! `Host` check, token bucket, scripted fault, token validation, association
//! lookup, credential minting.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::Request;

use super::protocol::{
    CREDENTIALS_PATH, MIN_REMAINING, MSG_EMPTY, MSG_EXPIRED, MSG_PARSE, MSG_TOO_MANY,
};
use super::state::{lock, Shared};
use super::stats::{AgentStats, RequestRecord};
use crate::creds::{self, MintRequest, MintedCredentials};
use crate::fault::Fault;
use crate::server::{self, ConnInfo, Outcome, Resp};
use crate::timefmt;
use crate::token;

/// The parts of a request the agent looks at (the body is ignored).
struct ReqInfo {
    path: String,
    host: Option<String>,
    authorization: Option<String>,
}

pub(super) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    _conn: Arc<ConnInfo>,
) -> Outcome {
    let info = ReqInfo {
        path: req.uri().path().to_owned(),
        host: req
            .headers()
            .get(hyper::header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned())),
        authorization: req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let method = req.method().to_string();
    drop(req);
    let (id, _in_flight) = server::arrive(&shared.seq, &shared.stats, &shared.total_tx, |id| {
        RequestRecord {
            id,
            at: (shared.clock)(),
            method,
            path: info.path.clone(),
            status: None,
            fault: None,
            expiration: None,
        }
    });
    let (outcome, expiration) = match respond(&shared, &info, id).await {
        Answer::Plain(o) => (o, None),
        Answer::Credentials(o, exp) => (o, Some(exp)),
    };
    let mut st = lock(&shared.stats);
    if let Outcome::Drop = outcome {
        st.dropped += 1;
    } else if let Some(rec) = server::answered(&mut *st, id, &outcome) {
        rec.expiration = expiration;
    }
    drop(st);
    outcome
}

crate::server::impl_request_stats!(AgentStats, RequestRecord);

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        host == a
            || host.strip_prefix(a.as_str()).is_some_and(|rest| {
                rest.starts_with(':') && rest[1..].bytes().all(|b| b.is_ascii_digit())
            })
    })
}

fn upstream_error(status: u16, code: &str, message: &str, fault: &str) -> Resp {
    server::text(
        status,
        format!(
            "[{}]: ({code}): {message}, fault: {fault}",
            server::request_id()
        ),
    )
}

/// What [`respond`] produced: any answer, or a credentials document and its
/// `Expiration` (recorded in the request log).
enum Answer {
    Plain(Outcome),
    Credentials(Outcome, SystemTime),
}

impl From<Outcome> for Answer {
    fn from(o: Outcome) -> Self {
        Answer::Plain(o)
    }
}

fn plain(resp: Resp) -> Answer {
    Answer::Plain(Outcome::Respond(resp))
}

async fn respond(shared: &Shared, req: &ReqInfo, id: u64) -> Answer {
    let latency = lock(&shared.settings).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if req.path != CREDENTIALS_PATH {
        return plain(server::text(404, "404 page not found"));
    }
    let host_check = lock(&shared.settings).host_check.clone();
    if let Some(allowed) = host_check {
        let host = req.host.as_deref().unwrap_or("");
        if !host_allowed(host, &allowed) {
            return plain(server::text(403, "Forbidden: invalid Host header"));
        }
    }
    if let Some(bucket) = lock(&shared.limiter).as_mut() {
        if !bucket.try_take() {
            return plain(server::text(429, MSG_TOO_MANY));
        }
    }
    let fault = lock(&shared.settings).faults.next_fault();
    if let Some(f) = &fault {
        let mut st = lock(&shared.stats);
        if let Some(rec) = st.log.iter_mut().rev().find(|r| r.id == id) {
            rec.fault = Some(f.name());
        }
    }
    let mut expiry_override = None;
    match fault {
        None => {}
        Some(Fault::Status(code, body)) => return plain(server::text(code, body)),
        Some(Fault::TooManyRequests) => return plain(server::text(429, MSG_TOO_MANY)),
        Some(Fault::Hang) => return server::hang().await.into(),
        Some(Fault::Drop) => return Outcome::Drop.into(),
        Some(Fault::Malformed) => {
            return plain(server::raw(
                200,
                "application/json",
                "{\"AccessKeyId\": \"ASIA",
            ))
        }
        Some(Fault::Body(body)) => return plain(body.response()),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::ExpiredCredentials) => expiry_override = Some(None),
        Some(Fault::ExpiresIn(d)) => expiry_override = Some(Some(d)),
    }
    credentials(shared, req, expiry_override).await
}

/// `expiry_override`: `Some(None)` = already expired, `Some(Some(d))` = expires in `d`.
async fn credentials(
    shared: &Shared,
    req: &ReqInfo,
    expiry_override: Option<Option<Duration>>,
) -> Answer {
    let token = req
        .authorization
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if token.is_empty() {
        return plain(server::text(400, MSG_EMPTY));
    }
    let claims = match token::decode(&token) {
        Ok(c) if c.namespace().is_some() => c,
        _ => return plain(server::text(400, MSG_PARSE)),
    };
    let now = (shared.clock)();
    if claims.is_expired_at(now) {
        if let Some(hook) = &shared.on_expired_token {
            hook();
        }
        return plain(server::text(400, MSG_EXPIRED));
    }
    let (lifetime, audience, role, cache_on) = {
        let s = lock(&shared.settings);
        let key = (
            claims.namespace().unwrap_or_default().to_owned(),
            claims.service_account().unwrap_or_default().to_owned(),
        );
        (
            s.lifetime,
            s.audience.clone(),
            s.associations.get(&key).cloned(),
            s.cache,
        )
    };
    if !claims.has_audience(&audience) {
        return plain(upstream_error(
            400,
            "InvalidTokenException",
            &format!("The service account token audience is invalid: expected {audience}"),
            "client",
        ));
    }
    let ns = claims.namespace().unwrap_or_default();
    let sa = claims.service_account().unwrap_or_default();
    let Some(role_arn) = role else {
        return plain(upstream_error(
            404,
            "ResourceNotFoundException",
            &format!(
                "No Pod Identity Association found for service account {sa} in namespace {ns}"
            ),
            "client",
        ));
    };
    let use_cache = cache_on && expiry_override.is_none();
    if use_cache {
        if let Some(c) = lock(&shared.cache).get(&token) {
            if c.expiration
                .duration_since(now)
                .is_ok_and(|left| left > MIN_REMAINING)
            {
                return Answer::Credentials(Outcome::Respond(json_response(c)), c.expiration);
            }
        }
    }
    let mint = MintRequest {
        role_arn: &role_arn,
        session_name: creds::session_name(&format!("eks-{ns}-{sa}-{}", fastrand::u32(..))),
        lifetime,
        tags: vec![
            ("kubernetes-namespace".into(), ns.to_owned()),
            ("kubernetes-service-account".into(), sa.to_owned()),
        ],
    };
    let mut minted = match shared.minter.mint(mint, now).await {
        Ok(c) => c,
        Err(e) => return plain(upstream_error(e.status, &e.code, &e.message, e.fault)),
    };
    lock(&shared.stats).minted += 1;
    match expiry_override {
        Some(None) => minted.expiration = now - Duration::from_secs(60),
        Some(Some(d)) => minted.expiration = now + d,
        None => {}
    }
    if use_cache {
        lock(&shared.cache).insert(token, minted.clone());
    }
    Answer::Credentials(Outcome::Respond(json_response(&minted)), minted.expiration)
}

fn json_response(c: &MintedCredentials) -> Resp {
    let body = serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.session_token,
        "AccountId": c.account_id,
        "Expiration": timefmt::rfc3339_nano(c.expiration),
    });
    server::raw(200, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::protocol::REAL_AGENT_HOSTS;
    use super::*;

    #[test]
    fn host_matching() {
        let allowed: Vec<String> = REAL_AGENT_HOSTS.iter().map(|s| s.to_string()).collect();
        assert!(host_allowed("169.254.170.23", &allowed));
        assert!(host_allowed("169.254.170.23:80", &allowed));
        assert!(host_allowed("[fd00:ec2::23]", &allowed));
        assert!(!host_allowed("127.0.0.1:80", &allowed));
        assert!(!host_allowed("169.254.170.230", &allowed));
        assert!(!host_allowed("169.254.170.23:x", &allowed));
    }
}
