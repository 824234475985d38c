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

use super::hcl_value::{attr, attr_str, literal_str, source_text};

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

fn names_pods_principal(identifier: &str) -> bool {
    identifier.trim().eq_ignore_ascii_case(PODS_PRINCIPAL)
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

/// Statements of a `data "aws_iam_policy_document"` block.
pub(crate) fn statements_from_document(block: &Block, src: &str) -> Vec<TrustStatement> {
    block
        .body
        .get_blocks("statement")
        .map(|st| {
            let body = &st.body;
            let allow = attr_str(body, "effect").is_none_or(|e| e.eq_ignore_ascii_case("Allow"));
            let (actions, not_action) = match (attr(body, "actions"), attr(body, "not_actions")) {
                (Some(a), _) => (hcl_strings(&a.value, src), false),
                (None, Some(na)) => (hcl_strings(&na.value, src), true),
                (None, None) => (Vec::new(), false),
            };
            let services = body
                .get_blocks("principals")
                .filter(|p| attr_str(&p.body, "type").is_some_and(|t| t == "Service"))
                .filter_map(|p| attr(&p.body, "identifiers"))
                .flat_map(|ids| hcl_strings(&ids.value, src))
                .collect();
            let condition_keys = body
                .get_blocks("condition")
                .filter_map(|c| attr(&c.body, "variable"))
                .map(|v| {
                    literal_str(&v.value).unwrap_or_else(|| source_text(&v.value, src).to_owned())
                })
                .collect();
            TrustStatement {
                allow,
                actions,
                not_action,
                services,
                condition_keys,
            }
        })
        .collect()
}

fn hcl_strings(expr: &hcl::edit::expr::Expression, src: &str) -> Vec<String> {
    strings(&super::hcl_value::to_json(expr, src))
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
