//! The testkit mints service-account JWTs with its own encoder on purpose (see
//! "Independent copies of the protocol facts" in the testkit's crate docs);
//! the doctor decodes tokens with its own claim decoder. Every test of the
//! doctor's token probe runs on minted tokens, so the two must read the same
//! claims: if either side's encoding or decoding changes, this test fails.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eks_pod_identity_doctor::check::pod_identity::decode_claims;
use eks_pod_identity_testkit::token::{self, TokenBuilder, POD_IDENTITY_AUDIENCE};

/// One minted token and the claims it must decode to.
struct Case<'a> {
    what: &'a str,
    jwt: String,
    ns: &'a str,
    sa: &'a str,
    aud: Vec<&'a str>,
    exp: SystemTime,
}

#[test]
fn the_doctor_reads_minted_tokens_as_the_testkit_wrote_them() {
    // 2026-11-27T10:00:00Z, and a second that is not a round number.
    let issued = UNIX_EPOCH + Duration::from_secs(1_795_773_600);
    let odd = UNIX_EPOCH + Duration::from_secs(1_795_773_601);
    let long_ns = "n".repeat(63);
    let long_sa = format!("{}.{}", "s".repeat(126), "a".repeat(126));
    let cases = [
        Case {
            what: "defaults",
            jwt: TokenBuilder::new("my-app-namespace", "my-app-sa")
                .issued_at(issued)
                .build(),
            ns: "my-app-namespace",
            sa: "my-app-sa",
            aud: vec![POD_IDENTITY_AUDIENCE],
            exp: issued + token::DEFAULT_TOKEN_LIFETIME,
        },
        Case {
            what: "several audiences, explicit exp",
            jwt: TokenBuilder::new("team-a", "reader")
                .audiences(["sts.amazonaws.com", POD_IDENTITY_AUDIENCE])
                .issued_at(issued)
                .expires_at(odd)
                .build(),
            ns: "team-a",
            sa: "reader",
            aud: vec!["sts.amazonaws.com", POD_IDENTITY_AUDIENCE],
            exp: odd,
        },
        Case {
            what: "wrong audience, already expired",
            jwt: TokenBuilder::new("default", "default")
                .audience("sts.amazonaws.com")
                .issued_at(issued)
                .lifetime(Duration::from_secs(1))
                .build(),
            ns: "default",
            sa: "default",
            aud: vec!["sts.amazonaws.com"],
            exp: issued + Duration::from_secs(1),
        },
        Case {
            what: "longest names",
            jwt: TokenBuilder::new(long_ns.as_str(), long_sa.as_str())
                .issued_at(issued)
                .build(),
            ns: &long_ns,
            sa: &long_sa,
            aud: vec![POD_IDENTITY_AUDIENCE],
            exp: issued + token::DEFAULT_TOKEN_LIFETIME,
        },
    ];
    for Case {
        what,
        jwt,
        ns,
        sa,
        aud,
        exp,
    } in cases
    {
        let exp_secs = exp.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        // The kubelet writes the token without a newline; editors add one.
        for raw in [jwt.clone(), format!("{jwt}\n")] {
            let claims = decode_claims(&raw)
                .unwrap_or_else(|e| panic!("{what}: the doctor cannot decode a minted token: {e}"));
            assert_eq!(claims.aud, aud, "{what}: aud");
            assert_eq!(
                claims.sub.as_deref(),
                Some(format!("system:serviceaccount:{ns}:{sa}").as_str()),
                "{what}: sub"
            );
            assert_eq!(claims.exp, Some(exp_secs), "{what}: exp");
        }
        // The testkit's own decoder (what its fake agent checks) reads the same.
        let mine = token::decode(&jwt).unwrap();
        assert_eq!(mine.namespace(), Some(ns), "{what}");
        assert_eq!(mine.service_account(), Some(sa), "{what}");
        assert_eq!(mine.expires_at(), Some(exp), "{what}");
        for a in &aud {
            assert!(mine.has_audience(a), "{what}: {a}");
        }
    }
}
