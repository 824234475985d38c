//! Reading values out of `hcl-rs` expressions (the span-keeping `hcl::edit` tree).
//!
//! Literals become JSON values; anything Terraform would only know at plan time
//! (references, function calls, interpolations) is kept as its source text
//! wrapped in `${...}`, so a rule can still show it as evidence.

use hcl::edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::edit::structure::{Attribute, Block, Body};
use hcl::edit::template::{Element, Template};
use hcl::edit::Span;
use serde_json::{Map, Number, Value};

/// The source text covered by `node`, trimmed (empty when it has no span).
pub(crate) fn source_text<'s>(node: &impl Span, src: &'s str) -> &'s str {
    node.span()
        .and_then(|r| src.get(r))
        .map(str::trim)
        .unwrap_or("")
}

/// A literal string value: a plain string, or a template without interpolations.
pub(crate) fn literal_str(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().clone()),
        Expression::StringTemplate(t) => literal_template(t),
        Expression::HeredocTemplate(h) => literal_template(&h.template),
        Expression::Parenthesis(p) => literal_str(p.inner()),
        _ => None,
    }
}

fn literal_template(t: &Template) -> Option<String> {
    let mut out = String::new();
    for element in t.iter() {
        match element {
            Element::Literal(s) => out.push_str(s.value()),
            _ => return None,
        }
    }
    Some(out)
}

/// A literal boolean (`true`/`false`, or the strings `"true"`/`"false"`).
pub(crate) fn literal_bool(expr: &Expression) -> Option<bool> {
    match expr {
        Expression::Bool(b) => Some(*b.value()),
        Expression::Parenthesis(p) => literal_bool(p.inner()),
        other => match literal_str(other)?.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    }
}

/// The text of a string or heredoc template; interpolations are kept as `${source}`.
pub(crate) fn template_text(t: &Template, src: &str) -> String {
    let mut out = String::new();
    for element in t.iter() {
        match element {
            Element::Literal(s) => out.push_str(s.value()),
            Element::Interpolation(i) => {
                out.push_str("${");
                out.push_str(source_text(&i.expr, src));
                out.push('}');
            }
            Element::Directive(_) => out.push_str("%{...}"),
        }
    }
    out
}

/// A string-ish expression's text (literal, template or heredoc), if it is one.
pub(crate) fn string_text(expr: &Expression, src: &str) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().clone()),
        Expression::StringTemplate(t) => Some(template_text(t, src)),
        Expression::HeredocTemplate(h) => Some(template_text(&h.template, src)),
        Expression::Parenthesis(p) => string_text(p.inner(), src),
        _ => None,
    }
}

/// The attribute path of a plain traversal: `data.aws_iam_policy_document.x.json`
/// → `["data", "aws_iam_policy_document", "x", "json"]`. Index operators are skipped.
pub(crate) fn traversal_path(expr: &Expression) -> Option<Vec<String>> {
    let Expression::Traversal(t) = expr else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    let mut path = vec![root.value().as_str().to_owned()];
    for op in &t.operators {
        match op.value() {
            TraversalOperator::GetAttr(ident) => path.push(ident.value().as_str().to_owned()),
            TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_) => {}
            _ => return None,
        }
    }
    Some(path)
}

/// Converts an expression to JSON, as `jsonencode` would for literal parts.
pub(crate) fn to_json(expr: &Expression, src: &str) -> Value {
    match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => {
            let n = n.value();
            n.as_i64()
                .map(Number::from)
                .or_else(|| n.as_u64().map(Number::from))
                .or_else(|| n.as_f64().and_then(Number::from_f64))
                .map_or(Value::Null, Value::Number)
        }
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::StringTemplate(t) => Value::String(template_text(t, src)),
        Expression::HeredocTemplate(h) => Value::String(template_text(&h.template, src)),
        Expression::Array(a) => Value::Array(a.iter().map(|e| to_json(e, src)).collect()),
        Expression::Object(o) => {
            let mut map = Map::new();
            for (key, value) in o.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.value().as_str().to_owned(),
                    ObjectKey::Expression(e) => {
                        literal_str(e).unwrap_or_else(|| format!("${{{}}}", source_text(e, src)))
                    }
                };
                map.insert(key, to_json(value.expr(), src));
            }
            Value::Object(map)
        }
        Expression::Parenthesis(p) => to_json(p.inner(), src),
        other => Value::String(format!("${{{}}}", source_text(other, src))),
    }
}

/// The first attribute named `key` in `body`.
pub(crate) fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Attribute> {
    body.get_attribute(key)
}

/// The first block named `ident` in `body`.
pub(crate) fn block<'b>(body: &'b Body, ident: &str) -> Option<&'b Block> {
    body.blocks().find(|b| b.has_ident(ident))
}

/// Follows nested blocks: `block_path(body, &["spec", "template", "spec"])`.
pub(crate) fn block_path<'b>(body: &'b Body, path: &[&str]) -> Option<&'b Block> {
    let (first, rest) = path.split_first()?;
    let mut current = block(body, first)?;
    for ident in rest {
        current = block(&current.body, ident)?;
    }
    Some(current)
}

/// A literal string attribute of `body`.
pub(crate) fn attr_str(body: &Body, key: &str) -> Option<String> {
    literal_str(&attr(body, key)?.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::edit::parser::parse_body;

    fn value_of(src: &str, key: &str) -> Value {
        let body = parse_body(src).unwrap();
        to_json(&attr(&body, key).unwrap().value, src)
    }

    #[test]
    fn literals_and_references_convert() {
        let src = "p = { Version = \"2012-10-17\", \"Statement\" = [{ Action = [\"a\", \"b-${var.x}\"], N = 2, R = aws_iam_role.r.arn }] }\n";
        let v = value_of(src, "p");
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(v["Statement"][0]["Action"][1], "b-${var.x}");
        assert_eq!(v["Statement"][0]["N"], 2);
        assert_eq!(v["Statement"][0]["R"], "${aws_iam_role.r.arn}");
    }

    #[test]
    fn traversals_and_literals() {
        let src = "a = data.aws_iam_policy_document.x.json\nb = \"1\"\nc = true\nd = <<EOF\n{\"k\": 1}\nEOF\n";
        let body = parse_body(src).unwrap();
        assert_eq!(
            traversal_path(&attr(&body, "a").unwrap().value).unwrap(),
            ["data", "aws_iam_policy_document", "x", "json"]
        );
        assert_eq!(attr_str(&body, "b").as_deref(), Some("1"));
        assert_eq!(literal_bool(&attr(&body, "c").unwrap().value), Some(true));
        assert_eq!(
            string_text(&attr(&body, "d").unwrap().value, src)
                .unwrap()
                .trim(),
            "{\"k\": 1}"
        );
    }
}
