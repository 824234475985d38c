//! The JSON credentials document served by the agent and by IMDS.
//!
//! Keys are matched case-insensitively and `SessionToken` / `ExpiresAt` are
//! accepted as aliases of `Token` / `Expiration`, as the AWS SDKs do.

use crate::error::ParseError;
use crate::support::rfc3339;
use aws_credential_types::Credentials;
use serde_json::{Map, Value};
use std::fmt;
use std::time::SystemTime;

/// A parsed credentials document. `Debug` redacts the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialsDocument {
    /// The access key id (not secret).
    pub access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: String,
    /// When the credentials expire.
    pub expiration: SystemTime,
    /// The account id, when the peer sent one.
    pub account_id: Option<String>,
}

impl fmt::Debug for CredentialsDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsDocument")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &rfc3339::format(self.expiration))
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl CredentialsDocument {
    /// Converts into SDK credentials tagged with `provider_name`.
    pub fn into_credentials(self, provider_name: &'static str) -> Credentials {
        let mut b = Credentials::builder()
            .access_key_id(self.access_key_id)
            .secret_access_key(self.secret_access_key)
            .session_token(self.session_token)
            .expiry(self.expiration)
            .provider_name(provider_name);
        if let Some(account) = self.account_id {
            b = b.account_id(account);
        }
        b.build()
    }
}

/// The dialect of the credentials document: the same JSON with one extra
/// rule for IMDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The Pod Identity Agent / ECS endpoint.
    Container,
    /// IMDS: also requires `"Code": "Success"`.
    Imds,
}

/// Parses a credentials document.
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use eks_pod_identity_provider::test_util::parsers::parse_container;
/// let doc = parse_container(br#"{"accesskeyid":"AKID","SecretAccessKey":"s","SessionToken":"t","ExpiresAt":"2030-01-01T00:00:00Z"}"#).unwrap();
/// assert_eq!(doc.access_key_id, "AKID");
/// # }
/// ```
pub fn parse_container(body: &[u8]) -> Result<CredentialsDocument, ParseError> {
    parse(body, Dialect::Container)
}

pub(crate) fn parse(body: &[u8], dialect: Dialect) -> Result<CredentialsDocument, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ParseError::NotJson("top level is not an object".into()));
    };
    let fields = Fields(obj);
    if dialect == Dialect::Imds {
        let code = fields.string(&["code"], "Code")?;
        if code != "Success" {
            return Err(ParseError::NotSuccess { code });
        }
    }
    let access_key_id = fields.string(&["accesskeyid"], "AccessKeyId")?;
    let secret_access_key = fields.string(&["secretaccesskey"], "SecretAccessKey")?;
    let session_token = fields.string(&["token", "sessiontoken"], "Token")?;
    let raw_exp = fields.string(&["expiration", "expiresat"], "Expiration")?;
    let expiration =
        rfc3339::parse(&raw_exp).ok_or(ParseError::InvalidExpiration { value: raw_exp })?;
    let account_id = fields.optional_string(&["accountid"], "AccountId")?;
    Ok(CredentialsDocument {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
        account_id,
    })
}

struct Fields(Map<String, Value>);

impl Fields {
    fn find(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().find_map(|k| {
            self.0
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })
    }

    fn string(&self, keys: &[&str], name: &'static str) -> Result<String, ParseError> {
        match self.find(keys) {
            None | Some(Value::Null) => Err(ParseError::MissingField(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(ParseError::WrongType { field: name }),
        }
    }

    fn optional_string(
        &self,
        keys: &[&str],
        name: &'static str,
    ) -> Result<Option<String>, ParseError> {
        match self.find(keys) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ParseError::WrongType { field: name }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"SECRETKEY","Token":"SESSIONTOKEN","AccountId":"123456789012","Expiration":"2026-11-27T10:00:00.123456789Z"}"#;

    #[test]
    fn parses_the_agent_document() {
        let d = parse_container(FULL.as_bytes()).unwrap();
        assert_eq!(d.access_key_id, "ASIAEXAMPLE");
        assert_eq!(d.account_id.as_deref(), Some("123456789012"));
        assert_eq!(
            d.expiration,
            rfc3339::parse("2026-11-27T10:00:00.123456789Z").unwrap()
        );
        let dbg = format!("{d:?}");
        assert!(
            !dbg.contains("SECRETKEY") && !dbg.contains("SESSIONTOKEN"),
            "{dbg}"
        );
        let creds = d.into_credentials("test");
        assert_eq!(creds.session_token(), Some("SESSIONTOKEN"));
        assert_eq!(creds.account_id().map(|a| a.as_str()), Some("123456789012"));
    }

    #[test]
    fn aliases_and_case_insensitive_keys() {
        let d = parse_container(
            br#"{"ACCESSKEYID":"a","secretaccesskey":"s","SessionToken":"t","expiresAt":"2026-11-27T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(d.session_token, "t");
        assert_eq!(d.account_id, None);
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        let cases = [
            (
                r#"{"SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#,
                ParseError::MissingField("AccessKeyId"),
            ),
            (
                r#"{"AccessKeyId":"a","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#,
                ParseError::MissingField("SecretAccessKey"),
            ),
            (
                r#"{"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"2026-11-27T10:00:00Z"}"#,
                ParseError::MissingField("Token"),
            ),
            (
                r#"{"AccessKeyId":"a","SecretAccessKey":"s","Token":"t"}"#,
                ParseError::MissingField("Expiration"),
            ),
            (
                r#"{"AccessKeyId":1,"SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#,
                ParseError::WrongType {
                    field: "AccessKeyId",
                },
            ),
            (
                r#"{"AccessKeyId":"","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#,
                ParseError::WrongType {
                    field: "AccessKeyId",
                },
            ),
            (
                r#"{"AccessKeyId":"a","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z","AccountId":7}"#,
                ParseError::WrongType { field: "AccountId" },
            ),
            (
                r#"{"AccessKeyId":"a","SecretAccessKey":"s","Token":"t","Expiration":"soon"}"#,
                ParseError::InvalidExpiration {
                    value: "soon".into(),
                },
            ),
            (
                r#"["AccessKeyId"]"#,
                ParseError::NotJson("top level is not an object".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_container(body.as_bytes()).unwrap_err(),
                want,
                "{body}"
            );
        }
        assert!(matches!(
            parse_container(b"Service account token cannot be empty\n"),
            Err(ParseError::NotJson(_))
        ));
    }

    #[test]
    fn imds_requires_success_code() {
        let ok = r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"a","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-27T10:00:00Z"}"#;
        assert!(parse(ok.as_bytes(), Dialect::Imds).is_ok());
        let bad = ok.replace("Success", "AssumeRoleUnauthorizedAccess");
        assert_eq!(
            parse(bad.as_bytes(), Dialect::Imds).unwrap_err(),
            ParseError::NotSuccess {
                code: "AssumeRoleUnauthorizedAccess".into()
            }
        );
    }
}
