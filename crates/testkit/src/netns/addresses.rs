//! The emulated node's address plan: the production addresses of the agent and
//! IMDS, and the links between the namespaces.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The Pod Identity Agent's IPv4 address (on `lo` in `node`).
pub const AGENT_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The Pod Identity Agent's IPv6 address (on `lo` in `node`).
pub const AGENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
/// IMDS's IPv4 address (on `lo` in `imds`).
pub const IMDS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// IMDS's IPv6 address (on `lo` in `imds`).
pub const IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
/// The pod's address (its `eth0`).
pub const POD_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
/// The pod's IPv6 address.
pub const POD_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 2);
/// The node's address on the pod link (the pod's gateway; moto is reached here).
pub const NODE_POD_SIDE_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 1);
/// The node's IPv6 address on the pod link.
pub const NODE_POD_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
/// The node's address on the IMDS link (IMDS reaches moto here).
pub const NODE_IMDS_SIDE_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 1);
/// The pod subnet (source of the block rules).
pub const POD_SUBNET_V4: &str = "169.254.10.0/30";
/// The pod IPv6 subnet.
pub const POD_SUBNET_V6: &str = "fd00:10::/64";
/// `KUBERNETES_SERVICE_HOST` in [`EksNode::pod_env`](super::EksNode::pod_env) (EKS's default service CIDR).
pub const KUBERNETES_SERVICE_HOST: &str = "10.100.0.1";
/// Where EKS mounts the token; [`EksNode::token_file`](super::EksNode::token_file) uses a per-node temp path with
/// the same file name instead.
pub const TOKEN_FILE_NAME: &str = "eks-pod-identity-token";
