//! Terraform JSON syntax (`.tf.json`): converted to native HCL text, then
//! parsed like a `.tf` file, with each generated line mapped back to the line
//! of the JSON key it came from.
//!
//! Inside `resource` and `data` bodies an object (or array of objects) is a
//! nested block, as Terraform's JSON syntax reads it for block types, except
//! for the map-valued arguments listed in [`MAP_ARGUMENTS`]. A string that is a
//! single `${ ... }` interpolation becomes that expression (so
//! `"${jsonencode({...})}"` is a `jsonencode` call, as Terraform reads it).

use serde_json::Value;

use super::file::TfFile;
use crate::lint::error::LintError;
use crate::lint::lines::LineIndex;

/// Object-valued arguments that are maps, not nested blocks.
const MAP_ARGUMENTS: &[&str] = &[
    "tags",
    "tags_all",
    "labels",
    "annotations",
    "data",
    "binary_data",
    "triggers",
    "variables",
    "environment",
    "parameters",
    "node_selector",
    "selector",
    "match_labels",
    "values",
];

struct Out<'j> {
    json: &'j str,
    text: String,
    /// JSON line of each generated line.
    map: Vec<u32>,
    line: u32,
}

impl Out<'_> {
    /// Moves the "current JSON line" to `"key"` searched from byte `from`; returns its offset.
    fn seek(&mut self, key: &str, from: usize) -> usize {
        let needle = format!("\"{key}\"");
        match self.json.get(from..).and_then(|t| t.find(&needle)) {
            Some(i) => {
                let at = from + i;
                self.line = 1 + self.json[..at].matches('\n').count() as u32;
                at
            }
            None => from,
        }
    }

    fn push_line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
        self.map.push(self.line);
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as an HCL expression on one line.
fn expr(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let inner = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'));
            match inner {
                Some(inner) if !inner.contains("${") && !inner.contains('\n') => {
                    format!("({inner})")
                }
                _ => quote(s),
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(expr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", quote(k), expr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn is_ident(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// Writes the body of a block; `blocks` says whether objects are nested blocks.
fn body(
    out: &mut Out<'_>,
    m: &serde_json::Map<String, Value>,
    from: usize,
    blocks: bool,
    indent: usize,
) {
    let pad = "  ".repeat(indent);
    for (k, v) in m {
        let at = out.seek(k, from);
        let nested = blocks && !MAP_ARGUMENTS.contains(&k.as_str()) && is_ident(k);
        match v {
            Value::Object(inner) if nested && k == "dynamic" => {
                for (label, content) in inner {
                    let at2 = out.seek(label, at);
                    out.push_line(&format!("{pad}dynamic {} {{", quote(label)));
                    if let Value::Object(c) = content {
                        body(out, c, at2, true, indent + 1);
                    }
                    out.push_line(&format!("{pad}}}"));
                }
            }
            Value::Object(inner) if nested => {
                out.push_line(&format!("{pad}{k} {{"));
                body(out, inner, at, true, indent + 1);
                out.push_line(&format!("{pad}}}"));
            }
            Value::Array(items)
                if nested && !items.is_empty() && items.iter().all(Value::is_object) =>
            {
                for item in items {
                    if let Value::Object(inner) = item {
                        out.push_line(&format!("{pad}{k} {{"));
                        body(out, inner, at, true, indent + 1);
                        out.push_line(&format!("{pad}}}"));
                    }
                }
            }
            _ if is_ident(k) => out.push_line(&format!("{pad}{k} = {}", expr(v))),
            _ => {}
        }
    }
}

/// Parses a `.tf.json` file.
pub(crate) fn parse(path: &str, json: &str) -> Result<TfFile, LintError> {
    let value: Value = serde_json::from_str(json).map_err(|e| LintError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let mut out = Out {
        json,
        text: String::new(),
        map: Vec::new(),
        line: 1,
    };
    let Value::Object(top) = value else {
        return Err(LintError::Json {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: "a .tf.json file must hold an object".to_owned(),
        });
    };
    for (kind, v) in &top {
        let at = out.seek(kind, 0);
        let labels = match kind.as_str() {
            "resource" | "data" => 2,
            "module" | "variable" | "output" | "provider" => 1,
            "locals" | "terraform" => 0,
            _ => continue,
        };
        emit_blocks(&mut out, kind, v, labels, Vec::new(), at);
    }
    let body = hcl::edit::parser::parse_body(&out.text).map_err(|e| LintError::Json {
        path: path.to_owned(),
        line: 1,
        column: 1,
        message: format!("cannot be read as Terraform: {}", e.message()),
    })?;
    Ok(TfFile {
        path: path.to_owned(),
        lines: LineIndex::new(&out.text).remapped(out.map),
        src: out.text,
        body,
    })
}

fn emit_blocks(
    out: &mut Out<'_>,
    kind: &str,
    v: &Value,
    labels: usize,
    mut have: Vec<String>,
    at: usize,
) {
    if have.len() == labels {
        let head = std::iter::once(kind.to_owned())
            .chain(have.iter().map(|l| quote(l)))
            .collect::<Vec<_>>()
            .join(" ");
        let items: Vec<&serde_json::Map<String, Value>> = match v {
            Value::Object(m) => vec![m],
            Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
            _ => return,
        };
        for m in items {
            out.push_line(&format!("{head} {{"));
            // Module arguments and locals are attributes; resource bodies hold blocks.
            body(
                out,
                m,
                at,
                matches!(kind, "resource" | "data" | "terraform"),
                1,
            );
            out.push_line("}");
        }
        return;
    }
    if let Value::Object(m) = v {
        for (label, inner) in m {
            let at2 = out.seek(label, at);
            have.push(label.clone());
            emit_blocks(out, kind, inner, labels, have.clone(), at2);
            have.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_nested_blocks_convert_with_json_lines() {
        let json = r#"{
  "resource": {
    "aws_launch_template": {
      "nodes": {
        "name_prefix": "n-",
        "metadata_options": {
          "http_tokens": "required",
          "http_put_response_hop_limit": 2
        },
        "tags": { "a": "b" }
      }
    }
  },
  "variable": { "x": { "default": "${var.y}" } }
}"#;
        let f = parse("main.tf.json", json).unwrap();
        let lt = f.body.blocks().find(|b| b.has_ident("resource")).unwrap();
        assert_eq!(lt.labels.len(), 2);
        let mo = lt
            .body
            .blocks()
            .find(|b| b.has_ident("metadata_options"))
            .unwrap();
        let hop = mo
            .body
            .get_attribute("http_put_response_hop_limit")
            .unwrap();
        use hcl::edit::Span;
        assert_eq!(f.lines.line(hop.span().unwrap().start), 8);
        assert!(lt.body.get_attribute("tags").is_some());
        assert!(parse("bad.tf.json", "{").is_err());
    }
}
