//! A crate's module graph, read from its sources: import cycles, files over
//! the size limit, and layers that must run one way.
//!
//! Reads the `.rs` files under a crate's `src/` (no compiler help). A module
//! (one file) depends on another when its code names it in a path:
//! `use crate::a::b`, `use super::x`, `use a::{b, c::d}`, `pub use child::Y`,
//! or an inline `crate::a::f()`, `super::g()`, `child::h()`. A path counts
//! for the deepest module it reaches, so `use super::file::TfFile` is an edge
//! to `file`, not to its parent, and `crate::Thing` (an item re-exported at
//! the crate root) is an edge to the root, which depends on the modules it
//! re-exports from: so a module that imports through a root re-export is
//! in a cycle with the root as soon as the root re-exports from it (or from
//! a module that depends on it), and must import from the module that
//! defines the item. Declaring a child (`mod x;`) is containment, not an
//! edge. Comments, string and char literals (raw ones too) and
//! `#[cfg(test)]` items (unit tests may use anything) are ignored; an
//! inline `mod x { .. }` belongs to its file.
//! Binaries (`src/main.rs` next to a `lib.rs`, `src/bin/`) are crates of
//! their own: only their length is checked.
//!
//! ```
//! use eks_pod_identity_testkit::module_graph::{Layers, ModuleGraph};
//!
//! let graph = ModuleGraph::from_sources(&[
//!     ("lib.rs", "mod config;\nmod source;\npub use config::Settings;\npub use source::Source;\n"),
//!     ("config.rs", "pub struct Settings;\n"),
//!     ("source.rs", "use crate::config::Settings;\npub trait Source {}\nfn f() { crate::Settings; }\n"),
//! ]);
//! assert!(graph.depends_on("crate::source", "crate::config"));
//! // `crate::Settings` goes through the root, which re-exports from `source`.
//! assert_eq!(graph.problems(), ["import cycle: crate → crate::source → crate"]);
//!
//! let layers = Layers { levels: &[("config", 0), ("source", 1)], forbidden: &[] };
//! assert_eq!(
//!     graph.layer_violations(&layers),
//!     ["crate::source imports crate (the crate root re-exports every layer)"]
//! );
//! ```

mod lex;
mod paths;
mod scc;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use paths::ModPath;

/// The most lines a source file may have.
pub const MAX_LINES: usize = 700;

/// Rules that keep a crate's layers one way, as data: top-level modules
/// (`config` for `crate::config` and everything under it) and their levels.
///
/// A module may import from its own level and below, never from a higher
/// one, and never from the crate root (which re-exports every layer).
/// Top-level modules without a level are free. `forbidden` adds pairs
/// `(importer, imported)` of top-level modules that must not depend on each
/// other whatever their levels.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// `(top-level module, level)`: lower levels sit below higher ones.
    pub levels: &'a [(&'a str, u32)],
    /// `(importer, imported)` top-level modules, forbidden in any case.
    pub forbidden: &'a [(&'a str, &'a str)],
}

/// An import cycle: modules that all depend on each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The strongly connected component, sorted (`crate::a`, `crate::b`).
    pub modules: Vec<String>,
    /// One shortest cycle through its first module, which is repeated at the
    /// end (`crate::a → crate::b → crate::a`).
    pub example: Vec<String>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "import cycle: {}", self.example.join(" → "))?;
        if self.modules.len() + 1 > self.example.len() {
            write!(f, " (the cycle's component: {})", self.modules.join(", "))?;
        }
        Ok(())
    }
}

/// A crate's modules, the modules each one imports, and its files' lengths.
#[derive(Debug, Clone)]
pub struct ModuleGraph {
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
    /// Every file (binaries too), as shown in messages, with its line count.
    lines: Vec<(String, usize)>,
}

/// A module's name: `crate` for the root, else `crate::a::b`.
fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        format!("crate::{}", m.join("::"))
    }
}

