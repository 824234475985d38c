//! The IMDS defaults of the Terraform node-group modules, per major version,
//! and the version constraints that select them.
//!
//! Read from each module's published sources at the tags named in
//! [`Defaults::source`] (the same table is in the rule docs,
//! [`crate::rules::MODULE_NODE_IMDS`]):
//!
//! | module | versions | `http_tokens` | hop limit | how a group's settings merge with the defaults |
//! |---|---|---|---|---|
//! | terraform-aws-modules/eks (root, `worker_groups*`/`node_groups` with a launch template) | 17.x | `"optional"` | not set (EC2 default 1) | per key: `metadata_http_*` keys, else `workers_group_defaults` |
//! | terraform-aws-modules/eks (root and both node-group submodules) | 18.x – 20.x | `"required"` | **2** | whole map: a group's `metadata_options` replaces `*_defaults.metadata_options`, which replaces the module's map; keys missing from the chosen map are not set |
//! | terraform-aws-modules/eks (root and both node-group submodules) | 21.x | `"required"` | 1 | per key: missing attributes take the submodule's `optional()` defaults; no `*_defaults` inputs |
//! | cloudposse/eks-node-group | 0.20 – 0.24, 1.x | `metadata_http_tokens = "optional"` | **2** | per input |
//! | cloudposse/eks-node-group | 0.25 – 0.28, ≥ 2.0 | `metadata_http_tokens_required = true` | **2** | per input |

use std::fmt;

/// A module whose IMDS defaults are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModuleKind {
    /// `terraform-aws-modules/eks/aws` (the root module).
    TamEks,
    /// `terraform-aws-modules/eks/aws//modules/eks-managed-node-group`.
    TamManagedNodeGroup,
    /// `terraform-aws-modules/eks/aws//modules/self-managed-node-group`.
    TamSelfManagedNodeGroup,
    /// `cloudposse/eks-node-group/aws`.
    CloudposseNodeGroup,
}

impl ModuleKind {
    /// Recognises a module `source` (registry address or git URL, with or without `//subdir`).
    pub(crate) fn from_source(source: &str) -> Option<ModuleKind> {
        let s = source.to_ascii_lowercase();
        let (repo, sub) = match s.split_once("//") {
            // `git::https://…` keeps its scheme's `//`; look for a second one.
            Some((scheme, rest)) if scheme.ends_with(':') => match rest.split_once("//") {
                Some((r, sub)) => (format!("{scheme}//{r}"), sub.to_owned()),
                None => (s.clone(), String::new()),
            },
            Some((r, sub)) => (r.to_owned(), sub.to_owned()),
            None => (s.clone(), String::new()),
        };
        let sub = sub.split('?').next().unwrap_or("").trim_end_matches('/');
        let repo = repo.split('?').next().unwrap_or("");
        let tam = repo == "terraform-aws-modules/eks/aws"
            || repo.ends_with("terraform-aws-modules/terraform-aws-eks")
            || repo.ends_with("terraform-aws-modules/terraform-aws-eks.git");
        let cloudposse = repo == "cloudposse/eks-node-group/aws"
            || repo.ends_with("cloudposse/terraform-aws-eks-node-group")
            || repo.ends_with("cloudposse/terraform-aws-eks-node-group.git");
        match (tam, cloudposse, sub) {
            (true, _, "") => Some(ModuleKind::TamEks),
            (true, _, "modules/eks-managed-node-group") => Some(ModuleKind::TamManagedNodeGroup),
            (true, _, "modules/self-managed-node-group") => {
                Some(ModuleKind::TamSelfManagedNodeGroup)
            }
            (_, true, "") => Some(ModuleKind::CloudposseNodeGroup),
            _ => None,
        }
    }

    fn family(self) -> Family {
        match self {
            ModuleKind::CloudposseNodeGroup => Family::Cloudposse,
            _ => Family::TamEks,
        }
    }

