//! The crate's module graph: no import cycle, and no source file over 700 lines.
//!
//! A module (one file under `src/`) depends on another when its non-test code
//! names it in a path: `use crate::a::b`, `use super::x`, `pub use child::Y`,
//! or an inline `child::f()` / `crate::a::f()` / `super::g()`. A path counts
//! for the deepest module it reaches, so `use super::file::TfFile` is an edge
//! to `file`, not to its parent. Declaring a child (`mod x;`) is containment,
//! not an edge. Comments, string literals and the trailing `#[cfg(test)] mod
//! tests` are ignored. Any strongly connected component of two or more
//! modules is a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MAX_LINES: usize = 700;

type ModPath = Vec<String>;

/// Blanks comments and string/char literals (keeps line structure).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The source without its trailing `#[cfg(test)] mod tests { .. }`.
fn without_tests(src: &str) -> &str {
    let mut offset = 0;
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_end() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.starts_with("mod ") || l.starts_with("pub(crate) mod "))
        {
            return &src[..offset];
        }
        offset += line.len();
    }
    src
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
            continue;
        }
        if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok::Sep);
            i += 2;
            continue;
        }
        match c {
            '{' => out.push(Tok::Open),
            '}' => out.push(Tok::Close),
            ',' => out.push(Tok::Comma),
            c if c.is_whitespace() => {}
            _ => out.push(Tok::Other),
        }
        i += 1;
    }
    out
}

/// Parses a path (or a use tree) at `i`; pushes every full path into `out`;
/// returns the index after it.
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
                        Some(Tok::Comma) | Some(Tok::Other) => i += 1,
                        Some(Tok::Ident(s)) if s == "as" => i += 2,
                        _ => i = path_tree(toks, i, &path, out),
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
    out.push(path);
    i
}

/// Every module's dependencies on the other modules.
fn graph(modules: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut edges = BTreeMap::new();
    for (module, src) in modules {
        let toks = tokens(&strip(without_tests(src)));
        let mut paths = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let starts_path = matches!(&toks[i], Tok::Ident(_))
                && toks.get(i + 1) == Some(&Tok::Sep)
                && (i == 0 || toks[i - 1] != Tok::Sep);
            if starts_path {
                i = path_tree(&toks, i, &[], &mut paths);
            } else {
                i += 1;
            }
        }
        let mut deps = BTreeSet::new();
        for path in paths {
            let mut at: ModPath = module.clone();
            let mut segs = path.iter().peekable();
            match segs.peek().map(|s| s.as_str()) {
                Some("crate") => {
                    at.clear();
                    segs.next();
                }
                Some("super") => {
                    while segs.peek().map(|s| s.as_str()) == Some("super") {
                        at.pop();
                        segs.next();
                    }
                }
                Some("self") => {
                    segs.next();
                }
                Some(first) => {
                    let mut child = module.clone();
                    child.push(first.to_owned());
                    if !modules.contains_key(&child) {
                        continue; // another crate, a type, an enum variant, ...
                    }
                }
                None => continue,
            }
            for seg in segs {
                if seg == "self" {
                    continue;
                }
                let mut deeper = at.clone();
                deeper.push(seg.clone());
                if !modules.contains_key(&deeper) {
                    break;
                }
                at = deeper;
            }
            if &at != module {
                deps.insert(at);
            }
        }
        edges.insert(module.clone(), deps);
    }
    edges
}

/// The strongly connected components of two or more modules (Tarjan).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = s.edges.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(format!("crate::{}", w.join("::")));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn module_path(rel: &Path) -> ModPath {
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<ModPath, (String, usize)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = text.lines().count();
            let rel = path.strip_prefix(root).unwrap();
            if rel == Path::new("main.rs") {
                // The binary is its own crate; it only calls the library.
                assert!(lines <= MAX_LINES);
                continue;
            }
            out.insert(module_path(rel), (text, lines));
        }
    }
}

fn sources(files: &[(&str, &str)]) -> BTreeMap<ModPath, String> {
    files
        .iter()
        .map(|(path, text)| (module_path(Path::new(path)), (*text).to_owned()))
        .collect()
}

#[test]
fn the_checker_finds_cycles_through_use_super_and_inline_paths() {
    // report -> rules (use) and rules -> report (inline path): a cycle.
    let modules = sources(&[
        ("lib.rs", "mod report;\nmod rules;\n"),
        ("report.rs", "use crate::rules::Rule;\n"),
        (
            "rules.rs",
            "// use crate::report::Ignored;\nconst S: &str = \"crate::report::X\";\nfn f() { crate::report::g(); }\n",
        ),
    ]);
    assert_eq!(
        cycles(&graph(&modules)),
        [["crate::report", "crate::rules"]]
    );

    // A parent naming its child and the child using `super::` items: a cycle;
    // the child naming a sibling through `super::` is not.
    let modules = sources(&[
        ("lib.rs", "mod check;\n"),
        (
            "check/mod.rs",
            "mod imds;\nmod probe;\nfn run() { imds::probe(); }\n",
        ),
        ("check/imds.rs", "use super::{probe::Probe, prefix};\n"),
        ("check/probe.rs", "pub struct Probe;\n"),
    ]);
    let edges = graph(&modules);
    let imds = vec!["check".to_owned(), "imds".to_owned()];
    assert_eq!(
        edges[&imds],
        BTreeSet::from([
            vec!["check".to_owned()],
            vec!["check".to_owned(), "probe".to_owned()]
        ])
    );
    assert_eq!(cycles(&edges), [["crate::check", "crate::check::imds"]]);

    // Test modules, comments and strings do not count.
    let modules = sources(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::X;\n"),
        (
            "b.rs",
            "/* crate::a::Y */ pub struct X;\nconst C: char = '\"';\nconst R: &str = r#\"crate::a\"#;\n#[cfg(test)]\nmod tests {\n    use crate::a::Y;\n}\n",
        ),
    ]);
    assert!(cycles(&graph(&modules)).is_empty());
}

#[test]
fn src_has_no_import_cycle_and_no_file_over_700_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|(_, (_, lines))| *lines > MAX_LINES)
        .map(|(m, (_, lines))| format!("crate::{} ({lines} lines)", m.join("::")))
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");

    let modules: BTreeMap<ModPath, String> =
        files.into_iter().map(|(m, (text, _))| (m, text)).collect();
    assert!(modules.len() > 25, "found only {} modules", modules.len());
    let edges = graph(&modules);
    // The graph is not empty: the checker sees the crate's real imports.
    let lint_terraform = vec!["lint".to_owned(), "terraform".to_owned()];
    assert!(edges[&lint_terraform].contains(&vec!["lint".to_owned(), "eval".to_owned()]));
    let found = cycles(&edges);
    assert!(found.is_empty(), "import cycles: {found:?}");
}
