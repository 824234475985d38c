//! A parsed Terraform file and its `resource`/`data` blocks.
//!
//! Files are parsed with `hcl-rs`'s span-keeping parser (`hcl::edit::parser`),
//! so every block, attribute and expression knows its byte range; a finding's
//! line is the line of the exact attribute (or block) it is about.

use hcl::edit::structure::{Block, Body};
use hcl::edit::Span;

use crate::lint::error::LintError;
use crate::lint::lines::LineIndex;
use crate::report::Location;

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
