//! Kubernetes workloads (from YAML or `kubernetes_*` Terraform resources) and
//! the `EPI-K8S-*` rules that judge their pod specs.

use crate::report::{Finding, Location, Report, Severity};
use crate::rules;

/// Environment variables holding static AWS credentials.
pub(crate) const AWS_KEY_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The service account a pod runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceAccount {
    /// Not set: the namespace's `default` account.
    Default,
    /// A literal name.
    Named(String),
    /// A Terraform expression naming one (e.g. `kubernetes_service_account.app.metadata[0].name`).
    Expression(String),
}

/// Where an env var's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvSource {
    /// A non-empty literal `value`.
    Literal,
    /// `valueFrom` (Secret, ConfigMap, field ref).
    Reference,
    /// Empty or absent value.
    Empty,
}

/// One env var of a container.
#[derive(Debug, Clone)]
pub(crate) struct EnvVar {
    pub(crate) name: String,
    pub(crate) source: EnvSource,
    pub(crate) line: u32,
}

/// The kind of object an `envFrom` entry injects whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvFromKind {
    Secret,
    ConfigMap,
}

impl EnvFromKind {
    fn as_str(self) -> &'static str {
        match self {
            EnvFromKind::Secret => "Secret",
            EnvFromKind::ConfigMap => "ConfigMap",
        }
    }
}

/// One `envFrom` entry of a container: every key of the object becomes an env
/// var named `var_prefix` + key (`envFrom[].prefix`).
#[derive(Debug, Clone)]
pub(crate) struct EnvFrom {
    pub(crate) kind: EnvFromKind,
    pub(crate) name: String,
    pub(crate) var_prefix: String,
    pub(crate) line: u32,
}

/// A Secret or ConfigMap found among the linted files: its key names only
/// (values are never kept, so they cannot leak into evidence).
#[derive(Debug, Clone)]
pub(crate) struct EnvObject {
    pub(crate) kind: EnvFromKind,
    /// Literal namespace, if known (`default` when unset in YAML).
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) keys: Vec<String>,
}

/// A container (or init container) and its env.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub(crate) name: String,
    pub(crate) env: Vec<EnvVar>,
    pub(crate) env_from: Vec<EnvFrom>,
}

/// A pod template, wherever it was declared.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// Human description, e.g. `Deployment my-app-namespace/s3-reader`.
    pub(crate) describe: String,
    pub(crate) path: String,
    /// Literal namespace, if known (`default` when unset in YAML).
    pub(crate) namespace: Option<String>,
    pub(crate) service_account: ServiceAccount,
    /// `Some(line)` when `hostNetwork` is true.
    pub(crate) host_network: Option<u32>,
    pub(crate) containers: Vec<Container>,
    /// Names and container images, to recognise node agents.
    pub(crate) identity: Vec<String>,
    /// Rule ids suppressed by the workload's `pod-identity-doctor/ignore` annotation.
    pub(crate) ignored: Vec<String>,
}

/// Node agents that need the host network by design (CNI, kube-proxy, node
/// exporters, CSI node plugins, the Pod Identity agent itself), matched against
/// workload and chart names and container images.
pub(crate) const NODE_AGENTS: &[&str] = &[
    "aws-node",
    "amazon-k8s-cni",
    "kube-proxy",
    "node-exporter",
    "csi-node",
    "csi-node-driver-registrar",
    "secrets-store-csi-driver",
    "eks-pod-identity-agent",
    "cilium",
    "calico-node",
    "calico/node",
    "nvidia-device-plugin",
    "neuron-device-plugin",
    "efa-device-plugin",
    "aws-vpc-cni",
];

/// The node agent `names` point to, if any.
pub(crate) fn node_agent<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    names.into_iter().find_map(|n| {
        let n = n.to_ascii_lowercase();
        NODE_AGENTS.iter().copied().find(|a| n.contains(a))
    })
}

/// A `(namespace, service_account)` pair that has a pod identity association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssociatedAccount {
    pub(crate) namespace: String,
    pub(crate) service_account: String,
}

