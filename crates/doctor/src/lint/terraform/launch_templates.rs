//! `EPI-TF-001`..`EPI-TF-006`: the IMDS settings of launch templates, with a
//! severity cap that depends on whether the template feeds EKS nodes.

use crate::lint::eval::Scope;
use crate::lint::hcl_value::{attr, block, source_text};
use crate::lint::module_defaults::ModuleKind;
use crate::lint::modules;
use crate::lint::node_imds::{NodeImds, Setting, TF_RULES};
use crate::report::{Finding, Report, Severity};
use crate::rules;

use super::file::{Item, TfFile};
use super::index::Index;

/// Text in user data that joins a node to an EKS cluster (AL2 `bootstrap.sh`,
/// AL2023 `nodeadm`, Bottlerocket settings, or a template that takes the cluster).
const JOINS_CLUSTER: &[&str] = &[
    "bootstrap.sh",
    "nodeadm",
    "NodeConfig",
    "settings.kubernetes",
    "cluster_name",
    "cluster_endpoint",
    "eks",
];

/// Whether a launch template feeds EKS nodes: the severity cap for its
/// findings, and the note that explains a lowered one.
///
/// It counts as an EKS node when an `aws_eks_node_group`, a recognised
/// node-group module, or an Auto Scaling group tagged for a cluster refers to
/// it, or its user data joins a cluster. A reference from another module may
/// be a node group the lint does not know: medium at most. Anything else (ECS,
/// plain EC2) is info.
pub(super) fn launch_template_scope(
    index: &Index<'_>,
    files: &[TfFile],
    lt: Item<'_>,
) -> (Severity, String) {
    let needle = format!("aws_launch_template.{}", lt.name);
    let refers = |text: &str| {
        text.match_indices(&needle).any(|(i, _)| {
            !text[i + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
    };
    if let Some(ud) = attr(lt.body(), "user_data") {
        let text = source_text(&ud.value, lt.src());
        if JOINS_CLUSTER
            .iter()
            .any(|m| text.to_ascii_lowercase().contains(&m.to_ascii_lowercase()))
        {
            return (Severity::Critical, String::new());
        }
    }
    let mut other_module = None;
    for item in &index.items {
        if item.data || item.rtype == "aws_launch_template" {
            continue;
        }
        let text = source_text(item.block, item.src());
        if !refers(text) {
            continue;
        }
        let eks = match item.rtype {
            "aws_eks_node_group" => true,
            "aws_autoscaling_group" => {
                text.contains("kubernetes.io/cluster") || text.contains("eks")
            }
            _ => false,
        };
        if eks {
            return (Severity::Critical, String::new());
        }
    }
    for file in files {
        for b in file.body.blocks().filter(|b| b.has_ident("module")) {
            let text = source_text(b, &file.src);
            if !refers(text) {
                continue;
            }
            let name = b.labels.first().map_or("", |l| l.as_str()).to_owned();
            match modules::source_of(b)
                .as_deref()
                .and_then(ModuleKind::from_source)
            {
                Some(_) => return (Severity::Critical, String::new()),
                None => other_module = Some(name),
            }
        }
    }
    match other_module {
        Some(m) => (
            Severity::Medium,
            format!(" (used by module.{m}, which the lint does not know; if it is an EKS node group this is a node-role leak)"),
        ),
        None => (
            Severity::Info,
            " (no EKS node group, node-group module or cluster-joining user data in the linted files uses this launch template)".to_owned(),
        ),
    }
}

/// `EPI-TF-001`..`EPI-TF-006`: IMDS settings of a launch template.
pub(super) fn launch_template(
    lt: Item<'_>,
    scope: &Scope<'_>,
    cap: Severity,
    note: &str,
    report: &mut Report,
) {
    let addr = lt.address();
    let body = lt.body();
    let capped = |f: Finding| {
        let severity = f.severity.min(cap);
        let mut f = f.with_severity(severity);
        f.evidence.push_str(note);
        f
    };
    let Some(mo) = block(body, "metadata_options") else {
        if let Some(dynamic) = body.get_blocks("dynamic").find(|d| {
            d.labels
                .first()
                .is_some_and(|l| l.as_str() == "metadata_options")
        }) {
            report.push(capped(Finding::new(
                &rules::LT_HOP_LIMIT_UNSET,
                format!("{addr}: metadata_options is a dynamic block; its values cannot be checked statically"),
                lt.at(dynamic),
            )));
        } else {
            report.push(capped(Finding::new(
                &rules::LT_METADATA_OPTIONS_MISSING,
                format!("{addr} has no metadata_options block (http_tokens defaults to \"optional\" unless the AMI requires IMDSv2; EKS AMIs commonly use hop limit 2)"),
                lt.here(),
            )));
        }
        return;
    };
    let mo_body = &mo.body;
    let get = |k: &str| attr(mo_body, k).map(|a| scope.eval(&a.value, lt.file));
    let setting = |k: &str, evidence: String| match get(k) {
        Some(v) => Setting::Set(v),
        None => Setting::Missing {
            evidence,
            at: lt.at(mo),
        },
    };
    NodeImds {
        subject: addr.clone(),
        tokens: setting(
            "http_tokens",
            "metadata_options does not set http_tokens (the default is \"optional\")".to_owned(),
        ),
        hop: setting(
            "http_put_response_hop_limit",
            "metadata_options does not set http_put_response_hop_limit".to_owned(),
        ),
        endpoint: get("http_endpoint"),
        ipv6: get("http_protocol_ipv6"),
        cap,
        note: note.to_owned(),
        rules: TF_RULES,
    }
    .judge(report);
}
