//! [`EksNode`]: an emulated EKS node made of Linux network namespaces, with the
//! production addresses and a **real** IMDS hop limit.
//!
//! ```text
//!  ┌───────── pod ─────────┐      ┌──────────────── node (host network) ───────────────┐      ┌──────── imds ────────┐
//!  │ s3_reader, doctor …   │ veth │ ip_forward=1                                       │ veth │ FakeImds             │
//!  │ eth0 169.254.10.2/30  ├──────┤ vpod 169.254.10.1   vimds 169.254.20.1             ├──────┤ eth0 169.254.20.2/30 │
//!  │      fd00:10::2/64    │      │      fd00:10::1          fd00:20::1                 │      │      fd00:20::2/64   │
//!  │ default via node      │      │ lo: 169.254.170.23, fd00:ec2::23 (FakeAgent :80)   │      │ lo: 169.254.169.254  │
//!  └───────────────────────┘      │ moto_server 0.0.0.0:PORT (S3/STS/IAM)              │      │     fd00:ec2::254    │
//!                                 │ ip rules for BlockMode (blackhole/prohibit/sink)   │      │ (:80, hop limit N)   │
//!                                 └────────────────────────────────────────────────────┘      └──────────────────────┘
//! ```
//!
//! The hop limit is what EC2 does: [`FakeImds`](crate::FakeImds) sets `IP_TTL` / `IPV6_UNICAST_HOPS`
//! on the accepted socket just before answering the token `PUT`. With a hop limit
//! of 1 a pod completes the TCP handshake (the SYN-ACK leaves with the default TTL)
//! and then never receives the answer: the node's forwarding decrements the TTL to
//! 0 and drops it. A process in `node` (hostNetwork, one hop) gets it. 2 reaches
//! the pod.
//!
//! Servers run *inside* the namespaces: each namespace gets a dedicated OS thread
//! that moves itself into the namespace with `setns(2)` and drives its own tokio
//! runtime; sockets created there (listeners, outgoing connections) and processes
//! spawned there (moto) belong to that namespace. Clients run with
//! [`EksNode::command_in_pod`] (`ip netns exec`) or in-process with
//! [`EksNode::run_in`].
//!
//! Everything — processes, runtimes, veths, namespaces, the token file — is removed
//! when the [`EksNode`] is dropped, also while unwinding from a panic. Namespaces
//! left behind by a test process that was killed are swept by the next start.
//!
//! Needs root (CAP_NET_ADMIN) and iproute2. [`EksNodeBuilder::start_or_skip`] skips
//! a test when not root, except under `CI=true`, where it fails.
//!
//! The code is split by what it sets up: `addresses` (the address plan, the
//! constants below), `namespaces` (names, stale-namespace sweep), `links`
//! (veths, addresses, routes), `firewall` ([`BlockMode`]), `thread` (a tokio
//! runtime per namespace), `command` (`ip` and timed processes), `node` (the
//! running [`EksNode`]) and `builder` ([`EksNodeBuilder`], start-up).

mod addresses;
mod builder;
mod command;
mod error;
mod firewall;
mod links;
mod namespaces;
mod node;
mod thread;

pub use addresses::{
    AGENT_V4, AGENT_V6, IMDS_V4, IMDS_V6, KUBERNETES_SERVICE_HOST, NODE_IMDS_SIDE_V4,
    NODE_POD_SIDE_V4, NODE_POD_SIDE_V6, POD_SUBNET_V4, POD_SUBNET_V6, POD_V4, POD_V6,
    TOKEN_FILE_NAME,
};
pub use builder::EksNodeBuilder;
pub use command::output_with_timeout;
pub use error::{skip_reason, NetnsError};
pub use firewall::BlockMode;
pub use namespaces::Netns;
pub use node::EksNode;
