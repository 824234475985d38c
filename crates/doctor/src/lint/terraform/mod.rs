//! Terraform (`.tf`, `.tf.json`) files: parsing ([`file`], [`json`]), a
//! cross-file index of resources and data sources, and the `EPI-TF-*` rules,
//! one module per subject (launch templates, trust policies, associations),
//! plus the Kubernetes workloads declared through Terraform ([`workloads`]).
//!
//! All files given to one lint run form one configuration: a role in `iam.tf`
//! may use a policy document from `policies.tf`, and the agent add-on may live
//! in another file than the association.

mod associations;
pub(crate) mod file;
mod index;
pub(crate) mod json;
mod launch_templates;
mod trust;
pub(crate) mod workloads;

use crate::lint::eval::Scope;
use crate::lint::workload::{self, AssociatedAccount, EnvObject};
use crate::lint::{modules, node_groups};
use crate::report::Report;

use associations::associations;
use file::TfFile;
use index::Index;
use launch_templates::{launch_template, launch_template_scope};
use trust::iam_role;

/// Lints every Terraform file together (with the `.tfvars` files that give
/// their variables values); returns the service accounts that have a pod
/// identity association (for the workload rules of YAML files). `objects` are
/// the Secrets and ConfigMaps of the whole lint run, for `env_from`.
pub(crate) fn lint(
    files: &[TfFile],
    tfvars: &[TfFile],
    objects: &[EnvObject],
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
        for w in workloads::workloads(item) {
            workload::check(&w, &accounts, objects, report);
        }
        workloads::node_classes(item, report);
    }
    accounts
}
