//! `EPI-TF-020`..`EPI-TF-022`: pod identity associations and the agent add-on.

use crate::lint::eval::{Scope, Tv, Val};
use crate::lint::hcl_value::{attr, attr_str, block};
use crate::lint::workload::AssociatedAccount;
use crate::report::{Finding, Report, Severity};
use crate::rules;

use super::file::TfFile;
use super::index::Index;
use super::trust::role_trusts_pods;

/// Whether the Pod Identity agent is installed, as far as the linted files tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Agent {
    Present,
    /// Could be installed through something the lint cannot evaluate: what.
    Unknown(String),
    Missing,
}

const AGENT: &str = "eks-pod-identity-agent";

/// Whether a value names the agent add-on (as a map key or a string anywhere in it).
fn mentions_agent(v: &Tv) -> bool {
    match &v.val {
        Val::Str(s) => s == AGENT,
        Val::List(items) => items.iter().any(mentions_agent),
        Val::Map(entries) => entries.iter().any(|(k, v)| k == AGENT || mentions_agent(v)),
        _ => false,
    }
}

/// The agent add-on: `aws_eks_addon` (literal name, or `for_each` over a
/// collection that names it), a module's `addons`/`cluster_addons`/`eks_addons`
/// map, or EKS Auto Mode (`compute_config { enabled = true }`), which has the
/// agent built in.
fn agent_installed(index: &Index<'_>, scope: &Scope<'_>, files: &[TfFile]) -> Agent {
    let mut unknown = None;
    for addon in index.resources("aws_eks_addon") {
        let Some(name) = attr(addon.body(), "addon_name") else {
            continue;
        };
        let value = scope.eval(&name.value, addon.file);
        if value.as_str() == Some(AGENT) {
            return Agent::Present;
        }
        if value.is_unknown() {
            match attr(addon.body(), "for_each").map(|f| scope.eval(&f.value, addon.file)) {
                Some(each) if mentions_agent(&each) => return Agent::Present,
                Some(each) if each.is_unknown() => {
                    unknown = Some(format!("{} (for_each = {})", addon.address(), each.show()))
                }
                Some(_) => {}
                None => {
                    unknown = Some(format!(
                        "{} (addon_name = {})",
                        addon.address(),
                        value.show()
                    ))
                }
            }
        }
    }
    for cluster in index.resources("aws_eks_cluster") {
        if let Some(cc) = block(cluster.body(), "compute_config") {
            if attr(&cc.body, "enabled").map(|a| scope.eval(&a.value, cluster.file).as_bool())
                == Some(Some(true))
            {
                return Agent::Present;
            }
        }
    }
    for file in files {
        for b in file.body.blocks().filter(|b| b.has_ident("module")) {
            for key in ["addons", "cluster_addons", "eks_addons"] {
                if let Some(a) = attr(&b.body, key) {
                    let v = scope.eval(&a.value, file);
                    if mentions_agent(&v) {
                        return Agent::Present;
                    }
                    if v.is_unknown() {
                        unknown = Some(format!(
                            "module.{} {key} = {}",
                            b.labels.first().map_or("", |l| l.as_str()),
                            v.show()
                        ));
                    }
                }
            }
            for key in ["compute_config", "cluster_compute_config"] {
                if let Some(a) = attr(&b.body, key) {
                    let v = scope.eval(&a.value, file);
                    if v.get("enabled").and_then(Tv::as_bool) == Some(true) {
                        return Agent::Present;
                    }
                }
            }
        }
    }
    unknown.map_or(Agent::Missing, Agent::Unknown)
}

/// `EPI-TF-020`..`EPI-TF-022`: pod identity associations and the agent add-on.
pub(super) fn associations(
    index: &Index<'_>,
    scope: &Scope<'_>,
    files: &[TfFile],
    report: &mut Report,
) -> Vec<AssociatedAccount> {
    let agent = agent_installed(index, scope, files);
    let mut accounts = Vec::new();
    for assoc in index.resources("aws_eks_pod_identity_association") {
        let addr = assoc.address();
        let body = assoc.body();
        let missing: Vec<&str> = ["cluster_name", "namespace", "service_account", "role_arn"]
            .into_iter()
            .filter(|k| attr(body, k).is_none())
            .collect();
        if !missing.is_empty() {
            report.push(Finding::new(
                &rules::ASSOCIATION_INCOMPLETE,
                format!("{addr} does not set {}", missing.join(", ")),
                assoc.here(),
            ));
        }
        match &agent {
            Agent::Present => {}
            Agent::Missing => report.push(Finding::new(
                &rules::ASSOCIATION_WITHOUT_AGENT,
                format!("{addr} exists but no aws_eks_addon with addon_name = \"eks-pod-identity-agent\", module addons map naming it, or EKS Auto Mode cluster is in the linted files"),
                assoc.here(),
            )),
            Agent::Unknown(what) => report.push(
                Finding::new(
                    &rules::ASSOCIATION_WITHOUT_AGENT,
                    format!("{addr}: cannot check whether the agent add-on is installed: {what} cannot be evaluated statically"),
                    assoc.here(),
                )
                .with_severity(Severity::Info),
            ),
        }
        if let (Some(ns), Some(sa)) = (
            attr_str(body, "namespace"),
            attr_str(body, "service_account"),
        ) {
            accounts.push(AssociatedAccount {
                namespace: ns,
                service_account: sa,
            });
        }
        if let Some(role_arn) = attr(body, "role_arn") {
            role_trusts_pods(index, files, &addr, assoc, role_arn, report);
        }
    }
    // Associations declared inside the add-on resource.
    for addon in index.resources("aws_eks_addon") {
        for pia in addon.body().get_blocks("pod_identity_association") {
            if let Some(role_arn) = attr(&pia.body, "role_arn") {
                let subject = format!("{} pod_identity_association", addon.address());
                role_trusts_pods(index, files, &subject, addon, role_arn, report);
            }
            // The AWS add-ons that take associations (VPC CNI, EBS/EFS CSI, ...)
            // run their service accounts in kube-system.
            if let Some(sa) = attr_str(&pia.body, "service_account") {
                accounts.push(AssociatedAccount {
                    namespace: "kube-system".to_owned(),
                    service_account: sa,
                });
            }
        }
    }
    accounts
}
