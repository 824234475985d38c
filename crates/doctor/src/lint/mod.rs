//! Static lint of Terraform (`.tf`, `.tf.json`, `.tfvars`) and Kubernetes
//! manifests (`.yaml`, `.yml`, `.json`).
//!
//! All inputs of one run are linted together, as one configuration: a role
//! may use a policy document defined in another file, the
//! `eks-pod-identity-agent` add-on may be declared next to the cluster rather
//! than next to the association, and a `hostNetwork` Deployment in YAML is
//! judged against the associations found in Terraform. Local modules
//! (`source = "./modules/x"`) are followed into their directories, and their
//! variables take the caller's arguments.
//!
//! Node IMDS settings are read wherever they are set: launch templates,
//! node-group modules (terraform-aws-modules/eks and its node-group submodules,
//! cloudposse/eks-node-group) with each module's defaults per major version,
//! node groups without a launch template, `aws_ec2_instance_metadata_defaults`,
//! Karpenter `EC2NodeClass` (YAML, `kubectl_manifest`, `kubernetes_manifest`)
//! and eksctl `ClusterConfig`. `var.x` (defaults, `terraform.tfvars`,
//! `*.auto.tfvars`) and `local.x` are resolved, and evidence says where a value
//! came from. A value that cannot be known is reported as "cannot check"
//! (medium), never as protected.
//!
//! Directories are walked recursively (sorted, skipping hidden directories such
//! as `.terraform` and `.git`, not following symlinked directories). A path
//! given explicitly must exist and have a supported extension. Documents
//! without `kind` are ignored, so CI workflows or Helm values do not disturb the
//! lint. A file that does not parse (a Helm/Go template, a `templatefile`
//! source, broken HCL) is skipped with a warning naming the file and the
//! reason, and the run goes on; [`lint_paths`] fails only when nothing at all
//! could be read. Suppressions are described in [`suppress`].
//!
//! See [`crate::rules`] for what is checked, and `lines` (private) for how
//! `file:line` locations are found.
//!
//! ```
//! use eks_pod_identity_doctor::lint::lint_source;
//! use eks_pod_identity_doctor::report::Severity;
//!
//! let tf = r#"
//! resource "aws_launch_template" "nodes" {
//!   metadata_options {
//!     http_tokens                 = "required"
//!     http_put_response_hop_limit = 2
//!   }
//! }
//! resource "aws_eks_node_group" "main" {
//!   launch_template {
//!     id      = aws_launch_template.nodes.id
//!     version = aws_launch_template.nodes.latest_version
//!   }
//! }
//! "#;
//! let report = lint_source("nodes.tf", tf).unwrap();
//! let finding = &report.findings()[0];
//! assert_eq!(finding.rule_id, "EPI-TF-003");
//! assert_eq!(finding.severity, Severity::High);
//! assert_eq!(finding.location.to_string(), "nodes.tf:5");
//! ```

mod error;
mod eval;
mod hcl_value;
mod kubernetes;
mod lines;
mod module_defaults;
mod modules;
mod node_groups;
mod node_imds;
pub mod suppress;
mod terraform;
mod trust_policy;
mod workload;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::{Command, Report};

pub use error::LintError;

/// Collects files, then lints them together.
///
/// ```
/// use eks_pod_identity_doctor::lint::Linter;
///
/// let mut linter = Linter::new();
/// linter
///     .add_source(
///         "pod.yaml",
///         "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: busybox}]\n",
///     )
///     .unwrap();
/// let report = linter.finish();
/// assert_eq!(report.findings()[0].rule_id, "EPI-K8S-001");
/// assert_eq!(report.findings()[0].location.to_string(), "pod.yaml:5");
/// ```
#[derive(Debug, Default)]
pub struct Linter {
    terraform: Vec<terraform::file::TfFile>,
    tfvars: Vec<terraform::file::TfFile>,
    yaml: Vec<kubernetes::YamlFile>,
    scanned: Vec<String>,
    skipped: Vec<String>,
    texts: Vec<(String, String)>,
}

/// File kinds the lint understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Terraform,
    TerraformJson,
    Tfvars,
    Yaml,
    Json,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".tf.json") {
        return Some(Kind::TerraformJson);
    }
    if name.ends_with(".tfvars.json") {
        return None;
    }
    match path.extension()?.to_str()? {
        "tf" => Some(Kind::Terraform),
        "tfvars" => Some(Kind::Tfvars),
        "yaml" | "yml" => Some(Kind::Yaml),
        "json" => Some(Kind::Json),
        _ => None,
    }
}

