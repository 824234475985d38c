//! Cases of the environment (checked when the provider is built) and of
//! the IMDS link.

use super::*;

pub(crate) fn env_and_imds_cases() -> Vec<Case> {
    use ErrorKind as K;
    use Expect::*;
    use Fault as F;
    let fail = Fail;
    vec![
        // --- env ---
        env(
            "env: http to a disallowed IPv4 host",
            &[(vars::FULL_URI, "http://10.0.0.1/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to IMDS 169.254.169.254",
            &[(
                vars::FULL_URI,
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/node",
            )],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to another link-local address",
            &[(vars::FULL_URI, "http://169.254.170.24/v1/credentials")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to a disallowed IPv6 literal",
            &[(vars::FULL_URI, "http://[fd00:ec2::254]/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: http to an IPv4-mapped IPv6 disallowed host",
            &[(vars::FULL_URI, "http://[::ffff:10.0.0.1]/creds")],
            Build(K::RefusedHost),
        ),
        env(
            "env: IPv6 agent literal with brackets",
            &[(vars::FULL_URI, "http://[fd00:ec2::23]/v1/credentials")],
            BuildOk("http://[fd00:ec2::23]/v1/credentials"),
        ),
        env(
            "env: IPv6 agent literal without brackets",
            &[(vars::FULL_URI, "http://fd00:ec2::23/v1/credentials")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: https to a remote host",
            &[(vars::FULL_URI, "https://creds.example.com/v1/credentials")],
            BuildOk("https://creds.example.com/v1/credentials"),
        ),
        env(
            "env: relative URI",
            &[(vars::RELATIVE_URI, "/v2/credentials/abc")],
            BuildOk("http://169.254.170.2/v2/credentials/abc"),
        ),
        env(
            "env: relative URI without leading slash",
            &[(vars::RELATIVE_URI, "v2/credentials/abc")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: both URIs set (relative wins, as in the SDKs)",
            &[
                (vars::RELATIVE_URI, "/v2/credentials/abc"),
                (vars::FULL_URI, "http://169.254.170.23/v1/credentials"),
            ],
            BuildOk("http://169.254.170.2/v2/credentials/abc"),
        ),
        env(
            "env: unsupported scheme",
            &[(vars::FULL_URI, "ftp://127.0.0.1/creds")],
            Build(K::InvalidConfiguration),
        ),
        env(
            "env: not a URI",
            &[(vars::FULL_URI, "169.254.170.23/v1/credentials")],
            Build(K::InvalidConfiguration),
        ),
        env("env: nothing set", &[], Build(K::NotConfigured)),
        on(
            Target::AgentV6,
            rt(
                "env: IPv6 loopback literal [::1], agent then 503",
                F::Reply(Reply::text(503, "busy")),
                fail(K::ServerError),
                Some(3),
            ),
        ),
        on(
            Target::AgentByName,
            rt(
                "env: hostname now resolving to a refused address",
                F::ResolvesToRefused,
                fail(K::RefusedHost),
                Some(0),
            ),
        ),
        Case {
            name: "env: https endpoint answered by a plain-http peer (no clear-text token)",
            kind: CaseKind::Cold(String::new()),
            expect: Fail(K::Connect),
            requests: Some(0),
        },
        // --- IMDS ---
        on(
            Target::Imds,
            rt(
                "imds: token PUT hangs (hop limit 1)",
                F::ImdsPutHang,
                fail(K::Timeout),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: token PUT 403 (disabled)",
                F::ImdsPut403,
                fail(K::ImdsDisabled),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 401 mid-run, new token works",
                F::Imds401MidRun { recover: true },
                Recover(None),
                Some(4),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 401 mid-run, new token rejected too",
                F::Imds401MidRun { recover: false },
                fail(K::ClientError),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role list 404 (no instance profile)",
                F::ImdsRoles404,
                fail(K::NoInstanceProfile),
                Some(2),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role list empty",
                F::ImdsRolesEmpty,
                fail(K::NoInstanceProfile),
                Some(2),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: role renamed",
                F::ImdsRoleRenamed,
                Recover(None),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: TTL header missing",
                F::ImdsTtlMissing,
                fail(K::InvalidResponse),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: v1-only server (PUT 405)",
                F::ImdsV1Only,
                fail(K::ClientError),
                Some(1),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: 500 on credentials",
                F::Imds500,
                fail(K::ServerError),
                Some(5),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: Code is not Success",
                F::ImdsNotSuccess,
                fail(K::InvalidResponse),
                Some(3),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: already-expired credentials (no extension; refetched, 3 attempts)",
                F::ImdsExpired,
                fail(K::ExpiresTooSoon),
                Some(7),
            ),
        ),
        on(
            Target::Imds,
            rt(
                "imds: credentials body streamed forever",
                F::ImdsStreamForever,
                fail(K::InvalidResponse),
                Some(3),
            ),
        ),
    ]
}
