//! Kubernetes workloads declared with the Terraform `kubernetes` provider
//! (`kubernetes_pod`, `kubernetes_deployment`, ... and their `_v1` names, and
//! `kubernetes_manifest`), turned into [`Workload`]s for the `EPI-K8S-*` rules.

use hcl::edit::structure::Body;

use super::file::{Item, TfFile};
use crate::lint::hcl_value::{
    attr, attr_str, block, block_path, literal_bool, literal_str, source_text, string_text, to_json,
};
use crate::lint::kubernetes::{node_class_object, workloads_of_object, LineSource, YamlFile};
use crate::lint::lines::YamlLines;
use crate::lint::workload::{
    Container, EnvFrom, EnvFromKind, EnvObject, EnvSource, EnvVar, ServiceAccount, Workload,
};
use crate::report::Report;

/// Nested block path from the resource body to the pod spec, by resource type.
fn pod_spec_path(rtype: &str) -> Option<&'static [&'static str]> {
    let base = rtype.strip_suffix("_v1").unwrap_or(rtype);
    Some(match base {
        "kubernetes_pod" => &["spec"],
        "kubernetes_deployment"
        | "kubernetes_daemonset"
        | "kubernetes_daemon_set"
        | "kubernetes_stateful_set"
        | "kubernetes_replication_controller"
        | "kubernetes_job" => &["spec", "template", "spec"],
        "kubernetes_cron_job" => &["spec", "job_template", "spec", "template", "spec"],
        _ => return None,
    })
}

/// The YAML of a `kubectl_manifest`'s `yaml_body` (a literal or heredoc; `${}`
/// interpolations kept as text), parsed, with the line its text starts on.
fn kubectl_yaml(item: &Item<'_>) -> Option<YamlFile> {
    if item.rtype != "kubectl_manifest" {
        return None;
    }
    let a = attr(item.body(), "yaml_body")?;
    let text = string_text(&a.value, item.src())?;
    let heredoc = matches!(a.value, hcl::edit::expr::Expression::HeredocTemplate(_));
    let first = item.line(&a.value) + u32::from(heredoc);
    let mut file = crate::lint::kubernetes::parse(&item.file.path, &text).ok()?;
    for doc in &mut file.docs {
        doc.first_line += first - 1;
    }
    Some(file)
}

/// Node IMDS settings (Karpenter `EC2NodeClass`, eksctl) in a
/// `kubernetes_manifest` or `kubectl_manifest`.
pub(crate) fn node_classes(item: &Item<'_>, report: &mut Report) {
    let declared_by = format!("{} ", item.address());
    if item.rtype == "kubernetes_manifest" {
        if let Some(manifest) = attr(item.body(), "manifest") {
            let obj = to_json(&manifest.value, item.src());
            let mut lines = LineSource::Fixed(item.line(manifest));
            node_class_object(&obj, &item.file.path, &mut lines, &declared_by, report);
        }
    } else if let Some(file) = kubectl_yaml(item) {
        for doc in &file.docs {
            let mut lines = LineSource::Yaml(YamlLines::new(&doc.text, doc.first_line));
            node_class_object(
                &doc.value,
                &item.file.path,
                &mut lines,
                &declared_by,
                report,
            );
        }
    }
}

/// Whether a Helm value path turns on the host network (`hostNetwork`,
/// `daemonset.hostNetwork`, `controller.hostNetwork`, ...).
fn is_host_network_key(name: &str) -> bool {
    name.rsplit('.').next().is_some_and(|k| k == "hostNetwork")
}

/// The line of a `hostNetwork: true` (YAML) or `hostNetwork = true` (HCL) in `text`, 0-based.
fn host_network_in_text(text: &str) -> Option<usize> {
    text.lines().position(|l| {
        let l = l.trim().trim_start_matches('"');
        l.strip_prefix("hostNetwork")
            .map(|r| r.trim_start_matches('"').trim_start())
            .and_then(|r| r.strip_prefix(':').or_else(|| r.strip_prefix('=')))
            .is_some_and(|v| {
                let v = v.split('#').next().unwrap_or("").trim().trim_matches('"');
                v == "true"
            })
    })
}

