//! Why a lint could not run.
//!
//! `Display` says what the lint knows (the path); `source()` gives the
//! cause (the I/O error): the CLI prints the chain.

use std::io;
use std::path::PathBuf;

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
    #[error("{}: cannot read", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file given explicitly is not one the lint reads.
    #[error("{}: unsupported file type (expected .tf, .tf.json, .tfvars, .yaml, .yml or .json)", path.display())]
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
    /// Every file found was skipped (none parsed): the reasons, one per file.
    #[error("nothing could be read: {}", skipped.join("; "))]
    NothingReadable {
        /// `file: reason` for each skipped file.
        skipped: Vec<String>,
    },
    /// A file is a template (Helm/Go `{{ }}`, Terraform `%{ }`), not plain YAML/HCL.
    #[error("{path}: {what}; render it first and lint the output")]
    Template {
        /// The file.
        path: String,
        /// What kind of template it looks like.
        what: String,
    },
    /// A JSON file (`.tf.json` or a manifest) is not valid JSON.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
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

#[cfg(test)]
mod tests {
    use super::LintError;
    use std::error::Error;
    use std::io;

    /// The path is this layer's; the I/O error is the source, not repeated.
    #[test]
    fn io_names_the_path_and_leaves_the_io_error_to_source() {
        let cause = io::Error::from(io::ErrorKind::PermissionDenied).to_string();
        let err = LintError::Io {
            path: "infra/nodes.tf".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(err.to_string(), "infra/nodes.tf: cannot read");
        assert!(!err.to_string().contains(&cause), "{err}");
        let source = err.source().expect("the I/O error is the source");
        assert_eq!(source.to_string(), cause);
        assert_eq!(
            source.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied)
        );
    }
}
