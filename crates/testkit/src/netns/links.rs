//! The links of a node: namespaces, veths, addresses and routes (the drawing in
//! the [module docs](crate::netns)), and the waits that make them usable at once.

use std::time::{Duration, Instant};

use super::addresses::{POD_SUBNET_V4, POD_SUBNET_V6};
use super::command::{add_addrs, add_route, add_veth, poll_ip, run_ip, run_ipn, sysctl};
use super::error::NetnsError;
use super::firewall::{add_block_rules, BlockMode};
use super::namespaces::{Names, Netns};
use super::node::EksNode;

/// Creates the namespaces (each pushed to `created` as soon as it exists, so
/// the caller can tear down a half-built node), links, addresses, routes and the
/// block rules of `block`.
pub(super) fn create(
    names: &Names,
    block: BlockMode,
    created: &mut Vec<String>,
) -> Result<(), NetnsError> {
    let (pod, node, imds) = (names.pod.clone(), names.node.clone(), names.imds.clone());
    let mut all = vec![pod.clone(), node.clone(), imds.clone()];
    all.extend(names.sink.clone());
    for ns in &all {
        run_ip(&["netns", "add", ns])?;
        created.push(ns.clone());
        // No IPv6 duplicate address detection: link-local addresses would be
        // tentative for ~2 s and the first IPv6 packets would be lost.
        sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")?;
        sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")?;
        run_ipn(ns, &["link", "set", "lo", "up"])?;
    }
    // veths are created directly inside their namespaces: fixed names are fine.
    add_veth("eth0", &pod, "vpod", &node)?;
    add_veth("vimds", &node, "eth0", &imds)?;
    add_addrs(&[
        (&pod, "eth0", "169.254.10.2/30"),
        (&pod, "eth0", "fd00:10::2/64"),
        (&node, "vpod", "169.254.10.1/30"),
        (&node, "vpod", "fd00:10::1/64"),
        (&node, "vimds", "169.254.20.1/30"),
        (&node, "vimds", "fd00:20::1/64"),
        (&imds, "eth0", "169.254.20.2/30"),
        (&imds, "eth0", "fd00:20::2/64"),
        (&node, "lo", "169.254.170.23/32"),
        (&node, "lo", "fd00:ec2::23/128"),
        (&imds, "lo", "169.254.169.254/32"),
        (&imds, "lo", "fd00:ec2::254/128"),
    ])?;
    for (ns, dev) in [
        (&pod, "eth0"),
        (&node, "vpod"),
        (&node, "vimds"),
        (&imds, "eth0"),
    ] {
        run_ipn(ns, &["link", "set", dev, "up"])?;
    }
    sysctl(&node, "net.ipv4.ip_forward", "1")?;
    sysctl(&node, "net.ipv6.conf.all.forwarding", "1")?;
    add_route(&pod, "default", "169.254.10.1", None)?;
    add_route(&pod, "default", "fd00:10::1", None)?;
    add_route(&node, "169.254.169.254/32", "169.254.20.2", None)?;
    add_route(&node, "fd00:ec2::254/128", "fd00:20::2", None)?;
    add_route(&imds, POD_SUBNET_V4, "169.254.20.1", None)?;
    add_route(&imds, POD_SUBNET_V6, "fd00:20::1", None)?;
    add_block_rules(names, block)?;
    wait_ipv6_ready(&all);
    Ok(())
}

impl EksNode {
    /// Resolves the neighbours on both veth links, both directions, before a
    /// test runs. On a fresh link the first forwarded IPv6 SYN is lost while
    /// neighbour discovery completes, and the 1 s SYN retransmission that
    /// follows would read as a DROP rule to a probe; a real node's neighbour
    /// caches are warm. One UDP datagram (to the discard port) per direction
    /// starts the resolution; we then wait, bounded, until it is done.
    pub(super) fn warm_neighbours(&self) {
        let pairs: [(Netns, &'static str); 8] = [
            (Netns::Pod, "fd00:10::1"),
            (Netns::Node, "fd00:10::2"),
            (Netns::Node, "fd00:20::2"),
            (Netns::Imds, "fd00:20::1"),
            (Netns::Pod, "169.254.10.1"),
            (Netns::Node, "169.254.10.2"),
            (Netns::Node, "169.254.20.2"),
            (Netns::Imds, "169.254.20.1"),
        ];
        for (ns, addr) in pairs {
            self.block_in(ns, async move {
                let ip: std::net::IpAddr = addr.parse().expect("a literal address");
                let bind: std::net::SocketAddr = if ip.is_ipv6() {
                    "[::]:0".parse().expect("literal")
                } else {
                    "0.0.0.0:0".parse().expect("literal")
                };
                if let Ok(sock) = tokio::net::UdpSocket::bind(bind).await {
                    let _ = sock.send_to(b"warm", (ip, 9)).await;
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (ns, addr) in pairs {
            let args = ["-n", self.name(ns), "neigh", "show", addr];
            poll_ip(&args, deadline, Duration::from_millis(20), |out| {
                String::from_utf8_lossy(out).contains("lladdr")
            });
        }
    }
}

/// Waits (bounded) until no IPv6 address is tentative in any namespace.
fn wait_ipv6_ready(namespaces: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for ns in namespaces {
        let args = ["-n", ns, "-6", "addr", "show", "tentative"];
        poll_ip(&args, deadline, Duration::from_millis(50), <[u8]>::is_empty);
    }
}
