//! The one-line setup: an `SdkConfig` whose credentials come from the
//! [`DefaultChain`], with the matching identity cache.

use crate::default_chain::DefaultChain;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use std::future::Future;

/// `aws_config::load_defaults`, with our Pod Identity provider and IMDS
/// guard in the SDK's default credential chain. A drop-in replacement:
///
/// ```no_run
/// use aws_config::BehaviorVersion;
///
/// # async fn run() {
/// let config = eks_pod_identity::load_defaults(BehaviorVersion::latest()).await;
/// let s3 = aws_sdk_s3::Client::new(&config);
/// # let _ = s3;
/// # }
/// ```
///
/// Nothing is fetched until the first request, as with `aws_config`.
pub async fn load_defaults(version: BehaviorVersion) -> SdkConfig {
    aws_config::defaults(version).load_with_pod_identity().await
}

/// [`ConfigLoader::load`] with the [`DefaultChain`] installed, for loaders
/// customised as usual (region, endpoint, profile files...).
///
/// ```no_run
/// use eks_pod_identity::ConfigLoaderExt;
///
/// # async fn run() {
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .region("eu-west-1")
///     .load_with_pod_identity()
///     .await;
/// # let _ = config;
/// # }
/// ```
pub trait ConfigLoaderExt {
    /// Loads the config, then sets its credentials provider to a
    /// [`DefaultChain`] built from it and its identity cache to the chain's
    /// (replacing any set on the loader).
    fn load_with_pod_identity(self) -> impl Future<Output = SdkConfig> + Send;
}

impl ConfigLoaderExt for ConfigLoader {
    async fn load_with_pod_identity(self) -> SdkConfig {
        DefaultChain::builder().load(self).await.0
    }
}
