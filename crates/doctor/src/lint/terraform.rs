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

use super::hcl_value::{
    attr, attr_str, block, literal_i64, literal_str, source_text, string_text, to_json,
    traversal_path,
};
use super::lines::LineIndex;
use super::trust_policy::{self, TrustStatement, PODS_PRINCIPAL};
use super::workload::{self, AssociatedAccount};
use super::{tf_workloads, LintError};
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

/// Lints every Terraform file together; returns the service accounts that
/// have a pod identity association (for the workload rules of YAML files).
pub(crate) fn lint(files: &[TfFile], report: &mut Report) -> Vec<AssociatedAccount> {
    let index = Index::new(files);
    for lt in index.resources("aws_launch_template") {
        launch_template(lt, report);
    }
    for role in index.resources("aws_iam_role") {
        iam_role(&index, role, report);
    }
    let accounts = associations(&index, report);
    for item in &index.items {
        if item.data {
            continue;
        }
        for w in tf_workloads::workloads(item) {
            workload::check(&w, &accounts, report);
        }
    }
    accounts
}

/// `EPI-TF-001`..`EPI-TF-006`: IMDS settings of a launch template.
fn launch_template(lt: Item<'_>, report: &mut Report) {
    let addr = lt.address();
    let body = lt.body();
    let Some(mo) = block(body, "metadata_options") else {
        if let Some(dynamic) = body.get_blocks("dynamic").find(|d| {
            d.labels
                .first()
                .is_some_and(|l| l.as_str() == "metadata_options")
        }) {
            report.push(Finding::new(
                &rules::LT_HOP_LIMIT_UNSET,
                format!("{addr}: metadata_options is a dynamic block; its values cannot be checked statically"),
                lt.at(dynamic),
            ));
        } else {
            report.push(Finding::new(
                &rules::LT_METADATA_OPTIONS_MISSING,
                format!("{addr} has no metadata_options block (http_tokens defaults to \"optional\" unless the AMI requires IMDSv2; EKS AMIs commonly use hop limit 2)"),
                lt.here(),
            ));
        }
        return;
    };
    let mo_body = &mo.body;
    let src = lt.src();

    match attr(mo_body, "http_tokens") {
        None => report.push(Finding::new(
            &rules::LT_IMDSV1_ALLOWED,
            format!(
                "{addr}: metadata_options does not set http_tokens (the default is \"optional\")"
            ),
            lt.at(mo),
        )),
        Some(a) => match literal_str(&a.value) {
            Some(v) if v == "required" => {}
            Some(v) => report.push(Finding::new(
                &rules::LT_IMDSV1_ALLOWED,
                format!("{addr}: http_tokens = \"{v}\""),
                lt.at(a),
            )),
            None => report.push(
                Finding::new(
                    &rules::LT_IMDSV1_ALLOWED,
                    format!(
                        "{addr}: http_tokens = {} cannot be evaluated statically",
                        source_text(&a.value, src)
                    ),
                    lt.at(a),
                )
                .with_severity(Severity::Medium),
            ),
        },
    }

    match attr(mo_body, "http_put_response_hop_limit") {
        None => report.push(Finding::new(
            &rules::LT_HOP_LIMIT_UNSET,
            format!("{addr}: metadata_options does not set http_put_response_hop_limit"),
            lt.at(mo),
        )),
        Some(a) => match literal_i64(&a.value) {
            Some(1) => {}
            Some(n) if n >= 2 => report.push(
                Finding::new(
                    &rules::LT_HOP_LIMIT_TOO_HIGH,
                    format!("{addr}: http_put_response_hop_limit = {n}"),
                    lt.at(a),
                )
                .with_title(format!(
                    "IMDS hop limit {n}: ordinary pods can obtain an IMDSv2 token and take the node role"
                )),
            ),
            Some(n) => report.push(Finding::new(
                &rules::LT_HOP_LIMIT_UNSET,
                format!("{addr}: http_put_response_hop_limit = {n} is not a valid hop limit (1-64)"),
                lt.at(a),
            )),
            None => report.push(Finding::new(
                &rules::LT_HOP_LIMIT_UNSET,
                format!(
                    "{addr}: http_put_response_hop_limit = {} cannot be evaluated statically",
                    source_text(&a.value, src)
                ),
                lt.at(a),
            )),
        },
    }

    if let Some(a) = attr(mo_body, "http_endpoint") {
        if literal_str(&a.value).as_deref() == Some("disabled") {
            report.push(Finding::new(
                &rules::LT_IMDS_DISABLED,
                format!("{addr}: http_endpoint = \"disabled\""),
                lt.at(a),
            ));
        }
    }
    if let Some(a) = attr(mo_body, "http_protocol_ipv6") {
        if literal_str(&a.value).as_deref() == Some("enabled") {
            report.push(Finding::new(
                &rules::LT_IMDS_IPV6_ENABLED,
                format!("{addr}: http_protocol_ipv6 = \"enabled\""),
                lt.at(a),
            ));
        }
    }
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
                        Some(doc) => Policy::Resolved {
                            statements: trust_policy::statements_from_document(
                                doc.block,
                                doc.src(),
                            ),
                            file: doc.file,
                            span: doc.block.span().unwrap_or(0..0),
                            via: Some(doc.address()),
                        },
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

/// `EPI-TF-020`..`EPI-TF-022`: pod identity associations and the agent add-on.
fn associations(index: &Index<'_>, report: &mut Report) -> Vec<AssociatedAccount> {
    let has_agent = index
        .resources("aws_eks_addon")
        .any(|a| attr_str(a.body(), "addon_name").is_some_and(|n| n == "eks-pod-identity-agent"));
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
        if !has_agent {
            report.push(Finding::new(
                &rules::ASSOCIATION_WITHOUT_AGENT,
                format!("{addr} exists but no aws_eks_addon with addon_name = \"eks-pod-identity-agent\" is in the linted files"),
                assoc.here(),
            ));
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
        let Some(role_arn) = attr(body, "role_arn") else {
            continue;
        };
        let path = traversal_path(&role_arn.value).unwrap_or_default();
        let [t, name, ..] = path.as_slice() else {
            continue;
        };
        let Some(role) = (t == "aws_iam_role")
            .then(|| index.find(false, t, name))
            .flatten()
        else {
            continue;
        };
        let Some(policy_attr) = attr(role.body(), "assume_role_policy") else {
            continue;
        };
        if let Policy::Resolved { statements, .. } = resolve_policy(index, role, policy_attr) {
            if trust_policy::analyze(&statements).is_none() {
                report.push(Finding::new(
                    &rules::ASSOCIATION_ROLE_NOT_TRUSTED,
                    format!(
                        "{addr} uses {}, whose trust policy allows no {PODS_PRINCIPAL} statement",
                        role.address()
                    ),
                    assoc.at(role_arn),
                ));
            }
        }
    }
    accounts
}
