//! IAM trust policies (`aws_iam_role.assume_role_policy`) for EKS Pod Identity.
//!
//! A policy arrives in one of three shapes — `jsonencode({...})`, a JSON string
//! or heredoc, or a `data "aws_iam_policy_document"` — and is normalised into
//! [`TrustStatement`]s, which [`analyze`] judges: the statements that allow the
//! `pods.eks.amazonaws.com` service principal must, together, allow both
//! `sts:AssumeRole` and `sts:TagSession` (the Pod Identity agent's
//! `AssumeRoleForPodIdentity` tags the session), and should carry an
//! `aws:SourceAccount` or `aws:SourceArn` condition.

use hcl::edit::structure::Block;
use serde_json::Value;

use super::hcl_value::{attr, literal_str};

/// The service principal EKS Pod Identity uses.
pub(crate) const PODS_PRINCIPAL: &str = "pods.eks.amazonaws.com";

/// One statement of a trust policy, reduced to what the rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustStatement {
    /// `Effect` is `Allow` (the default of `aws_iam_policy_document`).
    pub(crate) allow: bool,
    /// `Action` entries (may contain wildcards).
    pub(crate) actions: Vec<String>,
    /// The statement uses `NotAction` instead of `Action`.
    pub(crate) not_action: bool,
    /// `Principal.Service` identifiers.
    pub(crate) services: Vec<String>,
    /// Condition keys (`aws:SourceAccount`, ...), as written.
    pub(crate) condition_keys: Vec<String>,
}

/// What a Pod Identity trust policy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustAnalysis {
    /// Every action allowed to the pods principal, as written.
    pub(crate) actions: Vec<String>,
    /// `sts:AssumeRole` is allowed.
    pub(crate) assume_role: bool,
    /// `sts:TagSession` is allowed.
    pub(crate) tag_session: bool,
    /// Every pods statement is restricted by `aws:SourceAccount` or `aws:SourceArn`.
    pub(crate) source_condition: bool,
}

/// Judges the statements; `None` when no `Allow` statement names the pods principal.
pub(crate) fn analyze(statements: &[TrustStatement]) -> Option<TrustAnalysis> {
    let pods: Vec<&TrustStatement> = statements
        .iter()
        .filter(|s| s.allow && s.services.iter().any(|p| names_pods_principal(p)))
        .collect();
    if pods.is_empty() {
        return None;
    }
    let actions: Vec<String> = pods
        .iter()
        .filter(|s| !s.not_action)
        .flat_map(|s| s.actions.iter().cloned())
        .collect();
    // A `NotAction` allow statement allows everything it does not list.
    let allowed = |wanted: &str| {
        actions.iter().any(|a| glob_match(a, wanted))
            || pods
                .iter()
                .any(|s| s.not_action && !s.actions.iter().any(|a| glob_match(a, wanted)))
    };
    let source_condition = pods.iter().all(|s| {
        s.condition_keys.iter().any(|k| {
            k.eq_ignore_ascii_case("aws:SourceAccount") || k.eq_ignore_ascii_case("aws:SourceArn")
        })
    });
    Some(TrustAnalysis {
        assume_role: allowed("sts:AssumeRole"),
        tag_session: allowed("sts:TagSession"),
        source_condition,
        actions,
    })
}

/// `pods.eks.amazonaws.com`, or `pods.eks.` followed by the partition's DNS
/// suffix (`${data.aws_partition.<name>.dns_suffix}`), which can only yield it
/// (or its equivalent in another partition).
fn names_pods_principal(identifier: &str) -> bool {
    let id = identifier.trim();
    if id.eq_ignore_ascii_case(PODS_PRINCIPAL) {
        return true;
    }
    let Some(rest) = id
        .strip_prefix("pods.eks.${")
        .and_then(|r| r.strip_suffix('}'))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.trim().split('.').collect();
    matches!(parts.as_slice(), ["data", "aws_partition", name, "dns_suffix"] if !name.is_empty())
}

/// IAM-style case-insensitive wildcard match (`*` any run, `?` one character).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Statements of a JSON policy document (`{"Statement": [...]}` or a single statement object).
pub(crate) fn statements_from_json(policy: &Value) -> Result<Vec<TrustStatement>, String> {
    let Some(statement) = get_ci(policy, "Statement") else {
        return Err("the policy has no Statement".to_owned());
    };
    let items: Vec<&Value> = match statement {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![statement],
        _ => return Err("Statement is neither a list nor an object".to_owned()),
    };
    Ok(items.into_iter().map(statement_from_json).collect())
}

