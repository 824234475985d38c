//! Test doubles for EKS Pod Identity (work in progress).
