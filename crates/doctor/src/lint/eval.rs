//! Static evaluation of Terraform expressions, with provenance.
//!
//! `var.x` resolves to the value given in `terraform.tfvars` or `*.auto.tfvars`
//! of the same directory (the last file in name order wins, as in Terraform),
//! else to the variable's `default`; `local.x` resolves to its expression in a
//! `locals` block of the same directory; `merge()` of objects, `try()` and
//! `coalesce()` over known values are followed. Every value keeps the place
//! where it was written (a `file:line` and the chain of names it came through),
//! so a finding can say "hop limit 2, from `var.hop_limit` in `prod.auto.tfvars:3`".
//!
//! Anything else (resource attributes, `each.value`, other functions) is
//! [`Val::Unknown`]: the rules then say "cannot check" instead of guessing.

use std::collections::HashMap;
use std::path::Path;

use hcl::edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::edit::Span;

use super::hcl_value::{literal_str, source_text};
use super::terraform::file::TfFile;
use crate::report::Location;

/// A value as far as it can be known statically.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(i64),
    Str(String),
    List(Vec<Tv>),
    Map(Vec<(String, Tv)>),
    /// Known only at plan time; the source text.
    Unknown(String),
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tv {
    pub(crate) val: Val,
    /// Where the (innermost) expression producing the value is.
    pub(crate) at: Location,
    /// Names it was reached through, outermost first (`var.groups (terraform.tfvars)`).
    pub(crate) via: Vec<String>,
}

impl Tv {
    pub(crate) fn new(val: Val, at: Location) -> Self {
        Tv {
            val,
            at,
            via: Vec::new(),
        }
    }

