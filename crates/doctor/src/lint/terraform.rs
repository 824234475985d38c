//! Terraform (`.tf`) files: parsing, a cross-file index of resources and data
//! sources, and the `EPI-TF-*` rules.
//!
//! Files are parsed with `hcl-rs`'s span-keeping parser (`hcl::edit::parser`),
//! so every block, attribute and expression knows its byte range; a finding's
//! line is the line of the exact attribute (or block) it is about. All files
//! given to one lint run form one configuration: a role in `iam.tf` may use a
//! policy document from `policies.tf`, and the agent add-on may live in another
//! file than the association.

use std::ops::Range;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body};
use hcl::edit::Span;

use super::eval::{Scope, Tv, Val};
use super::hcl_value::{attr, attr_str, block, source_text, string_text, to_json, traversal_path};
use super::lines::LineIndex;
use super::module_defaults::ModuleKind;
use super::node_imds::{NodeImds, Setting, TF_RULES};
use super::trust_policy::{self, TrustStatement, PODS_PRINCIPAL};
use super::workload::{self, AssociatedAccount};
use super::{modules, node_groups, tf_workloads, LintError};
use crate::report::{Finding, Location, Report, Severity};
use crate::rules;

/// A parsed `.tf` file.
#[derive(Debug)]
pub(crate) struct TfFile {
    pub(crate) path: String,
    pub(crate) src: String,
    pub(crate) body: Body,
    pub(crate) lines: LineIndex,
}

/// Parses `src` with `hcl-rs`.
pub(crate) fn parse(path: &str, src: String) -> Result<TfFile, LintError> {
    let body = hcl::edit::parser::parse_body(&src).map_err(|e| LintError::Hcl {
        path: path.to_owned(),
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_owned(),
    })?;
    Ok(TfFile {
        path: path.to_owned(),
        lines: LineIndex::new(&src),
        src,
        body,
    })
}

/// A `resource` or `data` block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    pub(crate) file: &'a TfFile,
    pub(crate) data: bool,
    pub(crate) rtype: &'a str,
    pub(crate) name: &'a str,
    pub(crate) block: &'a Block,
}

impl<'a> Item<'a> {
    /// `aws_iam_role.x` or `data.aws_iam_policy_document.x`.
    pub(crate) fn address(&self) -> String {
        if self.data {
            format!("data.{}.{}", self.rtype, self.name)
        } else {
            format!("{}.{}", self.rtype, self.name)
        }
    }

    /// The 1-based line where `node` (a span inside this item's file) starts.
    pub(crate) fn line(&self, node: &impl Span) -> u32 {
        self.file.lines.line(node.span().map_or(0, |r| r.start))
    }

    /// The location of `node` (a span inside this item's file).
    pub(crate) fn at(&self, node: &impl Span) -> Location {
        Location::file(&self.file.path, self.line(node))
    }

    /// The location of the block itself.
    pub(crate) fn here(&self) -> Location {
        self.at(self.block)
    }

    pub(crate) fn body(&self) -> &'a Body {
        &self.block.body
    }

    pub(crate) fn src(&self) -> &'a str {
        &self.file.src
    }
}

/// Every resource and data block of a set of files.
struct Index<'a> {
    items: Vec<Item<'a>>,
}

impl<'a> Index<'a> {
    fn new(files: &'a [TfFile]) -> Self {
        let mut items = Vec::new();
        for file in files {
            for b in file.body.blocks() {
                let data = match b.ident.value().as_str() {
                    "resource" => false,
                    "data" => true,
                    _ => continue,
                };
                if let [rtype, name, ..] = b.labels.as_slice() {
                    items.push(Item {
                        file,
                        data,
                        rtype: rtype.as_str(),
                        name: name.as_str(),
                        block: b,
                    });
                }
            }
        }
        Index { items }
    }

    fn resources(&self, rtype: &'a str) -> impl Iterator<Item = Item<'a>> + '_ {
        self.items
            .iter()
            .filter(move |i| !i.data && i.rtype == rtype)
            .copied()
    }

    fn find(&self, data: bool, rtype: &str, name: &str) -> Option<Item<'a>> {
        self.items
            .iter()
            .find(|i| i.data == data && i.rtype == rtype && i.name == name)
            .copied()
    }
}