    /// The module's registry name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ModuleKind::TamEks => "terraform-aws-modules/eks",
            ModuleKind::TamManagedNodeGroup => {
                "terraform-aws-modules/eks//modules/eks-managed-node-group"
            }
            ModuleKind::TamSelfManagedNodeGroup => {
                "terraform-aws-modules/eks//modules/self-managed-node-group"
            }
            ModuleKind::CloudposseNodeGroup => "cloudposse/eks-node-group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    TamEks,
    Cloudposse,
}

/// How a node group's own IMDS settings combine with the module's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// A group's `metadata_options` map replaces the defaults as a whole; its
    /// missing keys are left unset on the launch template.
    WholeMap,
    /// Each setting falls back to the default on its own.
    PerKey,
}

/// A semantic version (missing parts are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(pub(crate) u64, pub(crate) u64, pub(crate) u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

const MAX: Version = Version(u64::MAX, 0, 0);

/// The IMDS defaults of one module over a version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Defaults {
    family: Family,
    /// First version (inclusive).
    pub(crate) from: Version,
    /// Last version (exclusive).
    pub(crate) until: Version,
    /// `http_tokens` the module sets when the user says nothing (`None`: not set).
    pub(crate) http_tokens: Option<&'static str>,
    /// Hop limit the module sets when the user says nothing (`None`: not set, EC2 default 1).
    pub(crate) hop_limit: Option<i64>,
    /// How a group's settings merge with the defaults.
    pub(crate) merge: Merge,
    /// Where in the module's published sources the defaults are.
    pub(crate) source: &'static str,
}

/// The table (also in the rule docs; see the module docs above).
pub(crate) const TABLE: &[Defaults] = &[
    Defaults {
        family: Family::TamEks,
        from: Version(17, 0, 0),
        until: Version(18, 0, 0),
        http_tokens: Some("optional"),
        hop_limit: None,
        merge: Merge::PerKey,
        source: "terraform-aws-eks locals.tf workers_group_defaults (metadata_http_tokens = \"optional\", metadata_http_put_response_hop_limit = null) at v17.0.0..v17.24.0",
    },
    Defaults {
        family: Family::TamEks,
        from: Version(18, 0, 0),
        until: Version(21, 0, 0),
        http_tokens: Some("required"),
        hop_limit: Some(2),
        merge: Merge::WholeMap,
        source: "terraform-aws-eks node_groups.tf local.metadata_options and modules/{eks,self}-managed-node-group/variables.tf metadata_options (http_put_response_hop_limit = 2) at v18.0.0, v19.0.0, v20.0.0..v20.37.2",
    },
    Defaults {
        family: Family::TamEks,
        from: Version(21, 0, 0),
        until: Version(22, 0, 0),
        http_tokens: Some("required"),
        hop_limit: Some(1),
        merge: Merge::PerKey,
        source: "terraform-aws-eks modules/{eks,self}-managed-node-group/variables.tf metadata_options (optional(number, 1), nullable = false) at v21.0.0..v21.19.0",
    },
    Defaults {
        family: Family::Cloudposse,
        from: Version(0, 20, 0),
        until: Version(0, 25, 0),
        http_tokens: Some("optional"),
        hop_limit: Some(2),
        merge: Merge::PerKey,
        source: "terraform-aws-eks-node-group variables.tf metadata_http_tokens = \"optional\", metadata_http_put_response_hop_limit = 2 at 0.20.0..0.24.x",
    },
    Defaults {
        family: Family::Cloudposse,
        from: Version(0, 25, 0),
        until: Version(1, 0, 0),
        http_tokens: Some("required"),
        hop_limit: Some(2),
        merge: Merge::PerKey,
        source: "terraform-aws-eks-node-group variables.tf metadata_http_tokens_required = true, metadata_http_put_response_hop_limit = 2 at 0.25.0..0.28.x",
    },
    Defaults {
        family: Family::Cloudposse,
        from: Version(1, 0, 0),
        until: Version(2, 0, 0),
        http_tokens: Some("optional"),
        hop_limit: Some(2),
        merge: Merge::PerKey,
        source: "terraform-aws-eks-node-group variables.tf metadata_http_tokens = \"optional\", metadata_http_put_response_hop_limit = 2 at 1.0.0",
    },
    Defaults {
        family: Family::Cloudposse,
        from: Version(2, 0, 0),
        until: MAX,
        http_tokens: Some("required"),
        hop_limit: Some(2),
        merge: Merge::PerKey,
        source: "terraform-aws-eks-node-group variables.tf metadata_http_tokens_required = true, metadata_http_put_response_hop_limit = 2 at 2.0.0..v3.4.0",
    },
];