/// A `helm_release` whose `set` or `values` turn on `hostNetwork`.
fn helm_release(item: &Item<'_>) -> Option<Workload> {
    let body = item.body();
    let src = item.src();
    let mut line = None;
    for set in body.get_blocks("set") {
        let on = attr_str(&set.body, "name").is_some_and(|n| is_host_network_key(&n))
            && attr(&set.body, "value").is_some_and(|v| literal_bool(&v.value) == Some(true));
        if on {
            line = Some(item.line(set));
        }
    }
    for key in ["set", "values"] {
        if line.is_some() {
            break;
        }
        if let Some(a) = attr(body, key) {
            let text = source_text(&a.value, src);
            let set_list = key == "set"
                && text.contains("hostNetwork")
                && text.split('}').any(|entry| {
                    let compact: String = entry.split_whitespace().collect();
                    compact.contains("hostNetwork")
                        && (compact.contains("value=true") || compact.contains("value=\"true\""))
                });
            let start = item.line(a) as usize;
            if set_list {
                line = Some(item.line(a));
            } else if let Some(i) = host_network_in_text(text) {
                line = Some(u32::try_from(start + i).unwrap_or(u32::MAX));
            }
        }
    }
    let line = line?;
    let mut identity = vec![item.name.to_owned()];
    identity.extend(
        ["name", "chart", "repository"]
            .iter()
            .filter_map(|k| attr_str(body, k)),
    );
    let chart = attr_str(body, "chart").unwrap_or_else(|| "?".to_owned());
    Some(Workload {
        describe: format!("{} (chart {chart})", item.address()),
        path: item.file.path.clone(),
        namespace: None,
        service_account: ServiceAccount::Expression("chosen by the chart".to_owned()),
        host_network: Some(line),
        containers: Vec::new(),
        identity,
        ignored: Vec::new(),
    })
}

/// The workloads a resource declares (none for unrelated resources).
pub(crate) fn workloads(item: &Item<'_>) -> Vec<Workload> {
    let mut out = Vec::new();
    if item.rtype == "helm_release" {
        out.extend(helm_release(item));
        return out;
    }
    if let Some(file) = kubectl_yaml(item) {
        for doc in &file.docs {
            let mut lines = LineSource::Yaml(YamlLines::new(&doc.text, doc.first_line));
            workloads_of_object(&doc.value, &item.file.path, &mut lines, &mut out);
        }
        for w in &mut out {
            w.describe = format!("{} ({})", item.address(), w.describe);
        }
        return out;
    }
    if item.rtype == "kubernetes_manifest" {
        if let Some(manifest) = attr(item.body(), "manifest") {
            let line = item.line(manifest);
            let obj = to_json(&manifest.value, item.src());
            workloads_of_object(
                &obj,
                &item.file.path,
                &mut LineSource::Fixed(line),
                &mut out,
            );
            for w in &mut out {
                w.describe = format!("{} ({})", item.address(), w.describe);
            }
        }
        return out;
    }
    let Some(path) = pod_spec_path(item.rtype) else {
        return out;
    };
    let Some(spec) = block_path(item.body(), path) else {
        return out;
    };
    out.push(pod_spec(item, &spec.body));
    out
}

