//! Cases of the `Expiration` field and of the token file.

use super::*;

pub(crate) fn expiration_and_token_cases() -> Vec<Case> {
    use ErrorKind as K;
    use Expect::*;
    use Fault as F;
    let fail = Fail;
    vec![
        // --- Expiration ---
        rt(
            "agent: Expiration without zone",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v["Expiration"] = fmt(t).trim_end_matches('Z').into()
                })
            }),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration garbage",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = "tomorrow at noon".into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration with space separator (RFC 3339 5.6 note)",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = fmt(t).replace('T', " ").into())),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration with lower-case t and z",
            F::Body(|n, t| {
                doc_with(n, t, |v| {
                    v["Expiration"] = fmt(t).replace('T', "t").replace('Z', "z").into()
                })
            }),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration date only",
            F::Body(|n, t| doc_with(n, t, |v| v["Expiration"] = fmt(t)[..10].into())),
            fail(K::InvalidResponse),
            Some(1),
        ),
        rt(
            "agent: Expiration offset +02:00",
            F::Offset(120),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration offset -04:30",
            F::Offset(-270),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: Expiration offset +00:00",
            F::Offset(0),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: already expired (refetched within the fetch, 3 attempts)",
            F::ValidFor(-60),
            fail(K::ExpiresTooSoon),
            Some(3),
        ),
        rt(
            "agent: expires now (refetched within the fetch, 3 attempts)",
            F::ValidFor(0),
            fail(K::ExpiresTooSoon),
            Some(3),
        ),
        rt(
            "agent: 30 s left (their own mandatory window is 7.5 s: accepted)",
            F::ValidFor(30),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: just outside the mandatory window (61 s left)",
            F::ValidFor(61),
            Recover(None),
            Some(1),
        ),
        rt(
            "agent: far future (9999-12-31)",
            F::Body(|n, _| agent_doc(n, "9999-12-31T23:59:59Z")),
            Recover(None),
            Some(1),
        ),
        // --- token file ---
        rt(
            "token: file missing",
            F::TokenMissing,
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: file empty",
            F::TokenContent(b""),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: only a newline",
            F::TokenContent(b"\n"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: trailing newline trimmed",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO\n"),
            Recover(None),
            Some(1),
        ),
        rt(
            "token: CRLF inside (header injection)",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9\r\nX-Injected: 1"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: trailing CRLF",
            F::TokenContent(b"eyJhbGciOiJSUzI1NiJ9.c2EtdG9rZW4tYnJhdm8.sigBRAVO\r\n"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: NUL byte",
            F::TokenContent(b"eyJhbGci\0OiJSUzI1NiJ9"),
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: rotated between fetches",
            F::TokenRotated,
            Recover(None),
            Some(1),
        ),
        rt(
            "token: unreadable (a directory)",
            F::TokenIsDirectory,
            fail(K::Token),
            Some(0),
        ),
        rt(
            "token: over the 16 KiB cap",
            F::TokenOversize,
            fail(K::Token),
            Some(0),
        ),
    ]
}
