//! Property tests of every parser that sees untrusted input: arbitrary input
//! never panics, valid input round-trips, and the URI allow-list is exactly
//! the documented one. 10,000 cases per property.
//!
//! IMDS documents: the IMDS flavour of the document parser is crate-private
//! (`document::parse(.., Flavor::Imds)`), and driving `ImdsSource` over HTTP
//! for 10,000 cases is too slow for CI; the IMDS document shares the
//! container parser exercised here plus a `Code` check, and IMDS peers are
//! covered by the fault matrix.

use eks_pod_identity_provider::config::{
    container_credentials_from_env, imds_endpoint_from_env, is_allowed_http_ip, validate_uri, vars,
};
use eks_pod_identity_provider::protocol::rfc3339;
use eks_pod_identity_provider::protocol::MAX_TOKEN_BYTES;
use eks_pod_identity_provider::test_util::parsers::parse_container;
use eks_pod_identity_provider::test_util::parsers::validate_token as validate;
use eks_pod_identity_provider::MapEnv;
use eks_pod_identity_provider::{Classify, ErrorKind, TokenOrigin};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

const CASES: u32 = 10_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

/// 0000-01-01 .. 9999-12-31 as seconds since the epoch.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

fn system_time(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nanos as u64)
    }
}

/// Randomly re-cases a key (the parser is case-insensitive).
fn recase(key: &str, mask: u64) -> String {
    key.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The documented allow-list, written independently of the crate.
fn oracle_allowed(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.octets()[0] == 127
                || v4 == Ipv4Addr::new(169, 254, 170, 2)
                || v4 == Ipv4Addr::new(169, 254, 170, 23)
        }
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::LOCALHOST || v6 == "fd00:ec2::23".parse::<Ipv6Addr>().unwrap()
        }
    }
}

fn interesting_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(169, 254, c, d)),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(b, c, d)| Ipv4Addr::new(127, b, c, d)),
        Just(Ipv4Addr::new(169, 254, 170, 2)),
        Just(Ipv4Addr::new(169, 254, 170, 23)),
        Just(Ipv4Addr::new(169, 254, 169, 254)),
    ]
}

fn interesting_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        any::<u16>().prop_map(|x| Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, x)),
        interesting_v4().prop_map(|v4| v4.to_ipv6_mapped()),
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
    ]
}

/// Cheap string strategies (regex strategies are slow in debug builds).
fn from(chars: &'static str, len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    let chars: Vec<char> = chars.chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), len)
        .prop_map(|v| v.into_iter().collect())
        .boxed()
}

fn any_text(max: usize) -> BoxedStrategy<String> {
    proptest::collection::vec(any::<char>(), 0..=max)
        .prop_map(|v| v.into_iter().collect())
        .boxed()
}

