//! eks-pod-identity facade (work in progress).
pub use eks_pod_identity_provider::*;
