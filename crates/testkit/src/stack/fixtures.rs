//! What the seeded stack contains: region, buckets, roles, the admin user, the
//! app's namespace and service account, and the seed objects.

use crate::creds::ACCOUNT_ID;

/// Region used for everything.
pub const REGION: &str = "us-east-1";
/// The application's bucket (readable by the pod role).
pub const APP_BUCKET: &str = "my-app-bucket";
/// A bucket only the node role may read.
pub const OTHER_BUCKET: &str = "other-bucket";
/// The pod's role.
pub const POD_ROLE_NAME: &str = "my-app-pod-identity-role";
/// The node's (instance profile) role.
pub const NODE_ROLE_NAME: &str = "node-role";
/// The admin IAM user.
pub const ADMIN_USER: &str = "admin";
/// The app's namespace (`deploy/k8s`).
pub const DEFAULT_NAMESPACE: &str = "my-app-namespace";
/// The app's service account (`deploy/k8s`).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "my-app-sa";
/// Objects put in both buckets: (key, body).
pub const SEED_OBJECTS: &[(&str, &str)] = &[
    ("hello.txt", "hello from EKS Pod Identity\n"),
    ("reports/2026-10.csv", "month,requests\n2026-10,1000\n"),
    ("reports/2026-11.csv", "month,requests\n2026-11,1200\n"),
];

/// The ARN of role `name` in moto's account.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}")
}
