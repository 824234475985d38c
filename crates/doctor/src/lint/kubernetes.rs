//! Kubernetes YAML: multi-document files parsed with `serde_yaml`, turned into
//! [`Workload`]s.
//!
//! A file is split at `---` document markers first so that each document's text
//! (and its first line) is known; each document is then parsed with
//! `serde_yaml` on its own, which gives exact parse-error lines and lets
//! [`YamlLines`] find the line of `hostNetwork` or of an env var inside it.
//! Documents without `kind` (non-Kubernetes YAML) are ignored.

use serde_json::Value;

use super::error::LintError;
use super::eval::{Tv, Val};
use super::lines::YamlLines;
use super::node_imds::{NodeImds, Setting, K8S_RULES};
use super::workload::{
    Container, EnvFrom, EnvFromKind, EnvObject, EnvSource, EnvVar, ServiceAccount, Workload,
};
use crate::report::{Finding, Location, Report, Severity};
use crate::rules;

/// One parsed YAML document.
#[derive(Debug)]
pub(crate) struct YamlDoc {
    pub(crate) value: Value,
    pub(crate) text: String,
    pub(crate) first_line: u32,
}

/// A parsed YAML file.
#[derive(Debug)]
pub(crate) struct YamlFile {
    pub(crate) path: String,
    pub(crate) docs: Vec<YamlDoc>,
}

/// Parses every document of `src`.
pub(crate) fn parse(path: &str, src: &str) -> Result<YamlFile, LintError> {
    let mut docs = Vec::new();
    for (text, first_line) in split_documents(src) {
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| LintError::Yaml {
                path: path.to_owned(),
                line: e.location().map(|l| l.line() as u32 + first_line - 1),
                message: shift_lines(&e.to_string(), first_line - 1),
            })?;
        if value.is_null() {
            continue;
        }
        docs.push(YamlDoc {
            value: yaml_to_json(value),
            text,
            first_line,
        });
    }
    Ok(YamlFile {
        path: path.to_owned(),
        docs,
    })
}

/// Parses a JSON manifest (one object, possibly a `List`).
pub(crate) fn parse_json(path: &str, src: &str) -> Result<YamlFile, LintError> {
    let value: Value = serde_json::from_str(src).map_err(|e| LintError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    Ok(YamlFile {
        path: path.to_owned(),
        docs: vec![YamlDoc {
            value,
            text: src.to_owned(),
            first_line: 1,
        }],
    })
}

/// Splits at lines that start a document (`---`), keeping each document's first line number.
fn split_documents(src: &str) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    let mut current = String::new();
    let mut start = 1u32;
    for (i, line) in src.split_inclusive('\n').enumerate() {
        let l = line.trim_end_matches(['\n', '\r']);
        let is_marker = l == "---" || l.starts_with("--- ") || l.starts_with("---\t");
        if is_marker {
            if has_content(&current) {
                out.push((std::mem::take(&mut current), start));
            }
            current.clear();
            start = i as u32 + 1;
        } else if current.is_empty() {
            start = i as u32 + 1;
        }
        current.push_str(line);
    }
    if has_content(&current) {
        out.push((current, start));
    }
    out
}

/// Rewrites every `line N` in a parser message to `line N + offset` (document → file lines).
fn shift_lines(message: &str, offset: u32) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<u32>() {
            out.push_str(&(n + offset).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !(t.is_empty() || t.starts_with('#') || t == "---" || t == "...")
    })
}

/// Converts a YAML value to JSON (non-string keys are stringified, tags dropped).
fn yaml_to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

/// Where lines come from when building workloads out of a JSON-shaped object.
pub(crate) enum LineSource<'a> {
    /// A YAML document: look keys up in its text.
    Yaml(YamlLines<'a>),
    /// Everything is reported at one line (e.g. a Terraform `kubernetes_manifest`).
    Fixed(u32),
}

impl LineSource<'_> {
    fn key(&mut self, key: &str) -> u32 {
        match self {
            LineSource::Yaml(l) => l.next_key(key),
            LineSource::Fixed(n) => *n,
        }
    }
    fn name(&mut self, name: &str) -> u32 {
        match self {
            LineSource::Yaml(l) => l.next_name(name),
            LineSource::Fixed(n) => *n,
        }
    }
}

