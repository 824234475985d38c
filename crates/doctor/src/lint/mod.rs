//! Static lint of Terraform (`.tf`) and Kubernetes YAML (`.yaml`, `.yml`) files.
//!
//! All inputs of one run are linted together, as one configuration: a role
//! may use a policy document defined in another file, the
//! `eks-pod-identity-agent` add-on may be declared next to the cluster rather
//! than next to the association, and a `hostNetwork` Deployment in YAML is
//! judged against the associations found in Terraform.
//!
//! Directories are walked recursively (sorted, skipping hidden directories such
//! as `.terraform` and `.git`, not following symlinked directories) for `.tf`,
//! `.yaml` and `.yml` files. A path
//! given explicitly must exist and have one of those extensions. YAML documents
//! without `kind` are ignored, so CI workflows or Helm values do not disturb the
//! lint, but any file that does not parse is an error: a lint that silently
//! skips files would report a clean bill of health it has not earned.
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
//! "#;
//! let report = lint_source("nodes.tf", tf).unwrap();
//! let finding = &report.findings()[0];
//! assert_eq!(finding.rule_id, "EPI-TF-003");
//! assert_eq!(finding.severity, Severity::High);
//! assert_eq!(finding.location.to_string(), "nodes.tf:5");
//! ```

mod hcl_value;
mod kubernetes;
mod lines;
mod terraform;
mod tf_workloads;
mod trust_policy;
mod workload;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::{Command, Report};

/// Why a lint could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    /// A path given on the command line does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file given explicitly is neither `.tf` nor `.yaml`/`.yml`.
    #[error("{}: unsupported file type (expected .tf, .yaml or .yml)", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
    },
    /// A directory holds no `.tf`, `.yaml` or `.yml` file.
    #[error("{}: no .tf, .yaml or .yml files found", path.display())]
    NoInputs {
        /// The directory.
        path: PathBuf,
    },
    /// A `.tf` file is not valid HCL.
    #[error("{path}:{line}:{column}: invalid HCL: {message}")]
    Hcl {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A YAML file is not valid YAML.
    #[error("{path}{}: invalid YAML: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Yaml {
        /// The file.
        path: String,
        /// 1-based line of the error, when known.
        line: Option<u32>,
        /// The parser's message.
        message: String,
    },
}

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
    terraform: Vec<terraform::TfFile>,
    yaml: Vec<kubernetes::YamlFile>,
    scanned: Vec<String>,
}

/// File kinds the lint understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Terraform,
    Yaml,
}

fn kind_of(path: &Path) -> Option<Kind> {
    match path.extension()?.to_str()? {
        "tf" => Some(Kind::Terraform),
        "yaml" | "yml" => Some(Kind::Yaml),
        _ => None,
    }
}

impl Linter {
    /// An empty linter.
    pub fn new() -> Self {
        Linter::default()
    }

    /// Adds a file, or every `.tf`/`.yaml`/`.yml` file under a directory.
    ///
    /// # Errors
    ///
    /// [`LintError`] when the path is missing, unreadable, unsupported, holds no
    /// lintable file, or a file does not parse.
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
        let text = fs::read_to_string(path).map_err(|e| LintError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        self.add_source(&path.display().to_string(), text)
    }

    /// Adds in-memory text; `name` (its extension) says whether it is Terraform or YAML.
    ///
    /// # Errors
    ///
    /// [`LintError::Unsupported`] for another extension, or a parse error.
    pub fn add_source(&mut self, name: &str, text: impl Into<String>) -> Result<(), LintError> {
        let text = text.into();
        match kind_of(Path::new(name)) {
            Some(Kind::Terraform) => self.terraform.push(terraform::parse(name, text)?),
            Some(Kind::Yaml) => self.yaml.push(kubernetes::parse(name, &text)?),
            None => {
                return Err(LintError::Unsupported {
                    path: PathBuf::from(name),
                })
            }
        }
        self.scanned.push(name.to_owned());
        Ok(())
    }

    /// Lints everything added and returns the (sorted) report.
    pub fn finish(self) -> Report {
        let mut report = Report::new(Command::Lint);
        for name in self.scanned {
            report.add_scanned(name);
        }
        let accounts = terraform::lint(&self.terraform, &mut report);
        for file in &self.yaml {
            for w in kubernetes::workloads(file) {
                workload::check(&w, &accounts, &mut report);
            }
        }
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

/// Lints files and directories together.
///
/// # Errors
///
/// The first [`LintError`] met; nothing is reported then.
pub fn lint_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Report, LintError> {
    let mut linter = Linter::new();
    for path in paths {
        linter.add_path(path)?;
    }
    Ok(linter.finish())
}

/// Lints one in-memory file (`name` ends in `.tf`, `.yaml` or `.yml`).
///
/// # Errors
///
/// [`LintError`] when the name is unsupported or the text does not parse.
pub fn lint_source(name: &str, text: &str) -> Result<Report, LintError> {
    let mut linter = Linter::new();
    linter.add_source(name, text)?;
    Ok(linter.finish())
}