/// The versions a constraint allows, as `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) from: Version,
    pub(crate) until: Version,
}

fn parse_version(s: &str) -> Option<(Version, usize)> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let core = s.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut n = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        n[i] = p.parse().ok()?;
    }
    Some((Version(n[0], n[1], n[2]), parts.len()))
}

fn bump(v: Version) -> Version {
    Version(v.0, v.1, v.2.saturating_add(1))
}

/// Parses a Terraform version constraint (`"~> 20.0"`, `">= 19, < 21"`, `"20.8.4"`, `"v20.8.4"`).
pub(crate) fn parse_constraint(text: &str) -> Option<Range> {
    let mut range = Range {
        from: Version(0, 0, 0),
        until: MAX,
    };
    let mut any = false;
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (op, rest) = ["~>", ">=", "<=", "!=", "=", ">", "<"]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("=", part));
        let (v, parts) = parse_version(rest)?;
        let (from, until) = match op {
            "=" => (v, bump(v)),
            ">=" => (v, MAX),
            ">" => (bump(v), MAX),
            "<" => (Version(0, 0, 0), v),
            "<=" => (Version(0, 0, 0), bump(v)),
            "!=" => continue,
            _ => match parts {
                1 => (v, MAX),
                2 => (v, Version(v.0 + 1, 0, 0)),
                _ => (v, Version(v.0, v.1 + 1, 0)),
            },
        };
        range.from = range.from.max(from);
        range.until = range.until.min(until);
        any = true;
    }
    (any && range.from < range.until).then_some(range)
}

/// Why the defaults of a module call cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unknown(pub(crate) String);