/// The `kubernetes_secret` and `kubernetes_config_map` resources (and their
/// `_v1` names) of the Terraform files, with their key names, for `env_from`.
pub(crate) fn env_objects(files: &[TfFile]) -> Vec<EnvObject> {
    let mut out = Vec::new();
    for file in files {
        for b in file.body.blocks().filter(|b| b.has_ident("resource")) {
            let Some(rtype) = b.labels.first() else {
                continue;
            };
            let (kind, maps): (EnvFromKind, &[&str]) =
                match rtype.as_str().strip_suffix("_v1").unwrap_or(rtype.as_str()) {
                    "kubernetes_secret" => (EnvFromKind::Secret, &["data", "binary_data"]),
                    "kubernetes_config_map" => (EnvFromKind::ConfigMap, &["data", "binary_data"]),
                    _ => continue,
                };
            let Some(metadata) = block(&b.body, "metadata") else {
                continue;
            };
            let Some(name) = attr_str(&metadata.body, "name") else {
                continue;
            };
            let namespace = match attr(&metadata.body, "namespace") {
                None => Some("default".to_owned()),
                Some(a) => literal_str(&a.value),
            };
            let keys = maps
                .iter()
                .filter_map(|m| attr(&b.body, m))
                .filter_map(|a| match to_json(&a.value, &file.src) {
                    serde_json::Value::Object(o) => Some(o.into_iter().map(|(k, _)| k)),
                    _ => None,
                })
                .flatten()
                .collect();
            out.push(EnvObject {
                kind,
                namespace,
                name,
                keys,
            });
        }
    }
    out
}

fn pod_spec(item: &Item<'_>, spec: &Body) -> Workload {
    let src = item.src();
    let namespace = match block(item.body(), "metadata").and_then(|m| attr(&m.body, "namespace")) {
        None => Some("default".to_owned()),
        Some(a) => literal_str(&a.value),
    };
    let service_account = match attr(spec, "service_account_name") {
        None => ServiceAccount::Default,
        Some(a) => match literal_str(&a.value) {
            Some(s) if s.is_empty() || s == "default" => ServiceAccount::Default,
            Some(s) => ServiceAccount::Named(s),
            None => ServiceAccount::Expression(source_text(&a.value, src).to_owned()),
        },
    };
    let host_network = attr(spec, "host_network")
        .filter(|a| literal_bool(&a.value) == Some(true))
        .map(|a| item.line(a));
    let mut containers = Vec::new();
    for kind in ["init_container", "container"] {
        for c in spec.get_blocks(kind) {
            let env = c
                .body
                .get_blocks("env")
                .filter_map(|e| {
                    let name = attr_str(&e.body, "name")?;
                    let source = if block(&e.body, "value_from").is_some() {
                        EnvSource::Reference
                    } else {
                        match attr(&e.body, "value") {
                            // A reference (var.x) is still a static key in the pod spec.
                            Some(v) if literal_str(&v.value).is_none_or(|s| !s.is_empty()) => {
                                EnvSource::Literal
                            }
                            _ => EnvSource::Empty,
                        }
                    };
                    Some(EnvVar {
                        name,
                        source,
                        line: item.line(e),
                    })
                })
                .collect();
            let env_from = c
                .body
                .get_blocks("env_from")
                .filter_map(|e| {
                    let (reference, kind) = [
                        ("secret_ref", EnvFromKind::Secret),
                        ("config_map_ref", EnvFromKind::ConfigMap),
                    ]
                    .into_iter()
                    .find_map(|(ident, kind)| Some((block(&e.body, ident)?, kind)))?;
                    Some(EnvFrom {
                        kind,
                        name: attr_str(&reference.body, "name")?,
                        var_prefix: attr_str(&e.body, "prefix").unwrap_or_default(),
                        line: item.line(reference),
                    })
                })
                .collect();
            containers.push(Container {
                name: attr_str(&c.body, "name").unwrap_or_else(|| "<unnamed>".to_owned()),
                env,
                env_from,
            });
        }
    }
    let mut identity = vec![item.name.to_owned()];
    identity.extend(block(item.body(), "metadata").and_then(|m| attr_str(&m.body, "name")));
    for kind in ["init_container", "container"] {
        identity.extend(
            spec.get_blocks(kind)
                .filter_map(|c| attr_str(&c.body, "image")),
        );
    }
    Workload {
        describe: item.address(),
        path: item.file.path.clone(),
        namespace,
        service_account,
        host_network,
        containers,
        identity,
        ignored: Vec::new(),
    }
}
