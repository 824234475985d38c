//! Seeding moto like the repository's Terraform (`deploy/`): the admin user and
//! its key, the two roles and their bucket policies, the buckets and objects;
//! then IAM enforcement.

use super::error::StackError;
use super::fixtures::{
    ADMIN_USER, APP_BUCKET, NODE_ROLE_NAME, OTHER_BUCKET, POD_ROLE_NAME, REGION, SEED_OBJECTS,
};
use crate::creds::ACCOUNT_ID;

/// The admin user's access key (has a `*` policy).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret (never printed by `Debug`).
    pub secret_access_key: String,
    /// The user's ARN.
    pub user_arn: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("user_arn", &self.user_arn)
            .finish()
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An `Authorization` header moto routes by (service from the credential scope);
/// the signature is not checked before enforcement is on.
fn scope_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0000"
    )
}

fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

fn trust_policy(admin_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": admin_arn, "Service": "pods.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }]
    })
    .to_string()
}

fn bucket_read_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        }]
    })
    .to_string()
}

/// Turns IAM enforcement on (`true`) or off.
pub(super) async fn set_enforcement(
    http: &reqwest::Client,
    endpoint: &str,
    on: bool,
) -> Result<(), StackError> {
    let step = format!("reset-auth {}", if on { "0" } else { "inf" });
    let req = http
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .header("content-type", "text/plain")
        .body(if on { "0" } else { "inf" });
    send(&step, req).await.map(drop)
}

/// Sends one seeding request; returns the body of a 2xx answer, or a
/// [`StackError::Seed`] naming `step`.
async fn send(step: &str, req: reqwest::RequestBuilder) -> Result<String, StackError> {
    let seed_error = |detail| StackError::Seed {
        step: step.into(),
        detail,
    };
    let r = req.send().await.map_err(|e| seed_error(e.to_string()))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(seed_error(format!("HTTP {status}: {body}")));
    }
    Ok(body)
}

/// Seeds the stack at `endpoint` and turns enforcement on; returns the admin key.
pub(super) async fn seed(
    http: &reqwest::Client,
    endpoint: &str,
) -> Result<AdminCredentials, StackError> {
    let mut seeder = Seeder {
        http,
        endpoint,
        admin: AdminCredentials {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            user_arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}"),
        },
    };
    seeder.seed().await?;
    Ok(seeder.admin)
}

/// The seeding requests (unsigned but scoped: moto accepts them before
/// enforcement is on).
struct Seeder<'a> {
    http: &'a reqwest::Client,
    endpoint: &'a str,
    admin: AdminCredentials,
}

impl Seeder<'_> {
    async fn iam(&self, step: &str, params: &[(&str, &str)]) -> Result<String, StackError> {
        let mut pairs = vec![("Version", "2010-05-08")];
        pairs.extend_from_slice(params);
        let req = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", scope_auth("iam"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&pairs));
        send(step, req).await
    }

    async fn s3_put(&self, step: &str, path: &str, body: &str) -> Result<(), StackError> {
        let req = self
            .http
            .put(format!("{}/{path}", self.endpoint))
            .header("authorization", scope_auth("s3"))
            .header("content-type", "text/plain")
            .body(body.to_owned());
        send(step, req).await.map(drop)
    }

    async fn seed(&mut self) -> Result<(), StackError> {
        let admin_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
        })
        .to_string();
        let user = self
            .iam(
                "CreateUser admin",
                &[("Action", "CreateUser"), ("UserName", ADMIN_USER)],
            )
            .await?;
        if let Some(arn) = xml_field(&user, "Arn") {
            self.admin.user_arn = arn;
        }
        self.iam(
            "PutUserPolicy admin",
            &[
                ("Action", "PutUserPolicy"),
                ("UserName", ADMIN_USER),
                ("PolicyName", "admin-all"),
                ("PolicyDocument", &admin_policy),
            ],
        )
        .await?;
        let key = self
            .iam(
                "CreateAccessKey admin",
                &[("Action", "CreateAccessKey"), ("UserName", ADMIN_USER)],
            )
            .await?;
        match (
            xml_field(&key, "AccessKeyId"),
            xml_field(&key, "SecretAccessKey"),
        ) {
            (Some(id), Some(secret)) => {
                self.admin.access_key_id = id;
                self.admin.secret_access_key = secret;
            }
            _ => {
                return Err(StackError::Seed {
                    step: "CreateAccessKey admin".into(),
                    detail: "no AccessKeyId/SecretAccessKey in the answer".into(),
                })
            }
        }
        let trust = trust_policy(&self.admin.user_arn);
        for (role, bucket) in [(POD_ROLE_NAME, APP_BUCKET), (NODE_ROLE_NAME, OTHER_BUCKET)] {
            self.iam(
                &format!("CreateRole {role}"),
                &[
                    ("Action", "CreateRole"),
                    ("RoleName", role),
                    ("AssumeRolePolicyDocument", &trust),
                    ("MaxSessionDuration", "43200"),
                ],
            )
            .await?;
            self.iam(
                &format!("PutRolePolicy {role}"),
                &[
                    ("Action", "PutRolePolicy"),
                    ("RoleName", role),
                    ("PolicyName", &format!("read-{bucket}")),
                    ("PolicyDocument", &bucket_read_policy(bucket)),
                ],
            )
            .await?;
        }
        for bucket in [APP_BUCKET, OTHER_BUCKET] {
            self.s3_put(&format!("CreateBucket {bucket}"), bucket, "")
                .await?;
            for (key, body) in SEED_OBJECTS {
                self.s3_put(
                    &format!("PutObject {bucket}/{key}"),
                    &format!("{bucket}/{key}"),
                    body,
                )
                .await?;
            }
        }
        set_enforcement(self.http, self.endpoint, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_forms() {
        assert_eq!(
            form_encode(&[("A", "b c/{\"x\"}"), ("k", "v")]),
            "A=b%20c%2F%7B%22x%22%7D&k=v"
        );
    }

    #[test]
    fn parses_xml_fields() {
        assert_eq!(
            xml_field("<a><AccessKeyId>AK</AccessKeyId></a>", "AccessKeyId").as_deref(),
            Some("AK")
        );
        assert_eq!(xml_field("<a/>", "x"), None);
    }
}