/// Whether text is a template rather than plain YAML: Helm/Go `{{ }}` actions,
/// or Terraform `templatefile` directives (`%{ }`).
fn template_kind(text: &str) -> Option<&'static str> {
    if text.contains("{{") && text.contains("}}") {
        Some("looks like a Helm/Go template ({{ }})")
    } else if text.contains("%{") {
        Some("looks like a Terraform templatefile source (%{ })")
    } else {
        None
    }
}

impl Linter {
    /// An empty linter.
    pub fn new() -> Self {
        Linter::default()
    }

    /// Adds a file, or every lintable file under a directory.
    ///
    /// A file that does not parse is skipped with a warning (see
    /// [`Linter::skipped`]); the run goes on.
    ///
    /// # Errors
    ///
    /// [`LintError`] when the path is missing, unreadable, unsupported, or a
    /// directory holds no lintable file.
    pub fn add_path(&mut self, path: impl AsRef<Path>) -> Result<(), LintError> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LintError::NotFound {
                path: path.to_owned(),
            },
            _ => LintError::Io {
                path: path.to_owned(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            if files.is_empty() {
                return Err(LintError::NoInputs {
                    path: path.to_owned(),
                });
            }
            for file in files {
                self.add_file(&file)?;
            }
            Ok(())
        } else if kind_of(path).is_some() {
            self.add_file(path)
        } else {
            Err(LintError::Unsupported {
                path: path.to_owned(),
            })
        }
    }

    fn add_file(&mut self, path: &Path) -> Result<(), LintError> {
        let name = path.display().to_string();
        if self.scanned.contains(&name) || self.skipped.iter().any(|s| s.starts_with(&name)) {
            return Ok(());
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.skipped.push(format!("{name}: not UTF-8 text"));
                return Ok(());
            }
            Err(e) => {
                return Err(LintError::Io {
                    path: path.to_owned(),
                    source: e,
                })
            }
        };
        if let Err(e) = self.add_source(&name, text) {
            match e {
                LintError::Unsupported { .. } | LintError::Io { .. } => return Err(e),
                other => self.skipped.push(other.to_string()),
            }
        }
        Ok(())
    }

    /// Adds in-memory text; `name` (its extension) says what it is: `.tf`,
    /// `.tf.json`, `.tfvars`, `.yaml`/`.yml`, or `.json` (a manifest).
    ///
    /// # Errors
    ///
    /// [`LintError::Unsupported`] for another extension, or the parse error
    /// ([`LintError::Template`] for a Helm/Go or `templatefile` template).
    pub fn add_source(&mut self, name: &str, text: impl Into<String>) -> Result<(), LintError> {
        let text = text.into();
        if text.contains(suppress::MARKER) {
            self.texts.push((name.to_owned(), text.clone()));
        }
        match kind_of(Path::new(name)) {
            Some(Kind::Terraform) => self.terraform.push(terraform::file::parse(name, text)?),
            Some(Kind::TerraformJson) => self.terraform.push(terraform::json::parse(name, &text)?),
            Some(Kind::Tfvars) => self.tfvars.push(terraform::file::parse(name, text)?),
            Some(Kind::Yaml) => {
                let parsed = kubernetes::parse(name, &text);
                match (parsed, template_kind(&text)) {
                    (Ok(file), None) => self.yaml.push(file),
                    (_, Some(what)) => {
                        return Err(LintError::Template {
                            path: name.to_owned(),
                            what: what.to_owned(),
                        })
                    }
                    (Err(e), None) => return Err(e),
                }
            }
            Some(Kind::Json) => self.yaml.push(kubernetes::parse_json(name, &text)?),
            None => {
                return Err(LintError::Unsupported {
                    path: PathBuf::from(name),
                })
            }
        }
        self.scanned.push(name.to_owned());
        Ok(())
    }

    /// Files skipped so far, each as `file: reason`.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Adds the files of local modules (`source = "./modules/x"`) that the
    /// linted Terraform calls and that were not given, so their resources are
    /// linted too.
    ///
    /// # Errors
    ///
    /// [`LintError::Io`] when a module directory cannot be read.
    pub fn follow_local_modules(&mut self) -> Result<(), LintError> {
        let mut done = 0;
        while done < self.terraform.len() {
            let dirs: Vec<PathBuf> = self.terraform[done..]
                .iter()
                .flat_map(|f| {
                    let dir = eval::dir_of(&f.path);
                    f.body
                        .blocks()
                        .filter(|b| b.has_ident("module"))
                        .filter_map(modules::source_of)
                        .filter(|s| s.starts_with("./") || s.starts_with("../"))
                        .map(move |s| PathBuf::from(eval::normalize(&Path::new(&dir).join(s))))
                        .collect::<Vec<_>>()
                })
                .collect();
            done = self.terraform.len();
            for dir in dirs {
                let key = dir.display().to_string();
                let known = self
                    .scanned
                    .iter()
                    .chain(&self.skipped)
                    .any(|f| eval::dir_of(f) == key);
                if known || !dir.is_dir() {
                    continue;
                }
                let mut files = Vec::new();
                walk_flat(&dir, &mut files)?;
                for file in files {
                    self.add_file(&file)?;
                }
            }
        }
        Ok(())
    }

    /// Lints everything added and returns the (sorted) report.
    pub fn finish(self) -> Report {
        let mut report = Report::new(Command::Lint);
        for name in self.scanned {
            report.add_scanned(name);
        }
        for skipped in self.skipped {
            report.add_warning(skipped);
        }
        let mut tfvars = self.tfvars;
        // Terraform loads terraform.tfvars first, then *.auto.tfvars in name order.
        tfvars.sort_by_key(|f| {
            let auto = f.path.ends_with(".auto.tfvars");
            (eval::dir_of(&f.path), auto, f.path.clone())
        });
        // Secrets and ConfigMaps of every file, for `envFrom` in any other file.
        let mut objects: Vec<_> = self.yaml.iter().flat_map(kubernetes::env_objects).collect();
        objects.extend(terraform::workloads::env_objects(&self.terraform));
        let accounts = terraform::lint(&self.terraform, &tfvars, &objects, &mut report);
        for file in &self.yaml {
            for w in kubernetes::workloads(file) {
                workload::check(&w, &accounts, &objects, &mut report);
            }
            kubernetes::node_classes(file, &mut report);
        }
        suppress::inline(&mut report, &self.texts);
        report.sort();
        report
    }
}