    /// A member of a map value.
    pub(crate) fn get(&self, key: &str) -> Option<&Tv> {
        match &self.val {
            Val::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match &self.val {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match &self.val {
            Val::Bool(b) => Some(*b),
            Val::Str(s) if s == "true" => Some(true),
            Val::Str(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self.val, Val::Unknown(_))
    }

    /// ` (from var.x in terraform.tfvars:3)` when the value came through names; else empty.
    pub(crate) fn provenance(&self) -> String {
        if self.via.is_empty() {
            String::new()
        } else {
            format!(" (from {}, {})", self.via.join(" → "), self.at)
        }
    }

    /// How the value reads in evidence: `2`, `"required"`, or the unknown source text.
    pub(crate) fn show(&self) -> String {
        match &self.val {
            Val::Null => "null".to_owned(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => n.to_string(),
            Val::Str(s) => format!("\"{s}\""),
            Val::List(_) => "[...]".to_owned(),
            Val::Map(_) => "{...}".to_owned(),
            Val::Unknown(src) => src.clone(),
        }
    }
}

/// The directory of a linted path (`""` for a bare file name).
pub(crate) fn dir_of(path: &str) -> String {
    Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `a/./b/../c` → `a/c`, lexically (no file-system access).
pub(crate) fn normalize(path: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.last().is_some_and(|p| p != ".." && p != "/") {
                    parts.pop();
                } else {
                    parts.push("..".to_owned());
                }
            }
            Component::RootDir => parts.push(String::new()),
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    match parts.as_slice() {
        [only] if only.is_empty() => "/".to_owned(),
        _ => parts.join("/"),
    }
}

struct Binding<'a> {
    file: &'a TfFile,
    expr: &'a Expression,
    label: String,
}

/// Variables (with their tfvars values) and locals of every directory.
pub(crate) struct Scope<'a> {
    vars: HashMap<(String, String), Binding<'a>>,
    locals: HashMap<(String, String), Binding<'a>>,
}

const MAX_DEPTH: usize = 24;

impl<'a> Scope<'a> {
    /// Indexes `variable` defaults and `locals` of `files`, then `tfvars` files
    /// (given in name order; later ones override earlier ones).
    pub(crate) fn new(files: &'a [TfFile], tfvars: &'a [TfFile]) -> Self {
        let mut vars = HashMap::new();
        let mut locals = HashMap::new();
        let mut module_inputs = Vec::new();
        for file in files {
            let dir = dir_of(&file.path);
            for b in file.body.blocks() {
                match b.ident.value().as_str() {
                    "variable" => {
                        let Some(name) = b.labels.first() else {
                            continue;
                        };
                        if let Some(default) = b.body.get_attribute("default") {
                            let line = file.lines.line(default.span().map_or(0, |r| r.start));
                            vars.insert(
                                (dir.clone(), name.as_str().to_owned()),
                                Binding {
                                    file,
                                    expr: &default.value,
                                    label: format!(
                                        "var.{} (default, {}:{line})",
                                        name.as_str(),
                                        file.path
                                    ),
                                },
                            );
                        }
                    }
                    "module" => {
                        let source =
                            super::hcl_value::attr_str(&b.body, "source").unwrap_or_default();
                        if !(source.starts_with("./") || source.starts_with("../")) {
                            continue;
                        }
                        let target = normalize(&Path::new(&dir).join(&source));
                        let call = b.labels.first().map_or("", |l| l.as_str());
                        for a in b.body.attributes() {
                            let key = a.key.as_str();
                            if matches!(
                                key,
                                "source"
                                    | "version"
                                    | "count"
                                    | "for_each"
                                    | "providers"
                                    | "depends_on"
                            ) {
                                continue;
                            }
                            module_inputs.push((
                                (target.clone(), key.to_owned()),
                                Binding {
                                    file,
                                    expr: &a.value,
                                    label: format!("module.{call} input {key}"),
                                },
                            ));
                        }
                    }
                    "locals" => {
                        for a in b.body.attributes() {
                            locals.insert(
                                (dir.clone(), a.key.as_str().to_owned()),
                                Binding {
                                    file,
                                    expr: &a.value,
                                    label: format!("local.{}", a.key.as_str()),
                                },
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        for file in tfvars {
            let dir = dir_of(&file.path);
            for a in file.body.attributes() {
                vars.insert(
                    (dir.clone(), a.key.as_str().to_owned()),
                    Binding {
                        file,
                        expr: &a.value,
                        label: format!("var.{} ({})", a.key.as_str(), file.path),
                    },
                );
            }
        }
        // A module call's arguments override the module's variable defaults.
        vars.extend(module_inputs);
        Scope { vars, locals }
    }

    /// Evaluates `expr`, written in `file`.
    pub(crate) fn eval(&self, expr: &Expression, file: &TfFile) -> Tv {
        self.eval_depth(expr, file, 0)
    }

    fn at(file: &TfFile, node: &impl Span) -> Location {
        Location::file(
            &file.path,
            file.lines.line(node.span().map_or(0, |r| r.start)),
        )
    }

    fn unknown(expr: &Expression, file: &TfFile) -> Tv {
        Tv::new(
            Val::Unknown(source_text(expr, &file.src).to_owned()),
            Self::at(file, expr),
        )
    }

    fn eval_depth(&self, expr: &Expression, file: &TfFile, depth: usize) -> Tv {
        if depth > MAX_DEPTH {
            return Self::unknown(expr, file);
        }
        let at = || Self::at(file, expr);
        match expr {
            Expression::Null(_) => Tv::new(Val::Null, at()),
            Expression::Bool(b) => Tv::new(Val::Bool(*b.value()), at()),
            Expression::Number(n) => match n.value().as_i64() {
                Some(n) => Tv::new(Val::Num(n), at()),
                None => Self::unknown(expr, file),
            },
            Expression::String(_)
            | Expression::StringTemplate(_)
            | Expression::HeredocTemplate(_) => match literal_str(expr) {
                Some(s) => Tv::new(Val::Str(s), at()),
                None => Self::unknown(expr, file),
            },
            Expression::Parenthesis(p) => self.eval_depth(p.inner(), file, depth + 1),
            Expression::Array(a) => Tv::new(
                Val::List(
                    a.iter()
                        .map(|e| self.eval_depth(e, file, depth + 1))
                        .collect(),
                ),
                at(),
            ),
            Expression::Object(o) => {
                let mut entries = Vec::new();
                for (key, value) in o.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.value().as_str().to_owned(),
                        ObjectKey::Expression(e) => match literal_str(e) {
                            Some(s) => s,
                            None => match e {
                                Expression::Variable(v) => v.value().as_str().to_owned(),
                                Expression::Parenthesis(p) => self
                                    .eval_depth(p.inner(), file, depth + 1)
                                    .as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| {
                                        format!("${{{}}}", source_text(e, &file.src))
                                    }),
                                _ => format!("${{{}}}", source_text(e, &file.src)),
                            },
                        },
                    };
                    entries.push((key, self.eval_depth(value.expr(), file, depth + 1)));
                }
                Tv::new(Val::Map(entries), at())
            }
            Expression::Traversal(t) => {
                let mut ops = t.operators.iter().map(|o| o.value()).peekable();
                let (mut value, label) = match &t.expr {
                    Expression::Variable(root) => {
                        let table = match root.value().as_str() {
                            "var" => &self.vars,
                            "local" => &self.locals,
                            _ => return Self::unknown(expr, file),
                        };
                        let Some(TraversalOperator::GetAttr(name)) = ops.next() else {
                            return Self::unknown(expr, file);
                        };
                        let key = (dir_of(&file.path), name.value().as_str().to_owned());
                        let Some(binding) = table.get(&key) else {
                            return Self::unknown(expr, file);
                        };
                        (
                            self.eval_depth(binding.expr, binding.file, depth + 1),
                            Some(binding.label.clone()),
                        )
                    }
                    other => (self.eval_depth(other, file, depth + 1), None),
                };
                for op in ops {
                    let next = match op {
                        TraversalOperator::GetAttr(k) => value.get(k.value().as_str()).cloned(),
                        TraversalOperator::Index(i) => {
                            let idx = self.eval_depth(i, file, depth + 1);
                            match (&value.val, &idx.val) {
                                (Val::List(items), _) => idx
                                    .as_i64()
                                    .and_then(|n| usize::try_from(n).ok())
                                    .and_then(|n| items.get(n).cloned()),
                                (Val::Map(_), Val::Str(k)) => value.get(k).cloned(),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    match next {
                        Some(v) => value = v,
                        None => return Self::unknown(expr, file),
                    }
                }
                if let Some(label) = label {
                    value.via.insert(0, label);
                }
                value
            }
            Expression::FuncCall(call) => {
                let name = call.name.name.value().as_str();
                let args: Vec<Tv> = call
                    .args
                    .iter()
                    .map(|a| self.eval_depth(a, file, depth + 1))
                    .collect();
                match name {
                    "merge" => {
                        let mut entries: Vec<(String, Tv)> = Vec::new();
                        for arg in args {
                            match arg.val {
                                Val::Map(m) => {
                                    for (k, v) in m {
                                        entries.retain(|(e, _)| *e != k);
                                        entries.push((k, v));
                                    }
                                }
                                Val::Null => {}
                                _ => return Self::unknown(expr, file),
                            }
                        }
                        Tv::new(Val::Map(entries), at())
                    }
                    "try" | "coalesce" => args
                        .into_iter()
                        .find(|a| !a.is_unknown() && a.val != Val::Null)
                        .unwrap_or_else(|| Self::unknown(expr, file)),
                    "tomap" | "tolist" | "toset" | "tonumber" | "tostring" | "tobool" => {
                        match args.into_iter().next() {
                            Some(a) => a,
                            None => Self::unknown(expr, file),
                        }
                    }
                    _ => Self::unknown(expr, file),
                }
            }
            _ => Self::unknown(expr, file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::terraform::file::parse;

    fn files(srcs: &[(&str, &str)]) -> Vec<TfFile> {
        srcs.iter()
            .map(|(p, s)| parse(p, (*s).to_owned()).unwrap())
            .collect()
    }

    #[test]
    fn variables_prefer_tfvars_over_defaults_and_keep_provenance() {
        let tf = files(&[(
            "env/main.tf",
            "variable \"hops\" {\n  default = 1\n}\nlocals {\n  mo = { hop = var.hops, tokens = \"required\" }\n}\nx = local.mo.hop\ny = merge(local.mo, { tokens = \"optional\" }).tokens\n",
        )]);
        let vars = files(&[("env/terraform.tfvars", "hops = 2\n")]);
        let scope = Scope::new(&tf, &[]);
        let x = scope.eval(&tf[0].body.get_attribute("x").unwrap().value, &tf[0]);
        assert_eq!(x.as_i64(), Some(1));
        assert_eq!(x.at, Location::file("env/main.tf", 2));
        assert!(
            x.provenance().contains("var.hops (default, env/main.tf:2)"),
            "{}",
            x.provenance()
        );

        let scope = Scope::new(&tf, &vars);
        let x = scope.eval(&tf[0].body.get_attribute("x").unwrap().value, &tf[0]);
        assert_eq!(x.as_i64(), Some(2));
        assert_eq!(x.at, Location::file("env/terraform.tfvars", 1));
        assert!(x
            .provenance()
            .contains("local.mo → var.hops (env/terraform.tfvars)"));
        let y = scope.eval(&tf[0].body.get_attribute("y").unwrap().value, &tf[0]);
        assert_eq!(y.as_str(), Some("optional"));
    }

    #[test]
    fn other_directories_and_references_stay_unknown() {
        let tf = files(&[
            ("a/vars.tf", "variable \"hops\" {\n  default = 1\n}\n"),
            ("b/main.tf", "x = var.hops\ny = aws_instance.x.id\n"),
        ]);
        let scope = Scope::new(&tf, &[]);
        let x = scope.eval(&tf[1].body.get_attribute("x").unwrap().value, &tf[1]);
        assert_eq!(x.val, Val::Unknown("var.hops".to_owned()));
        let y = scope.eval(&tf[1].body.get_attribute("y").unwrap().value, &tf[1]);
        assert!(y.is_unknown());
    }
}