/// Lints every Terraform file together (with the `.tfvars` files that give
/// their variables values); returns the service accounts that have a pod
/// identity association (for the workload rules of YAML files).
pub(crate) fn lint(
    files: &[TfFile],
    tfvars: &[TfFile],
    report: &mut Report,
) -> Vec<AssociatedAccount> {
    let index = Index::new(files);
    let scope = Scope::new(files, tfvars);
    let calls = modules::calls(files);
    for lt in index.resources("aws_launch_template") {
        let (cap, note) = launch_template_scope(&index, files, lt);
        launch_template(lt, &scope, cap, &note, report);
    }
    let lt_names: Vec<&str> = index
        .resources("aws_launch_template")
        .map(|lt| lt.name)
        .collect();
    for ng in index.resources("aws_eks_node_group") {
        node_groups::node_group(ng, &scope, &lt_names, report);
    }
    for d in index.resources("aws_ec2_instance_metadata_defaults") {
        node_groups::account_defaults(d, &scope, report);
    }
    modules::lint(&calls, &scope, report);
    for role in index.resources("aws_iam_role") {
        iam_role(&index, role, report);
    }
    let accounts = associations(&index, &scope, files, report);
    for item in &index.items {
        if item.data {
            continue;
        }
        for w in tf_workloads::workloads(item) {
            workload::check(&w, &accounts, report);
        }
        tf_workloads::node_classes(item, report);
    }
    accounts
}

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
fn launch_template_scope(index: &Index<'_>, files: &[TfFile], lt: Item<'_>) -> (Severity, String) {
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
fn launch_template(
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

/// A trust policy after resolution.
enum Policy<'a> {
    /// Statements, and the text they came from (for locating findings).
    Resolved {
        statements: Vec<TrustStatement>,
        file: &'a TfFile,
        span: Range<usize>,
        /// `Some("data.aws_iam_policy_document.x")` when it came from a data source.
        via: Option<String>,
    },
    /// Could not be evaluated; the reason.
    Unresolved(String),
}

/// Resolves `assume_role_policy` of `role` in its three supported shapes.
fn resolve_policy<'a>(index: &Index<'a>, role: Item<'a>, a: &'a Attribute) -> Policy<'a> {
    let src = role.src();
    let span = a.value.span().unwrap_or(0..0);
    let resolved = |statements| Policy::Resolved {
        statements,
        file: role.file,
        span: span.clone(),
        via: None,
    };
    match &a.value {
        Expression::FuncCall(call) if call.name.name.value().as_str() == "jsonencode" => {
            match call.args.iter().next() {
                Some(arg) => match trust_policy::statements_from_json(&to_json(arg, src)) {
                    Ok(st) => resolved(st),
                    Err(e) => Policy::Unresolved(e),
                },
                None => Policy::Unresolved("jsonencode() without an argument".to_owned()),
            }
        }
        Expression::Traversal(_) => {
            let path = traversal_path(&a.value).unwrap_or_default();
            match path.as_slice() {
                [d, t, name, ..] if d == "data" && t == "aws_iam_policy_document" => {
                    match index.find(true, t, name) {
                        Some(doc) => {
                            match trust_policy::statements_from_document(doc.block, doc.src()) {
                                Ok(statements) => Policy::Resolved {
                                    statements,
                                    file: doc.file,
                                    span: doc.block.span().unwrap_or(0..0),
                                    via: Some(doc.address()),
                                },
                                Err(e) => Policy::Unresolved(format!("{}: {e}", doc.address())),
                            }
                        }
                        None => Policy::Unresolved(format!(
                            "data.aws_iam_policy_document.{name} is not in the linted files"
                        )),
                    }
                }
                _ => Policy::Unresolved(format!(
                    "`{}` is a reference lint cannot follow",
                    source_text(&a.value, src)
                )),
            }
        }
        other => match string_text(other, src) {
            Some(text) => match serde_json::from_str(&text) {
                Ok(json) => match trust_policy::statements_from_json(&json) {
                    Ok(st) => resolved(st),
                    Err(e) => Policy::Unresolved(e),
                },
                Err(e) => Policy::Unresolved(format!("the policy string is not JSON: {e}")),
            },
            None => Policy::Unresolved(format!(
                "`{}` cannot be evaluated statically",
                source_text(other, src)
            )),
        },
    }
}

