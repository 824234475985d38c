//! [`MotoStack`]: a local `moto_server` (S3 + STS + IAM) seeded like the
//! Terraform in `deploy/terraform`, with IAM enforcement turned on.
//!
//! Seeding (before enforcement, with unsigned-but-scoped requests, which moto
//! accepts then): IAM user `admin` with a `*` policy and an access key; role
//! [`POD_ROLE_NAME`] allowed `s3:GetObject`/`s3:ListBucket` on [`APP_BUCKET`] only;
//! role [`NODE_ROLE_NAME`] allowed the same on [`OTHER_BUCKET`] only; both trust
//! `{"AWS": <admin ARN>, "Service": "pods.eks.amazonaws.com"}` for `sts:AssumeRole` +
//! `sts:TagSession`; both buckets get [`SEED_OBJECTS`]. Then
//! `POST /moto-api/reset-auth` with `0`: from then on every request must be SigV4
//! signed with a known key and is checked against IAM policies.
//!
//! The process is killed by its own PID when the stack is dropped.
//!
//! The code is split by concern: `fixtures` (names, buckets, objects), `error`,
//! `process` (finding, spawning and killing `moto_server`), `seed` (the IAM and
//! S3 seeding, enforcement) and `moto` ([`MotoStack`] and its builder).

mod error;
mod fixtures;
mod moto;
mod process;
mod seed;

pub use error::StackError;
pub use fixtures::{
    role_arn, ADMIN_USER, APP_BUCKET, DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT, NODE_ROLE_NAME,
    OTHER_BUCKET, POD_ROLE_NAME, REGION, SEED_OBJECTS,
};
pub use moto::{MotoStack, MotoStackBuilder};
pub use process::find_moto_server;
pub use seed::AdminCredentials;