/// The workloads of every document of a YAML file.
pub(crate) fn workloads(file: &YamlFile) -> Vec<Workload> {
    let mut out = Vec::new();
    for doc in &file.docs {
        let mut lines = LineSource::Yaml(YamlLines::new(&doc.text, doc.first_line));
        workloads_of_object(&doc.value, &file.path, &mut lines, &mut out);
    }
    out
}

/// Node IMDS settings of every document of a YAML file (Karpenter
/// `EC2NodeClass`, eksctl `ClusterConfig`).
pub(crate) fn node_classes(file: &YamlFile, report: &mut Report) {
    for doc in &file.docs {
        let mut lines = LineSource::Yaml(YamlLines::new(&doc.text, doc.first_line));
        node_class_object(&doc.value, &file.path, &mut lines, "", report);
    }
}

fn json_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => n.as_i64().map_or(Val::Unknown(n.to_string()), Val::Num),
        Value::String(s) if s.contains("${") => Val::Unknown(s.clone()),
        Value::String(s) => Val::Str(s.clone()),
        other => Val::Unknown(other.to_string()),
    }
}

/// The node IMDS settings of one object (recursing into `List`s).
/// `declared_by` starts each finding's subject: the Terraform resource the
/// object came from, followed by a space (`kubectl_manifest.x `), or `""` for
/// a YAML file.
pub(crate) fn node_class_object(
    obj: &Value,
    path: &str,
    lines: &mut LineSource<'_>,
    declared_by: &str,
    report: &mut Report,
) {
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return;
    };
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let kind_line = lines.key("kind");
    match kind {
        k if k.ends_with("List") => {
            for item in list_items(obj) {
                node_class_object(item, path, lines, declared_by, report);
            }
        }
        "EC2NodeClass" if api.starts_with("karpenter.k8s.aws/") => {
            let subject = format!("{declared_by}EC2NodeClass {name}");
            let mo = obj.get("spec").and_then(|s| s.get("metadataOptions"));
            let Some(mo) = mo else {
                if api == "karpenter.k8s.aws/v1beta1" {
                    report.push(Finding::new(
                        &rules::NODECLASS_NOT_CHECKED,
                        format!("{subject} ({api}) has no spec.metadataOptions: Karpenter before v1.0 defaults its hop limit to 2, v1.0 and later to 1"),
                        Location::file(path, kind_line),
                    ));
                }
                // karpenter.k8s.aws/v1 defaults to httpTokens: required, hop limit 1.
                return;
            };
            let mo_line = lines.key("metadataOptions");
            let get = |lines: &mut LineSource<'_>, k: &str| {
                mo.get(k)
                    .map(|v| Tv::new(json_val(v), Location::file(path, lines.key(k))))
            };
            let tokens = get(lines, "httpTokens");
            let hop = get(lines, "httpPutResponseHopLimit");
            let endpoint = get(lines, "httpEndpoint");
            let v1 = api == "karpenter.k8s.aws/v1";
            let missing = |k: &str, default: Val| {
                let at = Location::file(path, mo_line);
                if v1 {
                    // Field defaults of the v1 CRD (pkg/apis/v1/ec2nodeclass.go).
                    let mut tv = Tv::new(default, at);
                    tv.via.push(format!("Karpenter v1 CRD default for {k}"));
                    Setting::Set(tv)
                } else {
                    Setting::Undetermined {
                        evidence: format!("metadataOptions does not set {k}; the {api} default depends on the Karpenter version"),
                        at,
                    }
                }
            };
            NodeImds {
                subject,
                tokens: tokens.map_or_else(
                    || missing("httpTokens", Val::Str("required".to_owned())),
                    Setting::Set,
                ),
                hop: hop.map_or_else(
                    || missing("httpPutResponseHopLimit", Val::Num(1)),
                    Setting::Set,
                ),
                endpoint,
                ipv6: None,
                cap: Severity::Critical,
                note: String::new(),
                rules: K8S_RULES,
            }
            .judge(report);
        }
        "ClusterConfig" if api.starts_with("eksctl.io/") => {
            for list in ["nodeGroups", "managedNodeGroups"] {
                for ng in obj
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ng_name = ng
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("<unnamed>");
                    let line = lines.name(ng_name);
                    let at = Location::file(path, line);
                    let subject =
                        format!("{declared_by}eksctl ClusterConfig {name} {list} {ng_name}");
                    if ng.get("launchTemplate").is_some() {
                        report.push(Finding::new(
                            &rules::NODECLASS_NOT_CHECKED,
                            format!("{subject} uses its own launchTemplate; lint its metadata options where it is defined"),
                            at,
                        ));
                        continue;
                    }
                    let flag = |k: &str| ng.get(k).map(json_val);
                    let pod_imds_off = flag("disablePodIMDS");
                    let v1_off = flag("disableIMDSv1");
                    match &pod_imds_off {
                        Some(Val::Bool(true)) => {}
                        Some(Val::Bool(false)) | None => {
                            let how = if pod_imds_off.is_some() { "disablePodIMDS: false" } else { "no disablePodIMDS" };
                            report.push(Finding::new(
                                &rules::NODECLASS_HOP_LIMIT_TOO_HIGH,
                                format!("{subject}: {how}, so eksctl sets http_put_response_hop_limit = 2 (pkg/cfn/builder/nodegroup.go makeMetadataOptions)"),
                                at.clone(),
                            )
                            .with_title("node IMDS hop limit 2: ordinary pods can obtain an IMDSv2 token and take the node role"));
                        }
                        Some(other) => report.push(Finding::new(
                            &rules::NODECLASS_NOT_CHECKED,
                            format!("{subject}: disablePodIMDS = {other:?} cannot be evaluated statically"),
                            at.clone(),
                        )),
                    }
                    if v1_off == Some(Val::Bool(false)) && pod_imds_off != Some(Val::Bool(true)) {
                        report.push(Finding::new(
                            &rules::NODECLASS_IMDSV1_ALLOWED,
                            format!("{subject}: disableIMDSv1: false, so eksctl sets http_tokens = \"optional\""),
                            at,
                        ));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The workload annotation that suppresses rules: `"EPI-K8S-001 <reason>"`.
pub(crate) const IGNORE_ANNOTATION: &str = "pod-identity-doctor/ignore";

/// Path from an object's root to its pod spec, by kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "DaemonSet"
        | "StatefulSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        // Argo Rollouts: a Deployment-shaped pod template.
        | "Rollout" => &["spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// Appends the workloads found in one Kubernetes object (recursing into `List`s).
pub(crate) fn workloads_of_object(
    obj: &Value,
    path: &str,
    lines: &mut LineSource<'_>,
    out: &mut Vec<Workload>,
) {
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return;
    };
    // Consume this object's `kind:` line so List items line up with theirs.
    lines.key("kind");
    if kind.ends_with("List") {
        for item in list_items(obj) {
            workloads_of_object(item, path, lines, out);
        }
        return;
    }
    let Some(spec_path) = pod_spec_path(kind) else {
        return;
    };
    let Some(spec) = spec_path.iter().try_fold(obj, |v, k| v.get(*k)) else {
        return;
    };
    let metadata = obj.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let service_account = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "default")
        .map_or(ServiceAccount::Default, |s| {
            ServiceAccount::Named(s.to_owned())
        });
    let host_network = match spec.get("hostNetwork") {
        Some(Value::Bool(true)) => Some(lines.key("hostNetwork")),
        Some(Value::String(s)) if s == "true" => Some(lines.key("hostNetwork")),
        _ => None,
    };
    // Follow the lists in document order: line lookups take successive
    // occurrences, so `initContainers` written below `containers` must be read
    // after it (the sort is stable, so unknown lines keep this order).
    let mut lists: Vec<(u32, &str)> = ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter(|list| spec.get(*list).is_some())
        .map(|list| (lines.key(list), list))
        .collect();
    lists.sort_by_key(|(line, _)| *line);
    let mut containers = Vec::new();
    for (_, list) in lists {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("<unnamed>");
            let env = c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let name = e.get("name")?.as_str()?.to_owned();
                    let source = if e.get("valueFrom").is_some() {
                        EnvSource::Reference
                    } else if e
                        .get("value")
                        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
                    {
                        EnvSource::Literal
                    } else {
                        EnvSource::Empty
                    };
                    let line = lines.name(&name);
                    Some(EnvVar { name, source, line })
                })
                .collect();
            let env_from = c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| env_from_entry(e, lines))
                .collect();
            containers.push(Container {
                name: cname.to_owned(),
                env,
                env_from,
            });
        }
    }
    let mut identity = vec![name.to_owned()];
    for list in ["initContainers", "containers"] {
        identity.extend(
            spec.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("image").and_then(Value::as_str))
                .map(str::to_owned),
        );
    }
    // `pod-identity-doctor/ignore: "EPI-K8S-001 <reason>"` on the object or its pod template.
    let template_meta = spec_path
        .len()
        .checked_sub(1)
        .and_then(|n| spec_path[..n].iter().try_fold(obj, |v, k| v.get(*k)))
        .and_then(|t| t.get("metadata"));
    let ignored = [metadata, template_meta]
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("annotations")?.get(IGNORE_ANNOTATION)?.as_str())
        .flat_map(super::suppress::rules_with_reason)
        .collect();
    out.push(Workload {
        describe: format!("{kind} {namespace}/{name}"),
        path: path.to_owned(),
        namespace: Some(namespace),
        service_account,
        host_network,
        containers,
        identity,
        ignored,
    });
}