/// `EPI-TF-010`..`EPI-TF-013`: the trust policy of an IAM role.
fn iam_role<'a>(index: &Index<'a>, role: Item<'a>, report: &mut Report) {
    let Some(a) = attr(role.body(), "assume_role_policy") else {
        return;
    };
    let addr = role.address();
    match resolve_policy(index, role, a) {
        Policy::Unresolved(reason) => report.push(Finding::new(
            &rules::TRUST_NOT_ANALYZED,
            format!("{addr}: assume_role_policy: {reason}"),
            role.at(a),
        )),
        Policy::Resolved {
            statements,
            file,
            span,
            via,
        } => {
            let Some(analysis) = trust_policy::analyze(&statements) else {
                return;
            };
            let location = locate(file, &span, PODS_PRINCIPAL);
            let subject = match &via {
                Some(doc) => format!("{addr} (policy {doc})"),
                None => addr.clone(),
            };
            let actions = if analysis.actions.is_empty() {
                "no actions".to_owned()
            } else {
                analysis.actions.join(", ")
            };
            if !analysis.assume_role {
                report.push(Finding::new(
                    &rules::TRUST_MISSING_ASSUME_ROLE,
                    format!("{subject}: {PODS_PRINCIPAL} is allowed {actions}; sts:AssumeRole is missing"),
                    location.clone(),
                ));
            }
            if !analysis.tag_session {
                report.push(Finding::new(
                    &rules::TRUST_MISSING_TAG_SESSION,
                    format!("{subject}: {PODS_PRINCIPAL} is allowed {actions}; sts:TagSession is missing"),
                    location.clone(),
                ));
            }
            if !analysis.source_condition {
                report.push(Finding::new(
                    &rules::TRUST_NO_SOURCE_CONDITION,
                    format!("{subject}: the {PODS_PRINCIPAL} statement has no aws:SourceAccount/aws:SourceArn condition"),
                    location,
                ));
            }
        }
    }
}

/// The line of the first `needle` inside `span` of `file`, else the span's first line.
fn locate(file: &TfFile, span: &Range<usize>, needle: &str) -> Location {
    let offset = file
        .src
        .get(span.clone())
        .and_then(|text| text.find(needle))
        .map_or(span.start, |i| span.start + i);
    Location::file(&file.path, file.lines.line(offset))
}

/// Sources of the terraform-aws-modules module that creates Pod Identity roles
/// with a correct trust policy (`pods.eks.amazonaws.com`, `sts:AssumeRole`,
/// `sts:TagSession`).
fn is_pod_identity_module(source: &str) -> bool {
    let s = source.to_ascii_lowercase();
    s == "terraform-aws-modules/eks-pod-identity/aws"
        || s.contains("terraform-aws-modules/terraform-aws-eks-pod-identity")
}

/// `EPI-TF-022`: the role an association uses must trust `pods.eks.amazonaws.com`.
fn role_trusts_pods<'a>(
    index: &Index<'a>,
    files: &[TfFile],
    subject: &str,
    at: Item<'a>,
    role_arn: &Attribute,
    report: &mut Report,
) {
    let path = traversal_path(&role_arn.value).unwrap_or_default();
    match path.as_slice() {
        [m, name, ..] if m == "module" => {
            let generated = files.iter().any(|f| {
                f.body.blocks().any(|b| {
                    b.has_ident("module")
                        && b.labels.first().is_some_and(|l| l.as_str() == name)
                        && modules::source_of(b).is_some_and(|s| is_pod_identity_module(&s))
                })
            });
            if generated {
                report.push(Finding::new(
                    &rules::TRUST_FROM_POD_IDENTITY_MODULE,
                    format!("{subject} uses module.{name} (terraform-aws-modules/eks-pod-identity), whose generated trust policy allows {PODS_PRINCIPAL} sts:AssumeRole and sts:TagSession"),
                    at.at(role_arn),
                ));
            }
        }
        [t, name, ..] if t == "aws_iam_role" => {
            let Some(role) = index.find(false, t, name) else {
                return;
            };
            let Some(policy_attr) = attr(role.body(), "assume_role_policy") else {
                return;
            };
            if let Policy::Resolved { statements, .. } = resolve_policy(index, role, policy_attr) {
                if trust_policy::analyze(&statements).is_none() {
                    report.push(Finding::new(
                        &rules::ASSOCIATION_ROLE_NOT_TRUSTED,
                        format!(
                            "{subject} uses {}, whose trust policy allows no {PODS_PRINCIPAL} statement",
                            role.address()
                        ),
                        at.at(role_arn),
                    ));
                }
            }
        }
        _ => {}
    }
}

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
fn associations(
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
