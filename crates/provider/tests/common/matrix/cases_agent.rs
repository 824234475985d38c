//! Cases of the agent link: transport faults, HTTP statuses, bodies.

use super::*;

pub(crate) fn agent_cases() -> Vec<Case> {
    use ErrorKind as K;
    use Expect::*;
    use Fault as F;
    let fail = Fail;
    vec![
        // --- agent transport ---
        rt(
            "agent: connection refused",
            F::Refused,
            fail(K::Connect),
            Some(0),
        ),
        rt(
            "agent: connect timeout (SYN dropped, full accept queue)",
            F::Blackhole,
            fail(K::Timeout),
            Some(0),
        ),
        rt(
            "agent: slow headers (no answer)",
            F::Reply(Reply::Hang),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: slow headers (status line, then stall)",
            F::Reply(Reply::PartialHeaders),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: slow body (stalls mid-body)",
            F::Reply(Reply::SlowBody),
            fail(K::Timeout),
            Some(3),
        ),
        rt(
            "agent: truncated body, then close (a transport error, retried)",
            F::Reply(Reply::TruncatedBody),
            fail(K::Transport),
            Some(3),
        ),
        rt(
            "agent: closes without answering",
            F::Reply(Reply::Close),
            fail(K::Transport),
            Some(3),
        ),
        // --- agent statuses ---
        rt(
            "agent: 500",
            F::Reply(Reply::text(
                500,
                "[r-1]: (InternalServerException): boom, fault: server",
            )),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 503",
            F::Reply(Reply::text(
                503,
                "[r-2]: (ServiceUnavailableException): busy, fault: server",
            )),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 502 text/plain",
            F::Reply(Reply::text(502, "bad gateway")),
            fail(K::ServerError),
            Some(3),
        ),
        rt(
            "agent: 429",
            F::Reply(Reply::text(429, "Too Many Requests")),
            fail(K::Throttled),
            Some(3),
        ),
        rt(
            "agent: 429 twice, then 200",
            F::ReplyThenOk(2, Reply::text(429, "Too Many Requests")),
            Recover(None),
            Some(3),
        ),
        rt(
            "agent: 500 once, then 200",
            F::ReplyThenOk(1, Reply::text(500, "boom")),
            Recover(None),
            Some(2),
        ),
        rt(
            "agent: 400 token empty",
            F::Reply(Reply::text(400, "Service account token cannot be empty")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 400 token unparseable",
            F::Reply(Reply::text(400, "Service account token cannot be parsed")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 400 token expired, rotated meanwhile (re-read, retry once)",
            F::TokenExpired { rotate: true },
            Recover(None),
            Some(2),
        ),
        rt(
            "agent: 400 token expired, not rotated (one retry only)",
            F::TokenExpired { rotate: false },
            fail(K::TokenExpired),
            Some(2),
        ),
        rt(
            "agent: 400 AccessDenied",
            F::Reply(Reply::text(
                400,
                "[r]: (AccessDeniedException): denied, fault: client",
            )),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 403 wrong Host",
            F::Reply(Reply::text(403, "Forbidden")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 404 path",
            F::Reply(Reply::text(404, "404 page not found")),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 404 ResourceNotFound",
            F::Reply(Reply::text(
                404,
                "[r]: (ResourceNotFoundException): no association, fault: client",
            )),
            fail(K::ClientError),
            Some(1),
        ),
        rt(
            "agent: 307 redirect not followed",
            F::Redirect,
            fail(K::ClientError),
            Some(1),
        ),
        // --- agent bodies ---
        rt(
            "agent: malformed JSON",
            F::Reply(Reply::json("{\"AccessKeyId\": \"ASIA")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: JSON array",
            F::Reply(Reply::json("[\"AccessKeyId\"]")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: empty 200 body",
            F::Reply(Reply::json("")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: text/plain 200 body",
            F::Reply(Reply::status(200, "text/plain", "ok\n")),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing AccessKeyId",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("AccessKeyId");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing SecretAccessKey",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("SecretAccessKey");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing Token",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("Token");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing Expiration",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("Expiration");
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: missing AccountId (optional)",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v.as_object_mut().unwrap().remove("AccountId");
                })
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: AccessKeyId is a number",
            F::Body(|n, t| doc_with(n, t, |v| v["AccessKeyId"] = 7.into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Token is an object",
            F::Body(|n, t| doc_with(n, t, |v| v["Token"] = serde_json::json!({"a": 1}))),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration is epoch seconds",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = 1_900_000_000u64.into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: SecretAccessKey empty",
            F::Body(|n, t| doc_with(n, t, |v| v["SecretAccessKey"] = "".into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: aliases and lower-case keys",
            F::Body(|n, t| {
                serde_json::json!({"accesskeyid": format!("ASIAMATRIX{n:08}"), "secretaccesskey": SECRET, "SessionToken": SESSION, "ExpiresAt": fmt(t)}).to_string()
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: body over the 64 KiB cap (Content-Length)",
            F::Reply(Reply::json(vec![b' '; 70 * 1024])),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: body streamed forever (chunked)",
            F::Reply(Reply::StreamForever),
            fail(K::InvalidResponse),
            Some(1),
        ),
    ]
}
