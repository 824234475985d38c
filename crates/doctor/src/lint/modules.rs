//! Node groups declared through Terraform modules: terraform-aws-modules/eks
//! (and its `eks-managed-node-group` / `self-managed-node-group` submodules)
//! and cloudposse/eks-node-group.
//!
//! The node groups are module inputs, and the IMDS settings the nodes get come
//! from the module's own defaults for the version in the call's `version`
//! constraint (see [`super::module_defaults`]) unless the user overrides them.
//! Values are resolved with [`super::eval`] (variables, tfvars, locals), so
//! the evidence says where each value came from.

use hcl::edit::structure::Block;
use hcl::edit::Span;

use super::eval::{Scope, Tv, Val};
use super::module_defaults::{self, Defaults, Merge, ModuleKind};
use super::node_imds::{module_default, NodeImds, Setting, TF_RULES};
use super::terraform::file::TfFile;
use crate::report::{Finding, Location, Report, Severity};
use crate::rules;

/// A recognised module call.
pub(crate) struct ModuleCall<'a> {
    pub(crate) file: &'a TfFile,
    pub(crate) name: &'a str,
    pub(crate) block: &'a Block,
    pub(crate) kind: ModuleKind,
}

impl ModuleCall<'_> {
    fn at(&self) -> Location {
        Location::file(
            &self.file.path,
            self.file
                .lines
                .line(self.block.span().map_or(0, |r| r.start)),
        )
    }

    fn input(&self, scope: &Scope<'_>, key: &str) -> Option<Tv> {
        self.block
            .body
            .get_attribute(key)
            .map(|a| scope.eval(&a.value, self.file))
    }
}

/// The `source` of a module block, evaluated.
pub(crate) fn source_of(block: &Block) -> Option<String> {
    super::hcl_value::attr_str(&block.body, "source")
}

/// Every module call in `files` whose source is a known node-group module.
pub(crate) fn calls(files: &[TfFile]) -> Vec<ModuleCall<'_>> {
    let mut out = Vec::new();
    for file in files {
        for b in file.body.blocks().filter(|b| b.has_ident("module")) {
            let (Some(name), Some(source)) = (b.labels.first(), source_of(b)) else {
                continue;
            };
            if let Some(kind) = ModuleKind::from_source(&source) {
                out.push(ModuleCall {
                    file,
                    name: name.as_str(),
                    block: b,
                    kind,
                });
            }
        }
    }
    out
}

/// The module's defaults, or why they cannot be known.
fn defaults_of(call: &ModuleCall<'_>, scope: &Scope<'_>) -> Result<&'static Defaults, String> {
    let from_ref = source_of(call.block).and_then(|s| {
        s.split_once("ref=")
            .map(|(_, r)| r.split('&').next().unwrap_or("").to_owned())
    });
    let constraint = match call.input(scope, "version") {
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                return Err(format!(
                    "the module version {} cannot be evaluated statically",
                    v.show()
                ))
            }
        },
        None => from_ref,
    };
    let range = constraint
        .as_deref()
        .and_then(module_defaults::parse_constraint);
    if constraint.is_some() && range.is_none() {
        return Err(format!(
            "the version constraint {:?} of the {} module call is not understood",
            constraint.unwrap_or_default(),
            call.kind.name()
        ));
    }
    module_defaults::lookup(call.kind, range).map_err(|e| e.0)
}