fn statement_from_json(s: &Value) -> TrustStatement {
    let allow = get_ci(s, "Effect")
        .and_then(Value::as_str)
        .is_none_or(|e| e.eq_ignore_ascii_case("Allow"));
    let (actions, not_action) = match (get_ci(s, "Action"), get_ci(s, "NotAction")) {
        (Some(a), _) => (strings(a), false),
        (None, Some(na)) => (strings(na), true),
        (None, None) => (Vec::new(), false),
    };
    let services = match get_ci(s, "Principal") {
        Some(Value::Object(_)) => get_ci(get_ci(s, "Principal").unwrap_or(&Value::Null), "Service")
            .map(strings)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let condition_keys = match get_ci(s, "Condition") {
        Some(Value::Object(ops)) => ops
            .values()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().cloned())
            .collect(),
        _ => Vec::new(),
    };
    TrustStatement {
        allow,
        actions,
        not_action,
        services,
        condition_keys,
    }
}

/// Statements of a `data "aws_iam_policy_document"` block, `dynamic "statement"`
/// blocks over a literal collection included.
///
/// # Errors
///
/// A `dynamic "statement"` whose `for_each` is not a literal collection, unless
/// the other statements already allow the pods principal everything Pod
/// Identity needs (statements added by the loop cannot take an allow away).
pub(crate) fn statements_from_document(
    block: &Block,
    src: &str,
) -> Result<Vec<TrustStatement>, String> {
    let mut unresolved = None;
    let mut out: Vec<TrustStatement> = block
        .body
        .get_blocks("statement")
        .map(|st| statement_from_body(&st.body, src, &[]))
        .collect();
    for dynamic in block.body.get_blocks("dynamic") {
        let Some(label) = dynamic.labels.first().map(|l| l.as_str()) else {
            continue;
        };
        if label != "statement" {
            continue;
        }
        let Some(items) = for_each_items(&dynamic.body, src, &[]) else {
            unresolved = Some(
                "a dynamic \"statement\" block iterates over a value lint cannot evaluate"
                    .to_owned(),
            );
            continue;
        };
        let Some(content) = dynamic.body.get_blocks("content").next() else {
            continue;
        };
        for item in items {
            let env = [("statement".to_owned(), item)];
            out.push(statement_from_body(&content.body, src, &env));
        }
    }
    match unresolved {
        Some(reason) if !analyze(&out).is_some_and(|a| a.assume_role && a.tag_session) => {
            Err(reason)
        }
        _ => Ok(out),
    }
}

/// The elements of a `dynamic` block's `for_each` (map values for a map), if literal.
fn for_each_items(
    body: &hcl::edit::structure::Body,
    src: &str,
    env: &[(String, Value)],
) -> Option<Vec<Value>> {
    let each = attr(body, "for_each")?;
    match value_in(&each.value, src, env) {
        Value::Array(items) => Some(items),
        Value::Object(map) => Some(map.into_iter().map(|(_, v)| v).collect()),
        _ => None,
    }
}

/// An expression's value where `<iterator>.value...` refers to the current element.
fn value_in(expr: &hcl::edit::expr::Expression, src: &str, env: &[(String, Value)]) -> Value {
    if let Some(path) = super::hcl_value::traversal_path(expr) {
        if let [root, value, rest @ ..] = path.as_slice() {
            if let Some((_, item)) = env.iter().find(|(n, _)| n == root) {
                if value == "value" {
                    return rest
                        .iter()
                        .try_fold(item, |v, k| v.get(k))
                        .cloned()
                        .unwrap_or(Value::Null);
                }
            }
        }
    }
    if let hcl::edit::expr::Expression::FuncCall(call) = expr {
        // lookup(statement.value, "key", default)
        if call.name.name.value().as_str() == "lookup" {
            let args: Vec<_> = call.args.iter().collect();
            if let [m, k, rest @ ..] = args.as_slice() {
                let m = value_in(m, src, env);
                if let Some(k) = literal_str(k) {
                    return m.get(&k).cloned().unwrap_or_else(|| {
                        rest.first().map_or(Value::Null, |d| value_in(d, src, env))
                    });
                }
            }
        }
        if call.name.name.value().as_str() == "try" {
            for a in call.args.iter() {
                let v = value_in(a, src, env);
                if !v.is_null() && !v.as_str().is_some_and(|s| s.starts_with("${")) {
                    return v;
                }
            }
        }
    }
    match expr {
        hcl::edit::expr::Expression::Array(items) => {
            Value::Array(items.iter().map(|e| value_in(e, src, env)).collect())
        }
        hcl::edit::expr::Expression::Parenthesis(p) => value_in(p.inner(), src, env),
        _ => super::hcl_value::to_json(expr, src),
    }
}