const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=";
const PRINTABLE: &str = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
const TOKEN_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn credential_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_container(&body);
    }

    #[test]
    fn credential_parser_never_panics_on_json_shaped_input(
        keys in proptest::collection::vec(prop_oneof![
            Just("AccessKeyId".to_owned()), Just("SecretAccessKey".to_owned()), Just("Token".to_owned()),
            Just("SessionToken".to_owned()), Just("Expiration".to_owned()), Just("ExpiresAt".to_owned()),
            Just("AccountId".to_owned()), from(PRINTABLE, 0..=12)], 0..8),
        values in proptest::collection::vec(prop_oneof![
            from(PRINTABLE, 0..=40).prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!([1, "a"])),
            Just(serde_json::json!({"nested": {}})),
        ], 8),
    ) {
        let obj: serde_json::Map<_, _> = keys.into_iter().zip(values).collect();
        let _ = parse_container(serde_json::Value::Object(obj).to_string().as_bytes());
    }

    #[test]
    fn valid_documents_round_trip(
        akid in from(UPPER_DIGITS, 16..=20),
        secret in from(B64, 40..=40),
        session in from(B64, 16..=64),
        account in proptest::option::of(from("0123456789", 12..=12)),
        secs in 0i64..MAX_SECS,
        nanos in 0u32..1_000_000_000,
        masks in any::<[u64; 5]>(),
        alias_token in any::<bool>(),
        alias_exp in any::<bool>(),
    ) {
        let exp = system_time(secs, nanos);
        let mut obj = serde_json::Map::new();
        obj.insert(recase("AccessKeyId", masks[0]), akid.clone().into());
        obj.insert(recase("SecretAccessKey", masks[1]), secret.clone().into());
        obj.insert(recase(if alias_token { "SessionToken" } else { "Token" }, masks[2]), session.clone().into());
        obj.insert(recase(if alias_exp { "ExpiresAt" } else { "Expiration" }, masks[3]), rfc3339::format(exp).into());
        if let Some(a) = &account {
            obj.insert(recase("AccountId", masks[4]), a.clone().into());
        }
        let doc = parse_container(serde_json::Value::Object(obj).to_string().as_bytes()).unwrap();
        prop_assert_eq!(&doc.access_key_id, &akid);
        prop_assert_eq!(doc.expiration, exp);
        prop_assert_eq!(&doc.account_id, &account);
        let dbg = format!("{doc:?}");
        prop_assert!(!dbg.contains(&secret) && !dbg.contains(&session));
        let creds = doc.into_credentials("prop");
        prop_assert_eq!(creds.secret_access_key(), secret.as_str());
        prop_assert_eq!(creds.session_token(), Some(session.as_str()));
        prop_assert_eq!(creds.expiry(), Some(exp));
    }

    #[test]
    fn rfc3339_parser_never_panics(s in any_text(40)) {
        let _ = rfc3339::parse(&s);
    }

    #[test]
    fn rfc3339_parser_never_panics_on_near_misses(
        y in 0u32..10_000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62, s in 0u32..62,
        frac in from("0123456789", 0..=12), zone in prop_oneof![Just("Z".to_owned()), Just("z".to_owned()), Just(String::new()), (any::<bool>(), 0u8..30, 0u8..70).prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { "-" } else { "+" })), from(PRINTABLE, 0..=3)],
    ) {
        let dot = if frac.is_empty() { "" } else { "." };
        let _ = rfc3339::parse(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{dot}{frac}{zone}"));
    }

    #[test]
    fn rfc3339_format_then_parse_round_trips(secs in MIN_SECS..=MAX_SECS, nanos in 0u32..1_000_000_000) {
        let t = system_time(secs, nanos);
        let text = rfc3339::format(t);
        prop_assert_eq!(rfc3339::parse(&text), Some(t), "{}", text);
        // Go RFC3339Nano shape: UTC, trailing zeros trimmed.
        prop_assert!(text.ends_with('Z'));
        if let Some((_, frac)) = text.trim_end_matches('Z').split_once('.') {
            prop_assert!(!frac.is_empty() && frac.len() <= 9 && !frac.ends_with('0'), "{}", text);
        }
    }

    #[test]
    fn rfc3339_any_digits_and_offset_parse_to_the_same_instant(
        secs in 0i64..(MAX_SECS - 2 * 86_400), nanos in 0u32..1_000_000_000, digits in 0usize..=9, offset_min in -1439i32..=1439,
    ) {
        // Truncate to `digits` fractional digits, then write it at `offset`.
        let scale = 10u32.pow(9 - digits as u32);
        let nanos = nanos / scale * scale;
        let t = system_time(secs + 86_400, nanos);
        let local = time::OffsetDateTime::from(t).to_offset(time::UtcOffset::from_whole_seconds(offset_min * 60).unwrap());
        let frac = if digits == 0 { String::new() } else { format!(".{:0width$}", nanos / scale, width = digits) };
        let sign = if offset_min < 0 { '-' } else { '+' };
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{sign}{:02}:{:02}",
            local.year(), u8::from(local.month()), local.day(), local.hour(), local.minute(), local.second(),
            offset_min.unsigned_abs() / 60, offset_min.unsigned_abs() % 60
        );
        prop_assert_eq!(rfc3339::parse(&text), Some(t), "{}", text);
        // Without a zone it is always refused.
        let no_zone = &text[..text.len() - 6];
        prop_assert_eq!(rfc3339::parse(no_zone), None, "{}", no_zone);
    }

    #[test]
    fn uri_validation_never_panics(s in any_text(80)) {
        let _ = validate_uri(vars::FULL_URI, &s);
        let env = MapEnv::from_iter([(vars::FULL_URI, s.clone()), (vars::RELATIVE_URI, s.clone())]);
        let _ = container_credentials_from_env(&env);
        let env = MapEnv::from_iter([(vars::IMDS_ENDPOINT, s.clone()), (vars::IMDS_ENDPOINT_MODE, s.clone())]);
        let _ = imds_endpoint_from_env(&env, None);
        let _ = imds_endpoint_from_env(&MapEnv::default(), Some(&s));
    }

    #[test]
    fn uri_validation_never_panics_on_uri_shaped_input(
        scheme in prop_oneof![Just("http"), Just("https"), Just("ftp"), Just("HTTP"), Just("")],
        host in from("abcdefghijklmnopqrstuvwxyz0123456789.:[]%-", 0..=40), port in proptest::option::of(any::<u16>()), path in from("/aZ09%?#=&.", 0..=30),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let _ = validate_uri(vars::FULL_URI, &format!("{scheme}://{host}{port}{path}"));
    }

    #[test]
    fn http_ipv4_allowed_exactly_as_documented(ip in interesting_v4(), port in any::<u16>(), path in from("abc0123456789", 0..=12).prop_map(|p| if p.is_empty() { p } else { format!("/{p}") })) {
        let uri = format!("http://{ip}:{port}{path}");
        let got = validate_uri(vars::FULL_URI, &uri);
        prop_assert_eq!(got.is_ok(), oracle_allowed(IpAddr::V4(ip)), "{}: {:?}", uri, got);
        prop_assert_eq!(is_allowed_http_ip(IpAddr::V4(ip)), oracle_allowed(IpAddr::V4(ip)));
        if let Err(e) = got {
            prop_assert_eq!(e.kind(), ErrorKind::RefusedHost);
            prop_assert!(e.to_string().contains(&ip.to_string()), "{}", e);
        } else {
            prop_assert!(!got.unwrap().must_resolve_to_allowed());
        }
        // https is allowed to any host.
        let https = format!("https://{ip}:{port}{path}");
        prop_assert!(validate_uri(vars::FULL_URI, &https).is_ok());
    }

    #[test]
    fn http_ipv6_allowed_exactly_as_documented(ip in interesting_v6(), path in from("abc0123456789", 0..=12).prop_map(|p| if p.is_empty() { p } else { format!("/{p}") })) {
        let uri = format!("http://[{ip}]{path}");
        let got = validate_uri(vars::FULL_URI, &uri);
        prop_assert_eq!(got.is_ok(), oracle_allowed(IpAddr::V6(ip)), "{}: {:?}", uri, got);
        if let Err(e) = &got {
            prop_assert_eq!(e.kind(), ErrorKind::RefusedHost);
        }
        // Unbracketed IPv6 is always a configuration error, never a refusal or a panic.
        let bare = validate_uri(vars::FULL_URI, &format!("http://{ip}{path}"));
        if ip.to_string().matches(':').count() >= 2 {
            let e = bare.unwrap_err();
            prop_assert_eq!(e.kind(), ErrorKind::InvalidConfiguration);
        }
    }

    #[test]
    fn http_hostnames_defer_to_resolution(labels in proptest::collection::vec((from("abcdefghijklmnopqrstuvwyz", 1..=1), from("abcdefghijklmnopqrstuvwxyz0123456789-", 0..=12)), 1..=4)) {
        let host = labels.iter().map(|(a, b)| format!("{a}{b}")).collect::<Vec<_>>().join(".");
        let ep = validate_uri(vars::FULL_URI, &format!("http://{host}/creds")).unwrap();
        prop_assert!(ep.must_resolve_to_allowed());
        let ep = validate_uri(vars::FULL_URI, &format!("https://{host}/creds")).unwrap();
        prop_assert!(!ep.must_resolve_to_allowed());
    }

    #[test]
    fn token_validation_never_panics_and_matches_the_rule(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let got = validate(TokenOrigin::Value, &bytes);
        let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let ok = bytes.len() <= MAX_TOKEN_BYTES
            && !trimmed.is_empty()
            && trimmed.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
        prop_assert_eq!(got.is_ok(), ok, "{:?}", bytes);
        if let Ok(s) = &got {
            prop_assert_eq!(s.expose().as_bytes(), trimmed);
            let shown = format!("{s:?}");
            prop_assert!(!shown.contains(s.expose()) || s.expose().len() < 3);
        }
        if let Err(e) = got {
            prop_assert_eq!(e.kind(), ErrorKind::Token);
        }
    }

    #[test]
    fn valid_tokens_round_trip_and_never_leak(token in from(TOKEN_CHARS, 8..=256), newline in any::<bool>(), inject_nl in from("\r\n", 1..=2), inject in from(PRINTABLE, 0..=20)) {
        let raw = if newline { format!("{token}\n") } else { token.clone() };
        let secret = validate(TokenOrigin::Value, raw.as_bytes()).unwrap();
        prop_assert_eq!(secret.expose(), token.as_str());
        // Any CR/LF other than one trailing newline is refused, and the
        // error never contains the token.
        let bad = format!("{token}{inject_nl}{inject}x");
        let err = validate(TokenOrigin::Value, bad.as_bytes()).unwrap_err();
        let shown = format!("{err} {err:?}");
        prop_assert!(!shown.contains(&token));
    }

    #[test]
    fn oversized_tokens_are_refused(extra in 1usize..4096) {
        let big = vec![b'a'; MAX_TOKEN_BYTES + extra];
        prop_assert!(validate(TokenOrigin::Value, &big).is_err());
    }
}
