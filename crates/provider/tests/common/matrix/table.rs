//! The table's vocabulary (what a case expects, which fault, which peer)
//! and the whole table, assembled from the `cases_*` files.

use super::*;

/// What the case expects.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The faulty fetch still yields new, valid credentials (optionally with
    /// this exact expiry).
    Recover(Option<SystemTime>),
    /// The fetch fails with this kind; cached credentials are served until
    /// expiry, then the same kind is returned.
    Fail(ErrorKind),
    /// Building fails with this kind (env cases).
    Build(ErrorKind),
    /// Building succeeds with this endpoint (env cases).
    BuildOk(&'static str),
}

/// The faults.
#[derive(Debug, Clone)]
pub enum Fault {
    // -- agent peer --
    Refused,
    Blackhole,
    Reply(Reply),
    /// The first `n` requests get `reply`, then the peer is healthy again.
    ReplyThenOk(usize, Reply),
    /// A 200 document built from the fault-time clock.
    Body(fn(usize, SystemTime) -> String),
    /// A 200 document whose Expiration is this many seconds after "now"
    /// (negative: in the past).
    ValidFor(i64),
    /// Expiration = whole seconds + `digits` fractional digits.
    Fraction(usize),
    /// Expiration written with this UTC offset (minutes).
    Offset(i32),
    /// The agent answers 400 "token is expired" to TOKEN_A; with `rotate`
    /// the kubelet rotates the file to TOKEN_B meanwhile.
    TokenExpired {
        rotate: bool,
    },
    /// 307 to another path of the same peer.
    Redirect,
    // -- token file --
    TokenMissing,
    TokenContent(&'static [u8]),
    /// The file now holds TOKEN_B; the agent accepts only TOKEN_B.
    TokenRotated,
    /// The token path is now a directory (unreadable, even for root).
    TokenIsDirectory,
    TokenOversize,
    // -- env / resolution --
    /// The endpoint hostname now also resolves to a refused address.
    ResolvesToRefused,
    // -- IMDS peer --
    ImdsPutHang,
    ImdsPut403,
    /// Every GET with the old session token gets 401; a new PUT gives a new one.
    Imds401MidRun {
        recover: bool,
    },
    ImdsRoles404,
    ImdsRolesEmpty,
    ImdsRoleRenamed,
    ImdsTtlMissing,
    ImdsV1Only,
    Imds500,
    ImdsNotSuccess,
    ImdsExpired,
    ImdsStreamForever,
}

/// Where a runtime case's peer lives and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Agent,
    /// The agent on `[::1]` (an IPv6 literal endpoint).
    AgentV6,
    /// The agent behind hostname `agent.test`, resolved by an injected resolver.
    AgentByName,
    Imds,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub kind: CaseKind,
    pub expect: Expect,
    /// Requests the peer must receive during the faulty fetch.
    pub requests: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum CaseKind {
    Runtime(Target, Fault),
    /// Build from these environment variables.
    Env(Vec<(&'static str, String)>),
    /// Build with this endpoint, then fetch once with no cache (the https
    /// case: the token must never reach the wire in clear text).
    Cold(String),
}

pub(crate) fn rt(
    name: &'static str,
    fault: Fault,
    expect: Expect,
    requests: Option<usize>,
) -> Case {
    Case {
        name,
        kind: CaseKind::Runtime(Target::Agent, fault),
        expect,
        requests,
    }
}

pub(crate) fn on(target: Target, mut case: Case) -> Case {
    if let CaseKind::Runtime(_, f) = case.kind {
        case.kind = CaseKind::Runtime(target, f);
    }
    case
}

pub(crate) fn env(name: &'static str, pairs: &[(&'static str, &str)], expect: Expect) -> Case {
    Case {
        name,
        kind: CaseKind::Env(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()),
        expect,
        requests: Some(0),
    }
}

/// The whole matrix: every case, in the order they run.
pub fn cases() -> Vec<Case> {
    use Expect::*;
    use Fault as F;
    let mut v = agent_cases();
    v.extend(expiration_and_token_cases());
    v.extend(env_and_imds_cases());
    for digits in 0..=9 {
        v.push(rt(
            [
                "agent: Expiration with 0 fractional digits",
                "agent: Expiration with 1 fractional digit",
                "agent: Expiration with 2 fractional digits",
                "agent: Expiration with 3 fractional digits",
                "agent: Expiration with 4 fractional digits",
                "agent: Expiration with 5 fractional digits",
                "agent: Expiration with 6 fractional digits",
                "agent: Expiration with 7 fractional digits",
                "agent: Expiration with 8 fractional digits",
                "agent: Expiration with 9 fractional digits",
            ][digits],
            F::Fraction(digits),
            Recover(None),
            Some(1),
        ));
    }
    v
}
