//! How the node treats the pod's traffic to IMDS: [`BlockMode`] and the policy
//! rules (and, for REJECT, the sink namespace) that implement it.

use super::addresses::{POD_SUBNET_V4, POD_SUBNET_V6};
use super::command::{add_addrs, add_route, add_veth, run_ipn};
use super::error::NetnsError;
use super::namespaces::Names;

/// The routing table the REJECT rule looks up (it routes IMDS to the sink).
const BLOCK_TABLE: &str = "100";

/// How the node treats the pod's traffic to IMDS (169.254.169.254 and
/// fd00:ec2::254), as a node firewall / network policy would. Only the pod subnet
/// is affected; `node` itself still reaches IMDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BlockMode {
    /// No block.
    #[default]
    None,
    /// Refused at once (`ECONNREFUSED`), like `iptables -j REJECT` (port-unreachable
    /// or `--reject-with tcp-reset`). Without iptables: a policy route sends the
    /// pod's IMDS traffic to a sink namespace that owns the IMDS addresses and
    /// listens on nothing, so its kernel answers the SYN with a RST.
    Reject,
    /// Silently dropped: the connect times out (`ip rule … blackhole`), like
    /// `iptables -j DROP` or a deny-all network policy.
    Drop,
    /// ICMP "administratively prohibited" (`ip rule … prohibit`), like
    /// `REJECT --reject-with icmp-admin-prohibited`: `EHOSTUNREACH` ("No route to
    /// host") over IPv4, `EACCES` over IPv6.
    Prohibit,
}

/// Adds the rules of `mode` in `names.node` (and sets up the REJECT sink).
pub(super) fn add_block_rules(names: &Names, mode: BlockMode) -> Result<(), NetnsError> {
    let node = names.node.clone();
    let v4 = ["from", POD_SUBNET_V4, "to", "169.254.169.254/32"];
    let v6 = ["from", POD_SUBNET_V6, "to", "fd00:ec2::254/128"];
    let action = match mode {
        BlockMode::None => return Ok(()),
        BlockMode::Drop => vec!["blackhole"],
        BlockMode::Prohibit => vec!["prohibit"],
        BlockMode::Reject => vec!["lookup", BLOCK_TABLE],
    };
    let mut r4 = vec!["rule", "add"];
    r4.extend_from_slice(&v4);
    r4.extend_from_slice(&action);
    run_ipn(&node, &r4)?;
    let mut r6 = vec!["-6", "rule", "add"];
    r6.extend_from_slice(&v6);
    r6.extend_from_slice(&action);
    run_ipn(&node, &r6)?;
    if mode != BlockMode::Reject {
        return Ok(());
    }
    // The REJECT sink: owns the IMDS addresses, listens on nothing → RST.
    let sink = names.sink.clone().expect("sink namespace for Reject");
    add_veth("vblk", &node, "eth0", &sink)?;
    add_addrs(&[
        (&node, "vblk", "169.254.30.1/30"),
        (&node, "vblk", "fd00:30::1/64"),
        (&sink, "eth0", "169.254.30.2/30"),
        (&sink, "eth0", "fd00:30::2/64"),
        (&sink, "lo", "169.254.169.254/32"),
        (&sink, "lo", "fd00:ec2::254/128"),
    ])?;
    run_ipn(&node, &["link", "set", "vblk", "up"])?;
    run_ipn(&sink, &["link", "set", "eth0", "up"])?;
    add_route(&sink, "default", "169.254.30.1", None)?;
    add_route(&sink, "default", "fd00:30::1", None)?;
    let table = Some(BLOCK_TABLE);
    add_route(&node, "169.254.169.254/32", "169.254.30.2", table)?;
    add_route(&node, "fd00:ec2::254/128", "fd00:30::2", table)
}