/// The defaults that apply to `kind` at every version `range` allows, if they agree.
pub(crate) fn lookup(kind: ModuleKind, range: Option<Range>) -> Result<&'static Defaults, Unknown> {
    let Some(range) = range else {
        return Err(Unknown(format!(
            "no version constraint on the {} module call: its IMDS defaults differ between major versions",
            kind.name()
        )));
    };
    let rows: Vec<&Defaults> = TABLE
        .iter()
        .filter(|d| d.family == kind.family() && d.from < range.until && range.from < d.until)
        .collect();
    let covered = rows.iter().map(|d| d.from).min() <= Some(range.from)
        && rows.iter().map(|d| d.until).max() >= Some(range.until);
    match rows.as_slice() {
        [] => Err(Unknown(format!(
            "{} versions {}..{} are not in the defaults table",
            kind.name(),
            range.from,
            range.until
        ))),
        [first, rest @ ..]
            if covered
                && rest.iter().all(|d| {
                    (d.http_tokens, d.hop_limit, d.merge)
                        == (first.http_tokens, first.hop_limit, first.merge)
                }) =>
        {
            Ok(first)
        }
        _ => Err(Unknown(format!(
            "the version constraint of the {} module call allows versions whose IMDS defaults differ (or are not in the table); pin a major version",
            kind.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(
        kind: ModuleKind,
        constraint: &str,
    ) -> Result<(Option<&str>, Option<i64>, Merge), Unknown> {
        lookup(kind, parse_constraint(constraint)).map(|d| (d.http_tokens, d.hop_limit, d.merge))
    }

    #[test]
    fn sources_are_recognised() {
        use ModuleKind::*;
        for (source, kind) in [
            ("terraform-aws-modules/eks/aws", Some(TamEks)),
            ("terraform-aws-modules/eks/aws//modules/eks-managed-node-group", Some(TamManagedNodeGroup)),
            ("terraform-aws-modules/eks/aws//modules/self-managed-node-group", Some(TamSelfManagedNodeGroup)),
            ("git::https://github.com/terraform-aws-modules/terraform-aws-eks.git//modules/eks-managed-node-group?ref=v20.8.4", Some(TamManagedNodeGroup)),
            ("git::https://github.com/terraform-aws-modules/terraform-aws-eks.git?ref=v19.21.0", Some(TamEks)),
            ("cloudposse/eks-node-group/aws", Some(CloudposseNodeGroup)),
            ("terraform-aws-modules/eks/aws//modules/karpenter", None),
            ("terraform-aws-modules/vpc/aws", None),
        ] {
            assert_eq!(ModuleKind::from_source(source), kind, "{source}");
        }
    }

    #[test]
    fn constraints_parse_to_ranges() {
        let r = parse_constraint("~> 20.0").unwrap();
        assert_eq!((r.from, r.until), (Version(20, 0, 0), Version(21, 0, 0)));
        let r = parse_constraint("~> 20.8.4").unwrap();
        assert_eq!((r.from, r.until), (Version(20, 8, 4), Version(20, 9, 0)));
        let r = parse_constraint(">= 19.0, < 21.0").unwrap();
        assert_eq!((r.from, r.until), (Version(19, 0, 0), Version(21, 0, 0)));
        let r = parse_constraint("v21.3.1").unwrap();
        assert_eq!((r.from, r.until), (Version(21, 3, 1), Version(21, 3, 2)));
        assert_eq!(parse_constraint("~> 20").unwrap().until, MAX);
        assert_eq!(parse_constraint("latest"), None);
        assert_eq!(parse_constraint(">= 21, < 20"), None);
    }

    #[test]
    fn terraform_aws_eks_defaults_per_major_version() {
        use ModuleKind::*;
        for kind in [TamEks, TamManagedNodeGroup, TamSelfManagedNodeGroup] {
            assert_eq!(
                defaults(kind, "~> 17.24"),
                Ok((Some("optional"), None, Merge::PerKey))
            );
            for c in ["~> 18.0", "19.21.0", "~> 20.8", ">= 18.0, < 21.0"] {
                assert_eq!(
                    defaults(kind, c),
                    Ok((Some("required"), Some(2), Merge::WholeMap)),
                    "{c}"
                );
            }
            assert_eq!(
                defaults(kind, "~> 21.0"),
                Ok((Some("required"), Some(1), Merge::PerKey))
            );
            // Ranges over majors whose defaults differ, or open-ended ones, are not guessed.
            assert!(defaults(kind, ">= 20.0").is_err());
            assert!(defaults(kind, "~> 20").is_err());
            assert!(defaults(kind, ">= 20.0, < 22.0").is_err());
            assert!(defaults(kind, "~> 16.0").is_err());
            assert!(lookup(kind, None).is_err());
        }
    }

    #[test]
    fn cloudposse_defaults_per_version() {
        let k = ModuleKind::CloudposseNodeGroup;
        assert_eq!(
            defaults(k, "0.22.0"),
            Ok((Some("optional"), Some(2), Merge::PerKey))
        );
        assert_eq!(
            defaults(k, "~> 0.27.0"),
            Ok((Some("required"), Some(2), Merge::PerKey))
        );
        assert_eq!(
            defaults(k, "1.0.0"),
            Ok((Some("optional"), Some(2), Merge::PerKey))
        );
        for c in ["~> 2.0", "3.0.0", "~> 3.4", ">= 2.0"] {
            assert_eq!(
                defaults(k, c),
                Ok((Some("required"), Some(2), Merge::PerKey)),
                "{c}"
            );
        }
        assert!(defaults(k, "0.19.0").is_err());
        assert!(defaults(k, ">= 0.20.0").is_err());
    }
}
