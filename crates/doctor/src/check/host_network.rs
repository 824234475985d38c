//! The host-network hint: a pod whose IP is its node's IP runs on the host
//! network, where IMDS is one hop away whatever the hop limit.

use eks_pod_identity_provider::Env;

use super::probe::{Observation, Outcome, Probe};
use crate::report::ProbeStatus;
use crate::rules::{self, Rule};

/// Probe name of the host-network hint.
pub(crate) const PROBE: &str = "host-network";

/// What the host-network hint can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostNetworkOutcome {
    /// The pod IP equals the host IP.
    HostNetwork,
    /// The pod IP differs from the host IP.
    PodNetwork,
    /// The downward-API variables are not set.
    Unknown,
}

impl Outcome for HostNetworkOutcome {
    fn name(self) -> &'static str {
        match self {
            HostNetworkOutcome::HostNetwork => "host_network",
            HostNetworkOutcome::PodNetwork => "pod_network",
            HostNetworkOutcome::Unknown => "unknown",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        match self {
            HostNetworkOutcome::HostNetwork => Some(&rules::ID_HOST_NETWORK),
            HostNetworkOutcome::PodNetwork | HostNetworkOutcome::Unknown => None,
        }
    }

    fn status(self) -> ProbeStatus {
        match self {
            HostNetworkOutcome::HostNetwork => ProbeStatus::Leak,
            HostNetworkOutcome::PodNetwork => ProbeStatus::Ok,
            HostNetworkOutcome::Unknown => ProbeStatus::Unknown,
        }
    }
}

/// Reads the pod and host IPs from `pod_ip_env` and `host_ip_env`, then [`classify`].
pub(crate) fn probe(env: &dyn Env, pod_ip_env: &str, host_ip_env: &str) -> Probe {
    let mut p = Probe::new(PROBE, None);
    p.record(classify(
        (pod_ip_env, env.non_empty(pod_ip_env).as_deref()),
        (host_ip_env, env.non_empty(host_ip_env).as_deref()),
    ));
    p
}

/// Compares the pod IP and the host IP, each with the variable it came from. Pure.
pub(crate) fn classify(
    (pod_var, pod): (&str, Option<&str>),
    (host_var, host): (&str, Option<&str>),
) -> Observation<HostNetworkOutcome> {
    match (pod, host) {
        (Some(pod), Some(host)) if pod.trim() == host.trim() => Observation::same(
            HostNetworkOutcome::HostNetwork,
            format!("{pod_var}={pod} equals {host_var}={host}"),
        ),
        (Some(pod), Some(host)) => Observation::same(
            HostNetworkOutcome::PodNetwork,
            format!("{pod_var}={pod}, {host_var}={host}: not on the host network"),
        ),
        _ => Observation::same(
            HostNetworkOutcome::Unknown,
            format!(
                "{pod_var} / {host_var} not set (expose status.podIP and status.hostIP through the downward API)"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_matrix() {
        use HostNetworkOutcome::*;
        let table = [
            (
                HostNetwork,
                "host_network",
                Some("EPI-ID-010"),
                ProbeStatus::Leak,
            ),
            (PodNetwork, "pod_network", None, ProbeStatus::Ok),
            (Unknown, "unknown", None, ProbeStatus::Unknown),
        ];
        crate::check::probe::assert_matrix(&table);
    }

    #[test]
    fn classify_compares_trimmed_ips() {
        let pod = |v| ("POD_IP", v);
        let host = |v| ("HOST_IP", v);
        let same = classify(pod(Some("10.0.0.5 ")), host(Some("10.0.0.5")));
        assert_eq!(same.outcome, HostNetworkOutcome::HostNetwork);
        assert_eq!(same.evidence, "POD_IP=10.0.0.5  equals HOST_IP=10.0.0.5");
        let differ = classify(pod(Some("10.0.1.7")), host(Some("10.0.0.5")));
        assert_eq!(differ.outcome, HostNetworkOutcome::PodNetwork);
        for (p, h) in [
            (None, Some("10.0.0.5")),
            (Some("10.0.0.5"), None),
            (None, None),
        ] {
            assert_eq!(
                classify(pod(p), host(h)).outcome,
                HostNetworkOutcome::Unknown
            );
        }
    }
}