/// Parses a module's name (`crate`, `crate::a::b`, or `a::b`).
fn parse_name(name: &str) -> ModPath {
    let rest = name.strip_prefix("crate").unwrap_or(name);
    rest.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The module a file under `src/` holds; `None` for a binary's file.
fn module_of(rel: &Path, has_lib: bool) -> Option<ModPath> {
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.trim_end_matches(".rs");
    let at_top = parts.is_empty();
    match stem {
        "main" if at_top && has_lib => return None,
        "lib" | "main" if at_top => {}
        "mod" => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

impl ModuleGraph {
    /// Reads the crate whose sources are under `src` (a crate's `src/`).
    ///
    /// # Errors
    ///
    /// When a directory or file under `src` cannot be read.
    pub fn read(src: impl AsRef<Path>) -> io::Result<Self> {
        let src = src.as_ref();
        let mut files = Vec::new();
        rust_files(src, &mut files)?;
        files.sort();
        let mut sources = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            let rel = file
                .strip_prefix(src)
                .map_err(|e| io::Error::other(e.to_string()))?
                .to_path_buf();
            sources.push((rel, file.display().to_string(), text));
        }
        Ok(Self::build(sources))
    }

    /// The graph of a crate given as `(path under src/, text)` pairs, such as
    /// `("lib.rs", "mod a;")` and `("a/mod.rs", "..")`.
    pub fn from_sources(files: &[(&str, &str)]) -> Self {
        Self::build(
            files
                .iter()
                .map(|(path, text)| (PathBuf::from(path), (*path).to_owned(), (*text).to_owned()))
                .collect(),
        )
    }

    fn build(files: Vec<(PathBuf, String, String)>) -> Self {
        let has_lib = files.iter().any(|(rel, _, _)| rel == Path::new("lib.rs"));
        let mut lines = Vec::new();
        let mut texts = BTreeMap::new();
        for (rel, shown, text) in files {
            lines.push((shown, text.lines().count()));
            if let Some(module) = module_of(&rel, has_lib) {
                texts.insert(module, text);
            }
        }
        let is_module = |m: &ModPath| texts.contains_key(m);
        let mut edges = BTreeMap::new();
        for (module, text) in &texts {
            let deps: BTreeSet<ModPath> = paths::paths_in(&lex::code_tokens(text))
                .iter()
                .filter_map(|written| paths::resolve(module, written, is_module))
                .filter(|to| to != module)
                .collect();
            edges.insert(module.clone(), deps);
        }
        Self { edges, lines }
    }

    /// Every module, sorted (`crate`, `crate::a`, `crate::a::b`, ..).
    pub fn modules(&self) -> Vec<String> {
        self.edges.keys().map(name).collect()
    }

    /// The modules `module` (`crate::a::b`) imports; `None` if there is no
    /// such module.
    pub fn imports(&self, module: &str) -> Option<BTreeSet<String>> {
        let deps = self.edges.get(&parse_name(module))?;
        Some(deps.iter().map(name).collect())
    }

    /// Whether `from` imports `to` directly (names as in [`modules`](Self::modules)).
    pub fn depends_on(&self, from: &str, to: &str) -> bool {
        self.edges
            .get(&parse_name(from))
            .is_some_and(|deps| deps.contains(&parse_name(to)))
    }

    /// The import cycles, sorted by their first module.
    pub fn cycles(&self) -> Vec<Cycle> {
        scc::components(&self.edges)
            .into_iter()
            .map(|component| Cycle {
                example: scc::example_cycle(&self.edges, &component)
                    .iter()
                    .map(name)
                    .collect(),
                modules: component.iter().map(name).collect(),
            })
            .collect()
    }

    /// The files over `max` lines, as `path has N lines (limit max)`.
    pub fn long_files(&self, max: usize) -> Vec<String> {
        self.lines
            .iter()
            .filter(|(_, n)| *n > max)
            .map(|(file, n)| format!("{file} has {n} lines (limit {max})"))
            .collect()
    }

    /// Everything wrong with the crate: the files over [`MAX_LINES`] lines,
    /// then the import cycles. Empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.long_files(MAX_LINES);
        problems.extend(self.cycles().iter().map(Cycle::to_string));
        problems
    }

    /// The imports that break `layers`, as `crate::a imports crate::b (why)`.
    pub fn layer_violations(&self, layers: &Layers<'_>) -> Vec<String> {
        let level = |top: &str| {
            layers
                .levels
                .iter()
                .find(|(layer, _)| *layer == top)
                .map(|(_, level)| *level)
        };
        let mut wrong = Vec::new();
        for (from, targets) in &self.edges {
            let Some(f) = from.first() else { continue };
            for to in targets {
                let why = match to.first() {
                    None if level(f).is_some() => {
                        "the crate root re-exports every layer".to_owned()
                    }
                    None => continue,
                    Some(t) if t == f => continue,
                    Some(t) => match (level(f), level(t)) {
                        _ if layers.forbidden.contains(&(f.as_str(), t.as_str())) => {
                            format!("`{f}` must not depend on `{t}`")
                        }
                        (Some(lf), Some(lt)) if lt > lf => {
                            format!("layer `{t}` ({lt}) is above `{f}` ({lf})")
                        }
                        _ => continue,
                    },
                };
                wrong.push(format!("{} imports {} ({why})", name(from), name(to)));
            }
        }
        wrong
    }
}
