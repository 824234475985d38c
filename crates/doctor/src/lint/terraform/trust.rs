//! `EPI-TF-010`..`EPI-TF-013` and `EPI-TF-022`: the trust policies of IAM
//! roles, and whether the role of an association trusts Pod Identity.

use std::ops::Range;

use hcl::edit::expr::Expression;
use hcl::edit::structure::Attribute;
use hcl::edit::Span;

use crate::lint::hcl_value::{attr, source_text, string_text, to_json, traversal_path};
use crate::lint::modules;
use crate::lint::trust_policy::{self, TrustStatement, PODS_PRINCIPAL};
use crate::report::{Finding, Location, Report};
use crate::rules;

use super::file::{Item, TfFile};
use super::index::Index;

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
pub(super) fn iam_role<'a>(index: &Index<'a>, role: Item<'a>, report: &mut Report) {
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
pub(super) fn role_trusts_pods<'a>(
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
