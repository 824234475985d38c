//! Node IMDS set outside launch templates: `aws_eks_node_group` without a
//! launch template (EKS then creates one whose settings depend on the AMI type)
//! and `aws_ec2_instance_metadata_defaults` (account-level defaults).

use super::eval::{Scope, Tv};
use super::hcl_value::{source_text, traversal_path};
use super::terraform::file::Item;
use crate::report::{Finding, Location, Report, Severity};
use crate::rules;

/// A managed node group that uses the launch template EKS creates.
///
/// EKS documents that without a custom launch template it creates one with an
/// IMDS hop limit of 2 (so pods on the pod network can get an IMDSv2 token);
/// AL2 AMIs also leave IMDSv1 on (`http_tokens = "optional"`), AL2023 AMIs
/// require IMDSv2. Other AMI types are reported as "cannot check".
pub(crate) fn eks_default_launch_template(
    subject: &str,
    ami_type: Option<&Tv>,
    at: &Location,
    report: &mut Report,
) {
    let ami = ami_type.and_then(Tv::as_str);
    let (family, known) = match ami {
        None if ami_type.is_some() => ("an AMI type that cannot be evaluated statically", false),
        None => (
            "the default AMI type (AL2 before Kubernetes 1.30, AL2023 from 1.30)",
            true,
        ),
        Some(a) if a.starts_with("AL2_") => ("an AL2 AMI", true),
        Some(a) if a.starts_with("AL2023_") => ("an AL2023 AMI", true),
        Some(_) => ("this AMI type", false),
    };
    let ami_text = ami.map_or(String::new(), |a| format!(" ami_type = \"{a}\""));
    let at = ami_type.map_or_else(|| at.clone(), |a| a.at.clone());
    if known {
        report.push(Finding::new(
            &rules::NODE_GROUP_DEFAULT_LAUNCH_TEMPLATE,
            format!(
                "{subject}:{ami_text} has no launch template; the one EKS creates for {family} sets http_put_response_hop_limit = 2{}",
                if ami.is_some_and(|a| a.starts_with("AL2_")) {
                    " and leaves IMDSv1 on (http_tokens = \"optional\")"
                } else {
                    ""
                }
            ),
            at,
        ));
    } else {
        report.push(
            Finding::new(
                &rules::NODE_GROUP_DEFAULT_LAUNCH_TEMPLATE,
                format!(
                    "{subject}:{ami_text} has no launch template; the IMDS settings of the one EKS creates for {family} cannot be checked"
                ),
                at,
            )
            .with_severity(Severity::Medium),
        );
    }
}

/// `aws_eks_node_group` without a `launch_template` block, or whose launch
/// template is not in the linted files (`launch_templates`: the names of the
/// `aws_launch_template` resources that are).
pub(crate) fn node_group(
    item: Item<'_>,
    scope: &Scope<'_>,
    launch_templates: &[&str],
    report: &mut Report,
) {
    let body = item.body();
    if let Some(lt) = body.blocks().find(|b| b.has_ident("launch_template")) {
        let linted = ["id", "name"]
            .iter()
            .filter_map(|k| lt.body.get_attribute(k))
            .any(|a| {
                traversal_path(&a.value).is_some_and(|p| {
                    matches!(p.as_slice(), [t, n, ..]
                        if t == "aws_launch_template" && launch_templates.contains(&n.as_str()))
                })
            });
        if !linted {
            let written: Vec<&str> = source_text(lt, item.src())
                .lines()
                .skip(1)
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "}")
                .collect();
            report.push(Finding::new(
                &rules::MODULE_NODE_IMDS,
                format!(
                    "{}: its launch template ({}) is not an aws_launch_template in the linted files",
                    item.address(),
                    written.join("; ")
                ),
                item.at(lt),
            ));
        }
        return;
    }
    if body.get_blocks("dynamic").any(|d| {
        d.labels
            .first()
            .is_some_and(|l| l.as_str() == "launch_template")
    }) {
        report.push(Finding::new(
            &rules::MODULE_NODE_IMDS,
            format!("{}: launch_template is a dynamic block", item.address()),
            item.here(),
        ));
        return;
    }
    let ami = body
        .get_attribute("ami_type")
        .map(|a| scope.eval(&a.value, item.file));
    eks_default_launch_template(&item.address(), ami.as_ref(), &item.here(), report);
}

/// `aws_ec2_instance_metadata_defaults`: what instances get when neither the
/// launch template nor the AMI says otherwise.
pub(crate) fn account_defaults(item: Item<'_>, scope: &Scope<'_>, report: &mut Report) {
    let body = item.body();
    let get = |k: &str| {
        body.get_attribute(k)
            .map(|a| scope.eval(&a.value, item.file))
    };
    let addr = item.address();
    if let Some(v) = get("http_put_response_hop_limit") {
        match v.as_i64() {
            Some(n) if n >= 2 => report.push(Finding::new(
                &rules::ACCOUNT_IMDS_DEFAULTS,
                format!("{addr}: http_put_response_hop_limit = {n}{}: every instance launched without its own setting gets it", v.provenance()),
                v.at.clone(),
            )),
            Some(_) => {}
            None => report.push(
                Finding::new(
                    &rules::ACCOUNT_IMDS_DEFAULTS,
                    format!("{addr}: http_put_response_hop_limit = {} cannot be evaluated statically", v.show()),
                    v.at.clone(),
                )
                .with_severity(Severity::Low),
            ),
        }
    }
    if let Some(v) = get("http_tokens") {
        if v.as_str() != Some("required") {
            report.push(Finding::new(
                &rules::ACCOUNT_IMDS_DEFAULTS,
                format!("{addr}: http_tokens = {}{}: instances launched without their own setting may allow IMDSv1", v.show(), v.provenance()),
                v.at.clone(),
            ));
        }
    }
}
