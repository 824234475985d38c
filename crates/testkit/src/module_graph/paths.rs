//! Paths in code, and the module each one names.

use super::lex::Tok;

/// A module path such as `["cache", "state"]` (the crate root is `[]`).
pub(super) type ModPath = Vec<String>;

/// A path as written, and the inline modules (`mod x { .. }`, relative to
/// the file's module) it was written in.
pub(super) struct Written {
    pub(super) scope: Vec<String>,
    pub(super) path: Vec<String>,
}

/// Every path of two or more segments (`a::b`, `use a::{b, c::d}` expanded),
/// and every `use` of a single name, in `toks`.
pub(super) fn paths_in(toks: &[Tok]) -> Vec<Written> {
    let mut found = Vec::new();
    // Open inline modules: name and the brace depth inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(m) if m == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(u) if u == "use" => {
                let scope: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                let mut paths = Vec::new();
                i = path_tree(toks, i + 1, &[], &mut paths);
                found.extend(paths.into_iter().map(|path| Written {
                    scope: scope.clone(),
                    path,
                }));
                continue;
            }
            Tok::Ident(_)
                if toks.get(i + 1) == Some(&Tok::Sep) && (i == 0 || toks[i - 1] != Tok::Sep) =>
            {
                let scope: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                let mut paths = Vec::new();
                i = path_tree(toks, i, &[], &mut paths);
                found.extend(paths.into_iter().map(|path| Written {
                    scope: scope.clone(),
                    path,
                }));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Parses a path or a use tree at `i` (`a::b::{c, d::e as f, self}`); pushes
/// every full path into `out`; returns the index after it.
fn path_tree(toks: &[Tok], mut i: usize, prefix: &[String], out: &mut Vec<ModPath>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Close) | None => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Comma | Tok::Punct(_) | Tok::Sep | Tok::Semi | Tok::Open) => {
                            i += 1
                        }
                        Some(Tok::Ident(s)) if s == "as" => i += 2,
                        Some(Tok::Ident(_)) => i = path_tree(toks, i, &path, out),
                    }
                }
                return i;
            }
            _ => break,
        }
        if toks.get(i) == Some(&Tok::Sep) {
            i += 1;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// The deepest module of the crate that `path`, written in `scope` (inline
/// modules) of the file module `module`, names; `None` for a path that
/// starts elsewhere (another crate, a type, a local item).
pub(super) fn resolve(
    module: &ModPath,
    written: &Written,
    is_module: impl Fn(&ModPath) -> bool,
) -> Option<ModPath> {
    let mut at: ModPath = module.iter().chain(&written.scope).cloned().collect();
    let mut segs = written.path.iter().peekable();
    match segs.peek()?.as_str() {
        "crate" => {
            at.clear();
            segs.next();
        }
        "self" => {
            segs.next();
        }
        "super" => {}
        first => {
            // A child module (`child::f()`, `pub use child::Item`); any other
            // first name is another crate, a type or a local item.
            let mut child = at.clone();
            child.push(first.to_owned());
            if !is_module(&child) {
                return None;
            }
        }
    }
    for seg in segs {
        match seg.as_str() {
            "super" => {
                at.pop()?;
            }
            "self" => {}
            _ => {
                let mut deeper = at.clone();
                deeper.push(seg.clone());
                if !is_module(&deeper) {
                    break;
                }
                at = deeper;
            }
        }
    }
    // Inside an inline module: it belongs to its file's module.
    while !at.is_empty() && !is_module(&at) {
        at.pop();
    }
    Some(at)
}