/// Lints every recognised module call.
pub(crate) fn lint(calls: &[ModuleCall<'_>], scope: &Scope<'_>, report: &mut Report) {
    for call in calls {
        let defaults = defaults_of(call, scope);
        match call.kind {
            ModuleKind::TamEks => tam_root(call, scope, defaults, report),
            ModuleKind::TamManagedNodeGroup | ModuleKind::TamSelfManagedNodeGroup => {
                let group = Tv::new(
                    Val::Map(
                        call.block
                            .body
                            .attributes()
                            .map(|a| (a.key.as_str().to_owned(), scope.eval(&a.value, call.file)))
                            .collect(),
                    ),
                    call.at(),
                );
                let managed = call.kind == ModuleKind::TamManagedNodeGroup;
                tam_group(
                    call,
                    &format!("module.{}", call.name),
                    &group,
                    None,
                    managed,
                    defaults,
                    report,
                );
            }
            ModuleKind::CloudposseNodeGroup => cloudposse(call, scope, defaults, report),
        }
    }
}

/// The evidence for a setting the module leaves to a default that is not known.
fn unknown_default(reason: &str, at: &Location) -> Setting {
    Setting::Undetermined {
        evidence: format!("left to the module's default, which is unknown: {reason}"),
        at: at.clone(),
    }
}

fn tam_root(
    call: &ModuleCall<'_>,
    scope: &Scope<'_>,
    defaults: Result<&'static Defaults, String>,
    report: &mut Report,
) {
    let v17 = matches!(defaults, Ok(d) if d.from.0 == 17);
    if let Err(reason) = &defaults {
        // The v17 inputs have no per-group metadata_options: nothing to read
        // without the version's defaults.
        for map in [
            "node_groups",
            "worker_groups",
            "worker_groups_launch_template",
        ] {
            if let Some(a) = call.block.body.get_attribute(map) {
                report.push(Finding::new(
                    &rules::MODULE_NODE_IMDS,
                    format!("module.{} {map}: {reason}", call.name),
                    Location::file(
                        &call.file.path,
                        call.file.lines.line(a.span().map_or(0, |r| r.start)),
                    ),
                ));
            }
        }
    }
    let maps: &[(&str, &str, bool)] = if v17 {
        &[
            ("node_groups", "node_groups_defaults", true),
            ("worker_groups", "workers_group_defaults", false),
            (
                "worker_groups_launch_template",
                "workers_group_defaults",
                false,
            ),
        ]
    } else {
        &[
            (
                "eks_managed_node_groups",
                "eks_managed_node_group_defaults",
                true,
            ),
            (
                "self_managed_node_groups",
                "self_managed_node_group_defaults",
                false,
            ),
        ]
    };
    for (map, defaults_key, managed) in maps {
        let Some(groups) = call.input(scope, map) else {
            continue;
        };
        let group_defaults = call.input(scope, defaults_key);
        let entries: Vec<(String, Tv)> = match &groups.val {
            Val::Map(entries) => entries.clone(),
            Val::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
            _ => {
                report.push(
                    Finding::new(
                        &rules::MODULE_NODE_IMDS,
                        format!(
                            "module.{}: {map} = {} cannot be evaluated statically; its node groups' IMDS settings cannot be checked{}",
                            call.name,
                            groups.show(),
                            groups.provenance()
                        ),
                        groups.at.clone(),
                    ),
                );
                continue;
            }
        };
        for (name, group) in entries {
            let subject = format!("module.{} {map}[\"{name}\"]", call.name);
            if group.is_unknown() {
                report.push(Finding::new(
                    &rules::MODULE_NODE_IMDS,
                    format!(
                        "{subject} = {} cannot be evaluated statically",
                        group.show()
                    ),
                    group.at.clone(),
                ));
                continue;
            }
            if v17 {
                tam_v17_group(
                    call,
                    &subject,
                    &group,
                    group_defaults.as_ref(),
                    *managed,
                    defaults.clone(),
                    report,
                );
            } else {
                tam_group(
                    call,
                    &subject,
                    &group,
                    group_defaults.as_ref(),
                    *managed,
                    defaults.clone(),
                    report,
                );
            }
        }
    }
}

/// First of `key` in the group, then in the defaults map.
fn pick<'t>(group: &'t Tv, defaults: Option<&'t Tv>, key: &str) -> Option<&'t Tv> {
    group.get(key).filter(|v| v.val != Val::Null).or_else(|| {
        defaults
            .and_then(|d| d.get(key))
            .filter(|v| v.val != Val::Null)
    })
}

/// A managed node group for which the module creates no launch template.
fn without_launch_template(group: &Tv, defaults: Option<&Tv>) -> Option<Tv> {
    for key in ["use_custom_launch_template", "create_launch_template"] {
        if let Some(v) = pick(group, defaults, key) {
            if v.as_bool() == Some(false) {
                return Some(v.clone());
            }
        }
    }
    None
}

/// terraform-aws-modules/eks v18+ (root map entries and the submodules).
fn tam_group(
    call: &ModuleCall<'_>,
    subject: &str,
    group: &Tv,
    group_defaults: Option<&Tv>,
    managed: bool,
    defaults: Result<&'static Defaults, String>,
    report: &mut Report,
) {
    // With the module's launch template off, a group may still name its own
    // (`launch_template_id`/`_name`): that resource is linted where it is defined.
    let external = ["launch_template_id", "launch_template_name"]
        .iter()
        .any(|k| pick(group, group_defaults, k).is_some_and(|v| v.as_str() != Some("")));
    if let Some(off) = without_launch_template(group, group_defaults) {
        if external {
            return;
        }
        if managed {
            let ami = pick(group, group_defaults, "ami_type").cloned();
            super::node_groups::eks_default_launch_template(
                &format!("{subject} (custom launch template off{})", off.provenance()),
                ami.as_ref(),
                &off.at,
                report,
            );
        }
        return;
    }
    let own = pick(group, group_defaults, "metadata_options");
    let at = call.at();
    let (tokens, hop, endpoint, ipv6) = match (defaults, own) {
        // No map of the user's: the module's defaults apply whole.
        (Ok(d), None) => (
            Setting::Set(module_default(
                d.http_tokens.map_or(Val::Null, |t| Val::Str(t.to_owned())),
                &at,
                d.source,
            )),
            match d.hop_limit {
                Some(n) => Setting::Set(module_default(Val::Num(n), &at, d.source)),
                None => Setting::Missing {
                    evidence: format!(
                        "the module does not set http_put_response_hop_limit ({})",
                        d.source
                    ),
                    at: at.clone(),
                },
            },
            None,
            None,
        ),
        (Err(reason), None) => (
            unknown_default(&reason, &at),
            unknown_default(&reason, &at),
            None,
            None,
        ),
        (_, Some(map)) if map.is_unknown() => (
            Setting::Set(map.clone()),
            Setting::Set(map.clone()),
            None,
            None,
        ),
        (defaults, Some(map)) => {
            let key = |k: &str, default: Option<Val>| -> Setting {
                match map.get(k).filter(|v| v.val != Val::Null) {
                    Some(v) => Setting::Set(v.clone()),
                    None => match &defaults {
                        Ok(d) if d.merge == Merge::PerKey => match default {
                            Some(val) => Setting::Set(module_default(val, &at, d.source)),
                            None => Setting::Missing {
                                evidence: format!("metadata_options does not set {k} and the module has no default for it"),
                                at: map.at.clone(),
                            },
                        },
                        Ok(_) => Setting::Missing {
                            evidence: format!(
                                "metadata_options{} does not set {k}: the module replaces its defaults with this map as a whole, so {k} is left unset{}",
                                map.provenance(),
                                if k == "http_tokens" { " (EC2 default \"optional\")" } else { "" }
                            ),
                            at: map.at.clone(),
                        },
                        Err(reason) => unknown_default(reason, &map.at),
                    },
                }
            };
            let d = defaults.as_ref().ok();
            (
                key(
                    "http_tokens",
                    d.and_then(|d| d.http_tokens)
                        .map(|t| Val::Str(t.to_owned())),
                ),
                key(
                    "http_put_response_hop_limit",
                    d.and_then(|d| d.hop_limit).map(Val::Num),
                ),
                map.get("http_endpoint").cloned(),
                map.get("http_protocol_ipv6").cloned(),
            )
        }
    };
    NodeImds {
        subject: subject.to_owned(),
        tokens,
        hop,
        endpoint,
        ipv6,
        cap: Severity::Critical,
        note: String::new(),
        rules: TF_RULES,
    }
    .judge(report);
}

/// terraform-aws-modules/eks v17: `metadata_http_*` keys merged per key with
/// `workers_group_defaults`; managed `node_groups` only get a launch template
/// with `create_launch_template = true`.
fn tam_v17_group(
    call: &ModuleCall<'_>,
    subject: &str,
    group: &Tv,
    group_defaults: Option<&Tv>,
    managed: bool,
    defaults: Result<&'static Defaults, String>,
    report: &mut Report,
) {
    let at = call.at();
    let Ok(d) = defaults else {
        return;
    };
    if managed
        && pick(group, group_defaults, "create_launch_template").and_then(Tv::as_bool) != Some(true)
    {
        let ami = pick(group, group_defaults, "ami_type").cloned();
        super::node_groups::eks_default_launch_template(
            &format!("{subject} (no create_launch_template = true)"),
            ami.as_ref(),
            &group.at,
            report,
        );
        return;
    }
    let tokens = match pick(group, group_defaults, "metadata_http_tokens") {
        Some(v) => Setting::Set(v.clone()),
        None => Setting::Set(module_default(
            d.http_tokens.map_or(Val::Null, |t| Val::Str(t.to_owned())),
            &at,
            d.source,
        )),
    };
    let hop = match pick(
        group,
        group_defaults,
        "metadata_http_put_response_hop_limit",
    ) {
        Some(v) => Setting::Set(v.clone()),
        None => Setting::Missing {
            evidence: format!(
                "metadata_http_put_response_hop_limit is not set ({})",
                d.source
            ),
            at: group.at.clone(),
        },
    };
    NodeImds {
        subject: subject.to_owned(),
        tokens,
        hop,
        endpoint: pick(group, group_defaults, "metadata_http_endpoint").cloned(),
        ipv6: None,
        cap: Severity::Critical,
        note: String::new(),
        rules: TF_RULES,
    }
    .judge(report);
}

/// cloudposse/eks-node-group: `metadata_http_*` inputs.
fn cloudposse(
    call: &ModuleCall<'_>,
    scope: &Scope<'_>,
    defaults: Result<&'static Defaults, String>,
    report: &mut Report,
) {
    let at = call.at();
    let default = |val: Option<Val>| match &defaults {
        Ok(d) => Setting::Set(module_default(val.unwrap_or(Val::Null), &at, d.source)),
        Err(reason) => unknown_default(reason, &at),
    };
    let d = defaults.as_ref().ok();
    let tokens = if let Some(v) = call.input(scope, "metadata_http_tokens_required") {
        let val = match v.as_bool() {
            Some(true) => Val::Str("required".to_owned()),
            Some(false) => Val::Str("optional".to_owned()),
            None => v.val.clone(),
        };
        Setting::Set(Tv { val, ..v })
    } else if let Some(v) = call.input(scope, "metadata_http_tokens") {
        Setting::Set(v)
    } else {
        default(
            d.and_then(|d| d.http_tokens)
                .map(|t| Val::Str(t.to_owned())),
        )
    };
    let hop = match call.input(scope, "metadata_http_put_response_hop_limit") {
        Some(v) => Setting::Set(v),
        None => default(d.and_then(|d| d.hop_limit).map(Val::Num)),
    };
    let endpoint = call
        .input(scope, "metadata_http_endpoint_enabled")
        .map(|v| match v.as_bool() {
            Some(false) => Tv {
                val: Val::Str("disabled".to_owned()),
                ..v
            },
            _ => v,
        })
        .or_else(|| call.input(scope, "metadata_http_endpoint"));
    NodeImds {
        subject: format!("module.{}", call.name),
        tokens,
        hop,
        endpoint,
        ipv6: None,
        cap: Severity::Critical,
        note: String::new(),
        rules: TF_RULES,
    }
    .judge(report);
}
