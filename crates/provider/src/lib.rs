//! EKS Pod Identity credential provider (work in progress).