/// Applies the `EPI-K8S-*` rules to `w`; `objects` are the Secrets and
/// ConfigMaps of the lint run, which `envFrom` entries are resolved against.
pub(crate) fn check(
    w: &Workload,
    associations: &[AssociatedAccount],
    objects: &[EnvObject],
    report: &mut Report,
) {
    let ignored = |rule: &rules::Rule| w.ignored.iter().any(|r| r.eq_ignore_ascii_case(rule.id));
    if let Some(line) = w.host_network.filter(|_| !ignored(&rules::HOST_NETWORK)) {
        let sa_name = match &w.service_account {
            ServiceAccount::Default => Some("default"),
            ServiceAccount::Named(n) => Some(n.as_str()),
            ServiceAccount::Expression(_) => None,
        };
        let associated = match (&w.namespace, sa_name) {
            (Some(ns), Some(sa)) => associations
                .iter()
                .any(|a| &a.namespace == ns && a.service_account == sa),
            _ => false,
        };
        let agent = node_agent(w.identity.iter().map(String::as_str));
        let (severity, why) = match (&w.service_account, associated) {
            _ if agent.is_some() => (
                Severity::Low,
                format!(
                    "it is a known node agent ({}), which needs the host network by design",
                    agent.unwrap_or_default()
                ),
            ),
            (_, true) => (
                Severity::High,
                format!(
                    "its service account {}/{} has a pod identity association",
                    w.namespace.as_deref().unwrap_or("?"),
                    sa_name.unwrap_or("?")
                ),
            ),
            (ServiceAccount::Named(n), false) => {
                (Severity::High, format!("it runs as service account `{n}`"))
            }
            (ServiceAccount::Expression(e), false) => {
                (Severity::High, format!("it runs as service account `{e}`"))
            }
            (ServiceAccount::Default, false) => (
                Severity::Medium,
                "it runs as the default service account".to_owned(),
            ),
        };
        report.push(
            Finding::new(
                &rules::HOST_NETWORK,
                format!(
                    "{} sets hostNetwork: true; {why}, yet IMDS answers it as the node",
                    w.describe
                ),
                Location::file(&w.path, line),
            )
            .with_severity(severity),
        );
    }

    for container in &w.containers {
        for (source, rule) in [
            (EnvSource::Literal, &rules::STATIC_AWS_KEYS),
            (EnvSource::Reference, &rules::AWS_KEYS_FROM_REF),
        ] {
            if ignored(rule) {
                continue;
            }
            let vars: Vec<&EnvVar> = container
                .env
                .iter()
                .filter(|v| v.source == source && AWS_KEY_VARS.contains(&v.name.as_str()))
                .collect();
            let Some(first) = vars.first() else {
                continue;
            };
            let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            let how = match source {
                EnvSource::Literal => "literal values (not shown)",
                _ => "valueFrom references",
            };
            report.push(Finding::new(
                rule,
                format!(
                    "container `{}` of {} sets {} from {how}",
                    container.name,
                    w.describe,
                    names.join(", ")
                ),
                Location::file(&w.path, first.line),
            ));
        }
        if !ignored(&rules::AWS_KEYS_FROM_REF) {
            env_from(w, container, objects, report);
        }
    }
}

/// `EPI-K8S-003` for `envFrom` entries whose object (found among the linted
/// files, same namespace) holds AWS key names. An object that is not among the
/// linted files cannot be judged and gives no finding.
fn env_from(w: &Workload, container: &Container, objects: &[EnvObject], report: &mut Report) {
    for from in &container.env_from {
        let same_namespace = |o: &EnvObject| match (&o.namespace, &w.namespace) {
            (Some(a), Some(b)) => a == b,
            // A Terraform expression: the namespace is not known statically.
            _ => true,
        };
        let Some(object) = objects
            .iter()
            .find(|o| o.kind == from.kind && o.name == from.name && same_namespace(o))
        else {
            continue;
        };
        let mut names: Vec<String> = object
            .keys
            .iter()
            .map(|k| format!("{}{k}", from.var_prefix))
            .filter(|n| AWS_KEY_VARS.contains(&n.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            continue;
        }
        let with_prefix = if from.var_prefix.is_empty() {
            String::new()
        } else {
            format!(" with prefix `{}`", from.var_prefix)
        };
        report.push(Finding::new(
            &rules::AWS_KEYS_FROM_REF,
            format!(
                "container `{}` of {} sets {} through envFrom of {} `{}`{with_prefix} (values not shown)",
                container.name,
                w.describe,
                names.join(", "),
                from.kind.as_str(),
                from.name,
            ),
            Location::file(&w.path, from.line),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Command;

    fn workload(sa: ServiceAccount, host: bool) -> Workload {
        Workload {
            describe: "Pod ns/p".into(),
            path: "p.yaml".into(),
            namespace: Some("ns".into()),
            service_account: sa,
            host_network: host.then_some(3),
            identity: vec!["p".into()],
            ignored: Vec::new(),
            containers: vec![Container {
                name: "c".into(),
                env: vec![
                    EnvVar {
                        name: "AWS_ACCESS_KEY_ID".into(),
                        source: EnvSource::Literal,
                        line: 7,
                    },
                    EnvVar {
                        name: "AWS_REGION".into(),
                        source: EnvSource::Literal,
                        line: 8,
                    },
                    EnvVar {
                        name: "AWS_SECRET_ACCESS_KEY".into(),
                        source: EnvSource::Empty,
                        line: 9,
                    },
                ],
                env_from: Vec::new(),
            }],
        }
    }

    #[test]
    fn host_network_severity_depends_on_service_account() {
        let assoc = [AssociatedAccount {
            namespace: "ns".into(),
            service_account: "default".into(),
        }];
        for (sa, associations, expected) in [
            (ServiceAccount::Default, &[][..], Severity::Medium),
            (ServiceAccount::Default, &assoc[..], Severity::High),
            (ServiceAccount::Named("app".into()), &[][..], Severity::High),
        ] {
            let mut r = Report::new(Command::Lint);
            check(&workload(sa, true), associations, &[], &mut r);
            let f: Vec<_> = r
                .findings()
                .iter()
                .filter(|f| f.rule_id == "EPI-K8S-001")
                .collect();
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].severity, expected);
        }
    }

    #[test]
    fn only_literal_key_values_are_static_keys() {
        let mut r = Report::new(Command::Lint);
        check(&workload(ServiceAccount::Default, false), &[], &[], &mut r);
        assert_eq!(r.findings().len(), 1);
        let f = &r.findings()[0];
        assert_eq!(f.rule_id, "EPI-K8S-002");
        assert_eq!(f.location, Location::file("p.yaml", 7));
        assert!(f.evidence.contains("AWS_ACCESS_KEY_ID"));
        assert!(!f.evidence.contains("AWS_SECRET_ACCESS_KEY"));
    }
}