/// Collects lintable files under `dir`, sorted, skipping hidden directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LintError> {
    let io_err = |e| LintError::Io {
        path: dir.to_owned(),
        source: e,
    };
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        let file_type = fs::symlink_metadata(&entry)
            .map_err(|e| LintError::Io {
                path: entry.clone(),
                source: e,
            })?
            .file_type();
        if file_type.is_dir() {
            if !hidden {
                walk(&entry, out)?;
            }
        } else if kind_of(&entry).is_some() && entry.is_file() {
            out.push(entry);
        }
    }
    Ok(())
}

/// The Terraform files (`.tf`, `.tf.json`, `.tfvars`) directly in `dir`, sorted.
fn walk_flat(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LintError> {
    let io_err = |e| LintError::Io {
        path: dir.to_owned(),
        source: e,
    };
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    out.extend(entries.into_iter().filter(|e| {
        e.is_file()
            && matches!(
                kind_of(e),
                Some(Kind::Terraform | Kind::TerraformJson | Kind::Tfvars)
            )
    }));
    Ok(())
}

/// Lints files and directories together, following local modules.
///
/// Files that do not parse are skipped; the report lists them as warnings.
///
/// # Errors
///
/// The first [`LintError`] met for a path (missing, unreadable, unsupported,
/// no lintable file), or [`LintError::NothingReadable`] when every file found
/// was skipped.
pub fn lint_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Report, LintError> {
    let mut linter = Linter::new();
    for path in paths {
        linter.add_path(path)?;
    }
    linter.follow_local_modules()?;
    if linter.scanned.is_empty() && !linter.skipped.is_empty() {
        return Err(LintError::NothingReadable {
            skipped: linter.skipped,
        });
    }
    Ok(linter.finish())
}

/// Lints one in-memory file (`name` ends in `.tf`, `.tf.json`, `.yaml`, `.yml` or `.json`).
///
/// # Errors
///
/// [`LintError`] when the name is unsupported or the text does not parse.
pub fn lint_source(name: &str, text: &str) -> Result<Report, LintError> {
    let mut linter = Linter::new();
    linter.add_source(name, text)?;
    Ok(linter.finish())
}
