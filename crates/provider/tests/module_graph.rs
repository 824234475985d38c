//! The module graph of `src/`: no import cycle, and no file over 700 lines.
//!
//! Reads the source files (no compiler help): every `crate::…`, `super::…`
//! and `self::…` path outside `#[cfg(test)]` modules and comments is an edge
//! from the file's module to the deepest module the path names. A path to
//! an item re-exported at the crate root (`crate::Foo`) is an edge to the
//! root, which depends on every module: so modules must import from the
//! module that defines an item, and the check keeps the layers
//! (config → source → cache → chain/provider) one-way.
//!
//! `cargo test -p eks-pod-identity-provider --test module_graph` checks
//! this crate; add `-- --ignored` to check the other crates of the workspace
//! with the same rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

/// A module path such as `["cache", "state"]` (the crate root is `[]`).
type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
        parts.push(stem.to_owned());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments, string contents and `#[cfg(test)]`
/// items (unit tests may use anything).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let line = strip_strings(line);
        if skip_depth.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if pending_test && skip_depth.is_none() {
            if opens > 0 {
                skip_depth = Some(depth);
                pending_test = false;
            } else if line.trim_end().ends_with(';') {
                // `#[cfg(test)] use …;` or `mod tests;`
                pending_test = false;
                continue;
            }
        }
        depth += opens - closes;
        match skip_depth {
            Some(d) if depth <= d => {
                skip_depth = None;
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        if skip_depth.is_none() && !pending_test {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Replaces the contents of string and char literals with spaces.
fn strip_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                out.push('"');
                continue;
            }
            out.push(' ');
        } else {
            if c == '"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    out
}

/// Every path starting with `crate`, `super` or `self`, and every `use`
/// path (a `use` path that starts with a name is relative to the module),
/// with `use` groups (`a::{b, c::{d}}`) expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let after_colons = i >= 2 && chars[i - 2] == ':' && chars[i - 1] == ':';
        if after_word || after_colons {
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if rest.starts_with("use ") {
            let (found, end) = parse_path(&chars, skip_ws(&chars, i + 3));
            for mut path in found {
                if !matches!(
                    path.first().map(String::as_str),
                    Some("crate" | "self" | "super")
                ) {
                    path.insert(0, "self".to_owned());
                }
                paths.push(path);
            }
            i = end.max(i + 1);
        } else if ["crate::", "super::", "self::"]
            .iter()
            .any(|h| rest.starts_with(h))
        {
            let (found, end) = parse_path(&chars, i);
            paths.extend(found);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

fn ident_at(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Parses `a::b::{c, d::e}` at `i`; returns the expanded paths and the end.
fn parse_path(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        i = skip_ws(chars, i);
        if i < chars.len() && chars[i] == '{' {
            let mut all = Vec::new();
            i += 1;
            loop {
                i = skip_ws(chars, i);
                if i >= chars.len() {
                    return (all, i);
                }
                if chars[i] == '}' {
                    return (all, i + 1);
                }
                if chars[i] == ',' {
                    i += 1;
                    continue;
                }
                let (inner, end) = parse_path(chars, i);
                for p in inner {
                    let mut full = prefix.clone();
                    // `self` inside a group names the group's own prefix.
                    full.extend(p.into_iter().filter(|s| s != "self"));
                    all.push(full);
                }
                // Skip an `as alias`.
                i = skip_ws(chars, end);
                let (word, after) = ident_at(chars, i);
                if word == "as" {
                    let (_, after_alias) = ident_at(chars, skip_ws(chars, after));
                    i = after_alias;
                }
                if end == i && i < chars.len() && chars[i] != ',' && chars[i] != '}' {
                    i += 1;
                }
            }
        }
        let (word, end) = ident_at(chars, i);
        if word.is_empty() {
            return (vec![prefix], i);
        }
        prefix.push(word);
        i = end;
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// The deepest known module `path` names, seen from `from`.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let mut segments = path.iter();
    let mut base: Module = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => {
            let mut m = from.clone();
            m.pop()?;
            m
        }
        _ => return None,
    };
    for segment in segments {
        if segment == "super" {
            base.pop()?;
            continue;
        }
        let mut next = base.clone();
        next.push(segment.clone());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        format!("crate::{}", m.join("::"))
    }
}

/// The module graph of the crate whose sources are in `src`, and the files
/// over the size limit.
fn graph_of(src: &Path) -> (BTreeMap<Module, BTreeSet<Module>>, Vec<String>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut long_files = Vec::new();
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let lines = text.lines().count();
        if lines > MAX_LINES {
            long_files.push(format!(
                "{} has {lines} lines (limit {MAX_LINES})",
                file.display()
            ));
        }
        let from = module_of(src, file);
        let edges = graph.entry(from.clone()).or_default();
        for path in paths_in(&code_of(&text)) {
            if let Some(to) = resolve(&from, &path, &modules) {
                if to != from {
                    edges.insert(to);
                }
            }
        }
    }
    (graph, long_files)
}

/// The problems found in the crate whose sources are in `src`: files over
/// the size limit, and import cycles between modules.
fn check(src: &Path) -> Vec<String> {
    let (graph, mut problems) = graph_of(src);
    // Depth-first search; a grey node reached again closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        White,
        Grey,
        Black,
    }
    let mut marks: BTreeMap<&Module, Mark> = graph.keys().map(|m| (m, Mark::White)).collect();
    let mut cycles = BTreeSet::new();
    fn visit<'a>(
        m: &'a Module,
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<&'a Module, Mark>,
        stack: &mut Vec<&'a Module>,
        cycles: &mut BTreeSet<String>,
    ) {
        marks.insert(m, Mark::Grey);
        stack.push(m);
        for next in graph.get(m).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::Black) {
                Mark::White => visit(next, graph, marks, stack, cycles),
                Mark::Grey => {
                    let start = stack.iter().position(|s| *s == next).expect("on stack");
                    let mut cycle: Vec<String> = stack[start..].iter().map(|s| name(s)).collect();
                    cycle.push(name(next));
                    cycles.insert(cycle.join(" → "));
                }
                Mark::Black => {}
            }
        }
        stack.pop();
        marks.insert(m, Mark::Black);
    }
    for m in graph.keys() {
        if marks[m] == Mark::White {
            visit(m, &graph, &mut marks, &mut Vec::new(), &mut cycles);
        }
    }
    problems.extend(cycles.into_iter().map(|c| format!("import cycle: {c}")));
    problems
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn provider_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn provider_modules_have_no_import_cycle_and_no_file_over_700_lines() {
    let problems = check(&provider_src());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The layers run one way, config → source → cache → chain/provider:
/// no module imports from a layer above its own (or from the crate root,
/// which re-exports everything). A cycle check alone would allow, say,
/// `source` to depend on `cache` as long as `cache` does not depend back.
#[test]
fn provider_layers_run_one_way() {
    let (graph, _) = graph_of(&provider_src());
    let top = |m: &Module| m.first().cloned().unwrap_or_else(|| "crate".to_owned());
    // Each layer and what it must not import.
    let above = |layer: &str| -> &'static [&'static str] {
        match layer {
            "context" | "support" | "error" | "status" | "config" | "protocol" => {
                &["source", "cache", "chain", "provider", "test_util", "crate"]
            }
            "source" => &["cache", "chain", "provider", "test_util", "crate"],
            "cache" => &["config", "chain", "provider", "test_util", "crate"],
            "provider" => &["chain", "test_util", "crate"],
            "chain" | "test_util" => &["crate"],
            _ => &[],
        }
    };
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let (f, t) = (top(from), top(to));
            if f != t && above(&f).contains(&t.as_str()) {
                wrong.push(format!("{} imports {}", name(from), name(to)));
            }
        }
    }
    // The check sees the real edges (so it cannot pass on an empty graph).
    let edge = |from: &[&str], to: &[&str]| {
        let from: Module = from.iter().map(|s| s.to_string()).collect();
        let to: Module = to.iter().map(|s| s.to_string()).collect();
        graph.get(&from).is_some_and(|t| t.contains(&to))
    };
    assert!(edge(&["chain"], &["source", "agent"]), "{graph:?}");
    assert!(edge(&["cache", "refreshing"], &["source"]), "{graph:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The same rules for the other crates of the workspace (run with
/// `-- --ignored`; they are other crates' business, so not part of this
/// crate's default run).
#[test]
#[ignore = "checks the other crates of the workspace; run with --ignored"]
fn other_workspace_crates_have_no_import_cycle_and_no_file_over_700_lines() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for src in [
        root.join("src"),
        root.join("crates/doctor/src"),
        root.join("crates/testkit/src"),
    ] {
        problems.extend(check(&src));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself finds a cycle, a cycle through a root re-export, and
/// an over-long file (so the two checks above cannot pass vacuously).
#[test]
fn the_checker_finds_cycles_and_long_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\nmod c;\npub use c::Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub(crate) mod inner;\n").unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use crate::b::{self, B};\n// use crate::c; (a comment is no edge)\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "use crate::a::inner::X;\n#[cfg(test)]\nmod tests {\n    use crate::c::Y;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("c.rs"),
        format!(
            "fn f() {{ let _ = crate::Thing; }}\n{}",
            "\n".repeat(MAX_LINES)
        ),
    )
    .unwrap();
    let problems = check(src);
    let text = problems.join("\n");
    assert!(
        text.contains("import cycle: crate::a::inner → crate::b → crate::a::inner"),
        "{text}"
    );
    assert!(
        text.contains("import cycle: crate → crate::c → crate"),
        "{text}"
    );
    assert!(text.contains("c.rs has 701 lines"), "{text}");
    // The unit test's import in b.rs and the comment in a/inner.rs are no edges.
    assert!(!text.contains("crate::b → crate::c"), "{text}");
    assert_eq!(problems.len(), 3, "{text}");
}