fn statement_from_body(
    body: &hcl::edit::structure::Body,
    src: &str,
    env: &[(String, Value)],
) -> TrustStatement {
    let get = |b: &hcl::edit::structure::Body, k: &str, env: &[(String, Value)]| {
        attr(b, k).map(|a| value_in(&a.value, src, env))
    };
    let allow = get(body, "effect", env)
        .as_ref()
        .and_then(Value::as_str)
        .is_none_or(|e| e.eq_ignore_ascii_case("Allow"));
    let (actions, not_action) = match (get(body, "actions", env), get(body, "not_actions", env)) {
        (Some(a), _) => (strings(&a), false),
        (None, Some(na)) => (strings(&na), true),
        (None, None) => (Vec::new(), false),
    };
    // Static `principals` blocks, and `dynamic "principals"` over literal elements.
    let mut principals: Vec<(Option<Value>, Option<Value>)> = body
        .get_blocks("principals")
        .map(|p| (get(&p.body, "type", env), get(&p.body, "identifiers", env)))
        .collect();
    let mut conditions: Vec<Option<Value>> = body
        .get_blocks("condition")
        .map(|c| get(&c.body, "variable", env))
        .collect();
    for d in body.get_blocks("dynamic") {
        let Some(label) = d.labels.first().map(|l| l.as_str().to_owned()) else {
            continue;
        };
        let (Some(items), Some(content)) = (
            for_each_items(&d.body, src, env),
            d.body.get_blocks("content").next(),
        ) else {
            continue;
        };
        for item in items {
            let mut env2 = env.to_vec();
            env2.push((label.clone(), item));
            match label.as_str() {
                "principals" => principals.push((
                    get(&content.body, "type", &env2),
                    get(&content.body, "identifiers", &env2),
                )),
                "condition" => conditions.push(get(&content.body, "variable", &env2)),
                _ => {}
            }
        }
    }
    let services = principals
        .into_iter()
        .filter(|(t, _)| t.as_ref().and_then(Value::as_str) == Some("Service"))
        .filter_map(|(_, ids)| ids)
        .flat_map(|ids| strings(&ids))
        .collect();
    let condition_keys = conditions
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    TrustStatement {
        allow,
        actions,
        not_action,
        services,
        condition_keys,
    }
}

/// A string or a list of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Case-insensitive object member lookup (IAM keys are case-sensitive, but be lenient).
fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_like_iam() {
        assert!(glob_match("sts:*", "sts:TagSession"));
        assert!(glob_match("*", "sts:AssumeRole"));
        assert!(glob_match("STS:assumerole", "sts:AssumeRole"));
        assert!(glob_match("sts:Tag?ession", "sts:TagSession"));
        assert!(!glob_match(
            "sts:AssumeRole",
            "sts:AssumeRoleWithWebIdentity"
        ));
        assert!(!glob_match("s3:*", "sts:TagSession"));
    }

    #[test]
    fn analysis_unions_actions_across_pod_statements() {
        let policy = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}},
            {"Effect": "Allow", "Principal": {"Service": ["pods.eks.amazonaws.com"]}, "Action": ["sts:TagSession"],
             "Condition": {"ArnEquals": {"aws:SourceArn": "arn"}}},
        ]});
        let a = analyze(&statements_from_json(&policy).unwrap()).unwrap();
        assert!(a.assume_role && a.tag_session && a.source_condition);
    }

    #[test]
    fn non_pod_policies_are_ignored_and_deny_does_not_count() {
        let ec2 = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}});
        assert_eq!(analyze(&statements_from_json(&ec2).unwrap()), None);
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "*"}]});
        assert_eq!(analyze(&statements_from_json(&deny).unwrap()), None);
        assert!(statements_from_json(&json!({"Version": "2012-10-17"})).is_err());
    }

    #[test]
    fn not_action_allows_what_it_does_not_list() {
        let p = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "NotAction": "sts:TagSession"}]});
        let a = analyze(&statements_from_json(&p).unwrap()).unwrap();
        assert!(a.assume_role);
        assert!(!a.tag_session);
        assert!(!a.source_condition);
    }
}