/// One `envFrom` entry (`secretRef` or `configMapRef`), at the line of its reference key.
fn env_from_entry(entry: &Value, lines: &mut LineSource<'_>) -> Option<EnvFrom> {
    let (key, kind) = [
        ("secretRef", EnvFromKind::Secret),
        ("configMapRef", EnvFromKind::ConfigMap),
    ]
    .into_iter()
    .find(|(key, _)| entry.get(*key).is_some())?;
    // Consume the line even when the name is missing, so later entries keep theirs.
    let line = lines.key(key);
    let name = entry.get(key)?.get("name")?.as_str()?.to_owned();
    let var_prefix = entry
        .get("prefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Some(EnvFrom {
        kind,
        name,
        var_prefix,
        line,
    })
}

/// The Secrets and ConfigMaps of every document of a YAML file (recursing into
/// `List`s), with their key names.
pub(crate) fn env_objects(file: &YamlFile) -> Vec<EnvObject> {
    let mut out = Vec::new();
    for doc in &file.docs {
        env_objects_of(&doc.value, &mut out);
    }
    out
}

/// The `items` of a `kind: ...List` object (none when absent or not a list).
fn list_items(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn env_objects_of(obj: &Value, out: &mut Vec<EnvObject>) {
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return;
    };
    let (kind, maps): (EnvFromKind, &[&str]) = match kind {
        k if k.ends_with("List") => {
            for item in list_items(obj) {
                env_objects_of(item, out);
            }
            return;
        }
        "Secret" => (EnvFromKind::Secret, &["data", "stringData"]),
        "ConfigMap" => (EnvFromKind::ConfigMap, &["data", "binaryData"]),
        _ => return,
    };
    let metadata = obj.get("metadata");
    let Some(name) = metadata.and_then(|m| m.get("name")).and_then(Value::as_str) else {
        return;
    };
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let keys = maps
        .iter()
        .filter_map(|m| obj.get(*m).and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    out.push(EnvObject {
        kind,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
        keys,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_with_their_lines() {
        let src = "# c\n---\na: 1\n---\n---\nb: 2\n...\n";
        let docs = split_documents(src);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].1, 2);
        assert_eq!(docs[1].1, 5);
        let file = parse("x.yaml", src).unwrap();
        assert_eq!(file.docs.len(), 2);
        assert_eq!(file.docs[1].value["b"], 2);
    }

    #[test]
    fn parse_errors_name_the_file_line() {
        let err = parse("bad.yaml", "a: 1\n---\nb: [1,\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.yaml:4: invalid YAML:"), "{msg}");
        assert!(
            msg.contains("at line 4 column 1"),
            "lines are file lines: {msg}"
        );
        assert_eq!(
            shift_lines("at line 2 column 3, line 10", 5),
            "at line 7 column 3, line 15"
        );
    }

    #[test]
    fn workloads_come_from_every_kind() {
        let src = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\n  namespace: n\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          hostNetwork: true\n          serviceAccountName: sa\n          containers:\n          - name: x\n            env:\n            - name: AWS_SECRET_ACCESS_KEY\n              valueFrom:\n                secretKeyRef: {name: s, key: k}\n";
        let file = parse("c.yaml", src).unwrap();
        let w = workloads(&file);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].describe, "CronJob n/c");
        assert_eq!(w[0].host_network, Some(11));
        assert_eq!(w[0].service_account, ServiceAccount::Named("sa".into()));
        assert_eq!(w[0].containers[0].env[0].source, EnvSource::Reference);
        assert_eq!(w[0].containers[0].env[0].line, 16);
    }
}
