//! The workspace's module graphs: no import cycle and no file over 700 lines
//! in any crate's `src/`, and the provider's layers run one way
//! (config → source → cache → chain/provider). The checker is
//! `eks_pod_identity_testkit::module_graph`; the last tests here show that
//! it finds what it must on planted trees, so the crate checks cannot pass
//! vacuously.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use eks_pod_identity_testkit::module_graph::{Layers, ModuleGraph, MAX_LINES};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn graph_of(src: &str) -> ModuleGraph {
    let dir = workspace().join(src);
    ModuleGraph::read(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
}

/// The provider's layers. Each top-level module sits at a level and imports
/// only from its own level and below (and never from the crate root, which
/// re-exports everything).
const PROVIDER_LAYERS: Layers<'static> = Layers {
    levels: &[
        ("context", 0),
        ("support", 0),
        ("error", 0),
        ("status", 0),
        ("config", 0),
        ("protocol", 0),
        ("source", 1),
        ("cache", 2),
        ("provider", 3),
        ("chain", 4),
        ("test_util", 4),
    ],
    // The cache depends only on the source trait, the schedule, time and
    // error: not on the settings.
    forbidden: &[("cache", "config")],
};

#[test]
fn provider_has_no_import_cycle_and_no_file_over_700_lines() {
    let graph = graph_of("crates/provider/src");
    let problems = graph.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A cycle check alone would allow, say, `source` to depend on `cache` as
/// long as `cache` does not depend back.
#[test]
fn provider_layers_run_one_way() {
    let graph = graph_of("crates/provider/src");
    // The check sees the real edges (so it cannot pass on an empty graph).
    assert!(
        graph.depends_on("crate::chain", "crate::source::agent"),
        "{graph:?}"
    );
    assert!(
        graph.depends_on("crate::cache::refreshing", "crate::source"),
        "{graph:?}"
    );
    let wrong = graph.layer_violations(&PROVIDER_LAYERS);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn doctor_has_no_import_cycle_and_no_file_over_700_lines() {
    let graph = graph_of("crates/doctor/src");
    let modules = graph.modules();
    assert!(modules.len() > 25, "found only {} modules", modules.len());
    // The graph is not empty: the checker sees the crate's real imports.
    assert!(graph.depends_on("crate::lint::terraform", "crate::lint::eval"));
    // The binary is its own crate (it only calls the library): not a module,
    // but its length counts.
    assert!(!modules.contains(&"crate::main".to_owned()), "{modules:?}");
    let problems = graph.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn testkit_has_no_import_cycle_and_no_file_over_700_lines() {
    let graph = graph_of("crates/testkit/src");
    assert!(graph.modules().len() > 20, "{:?}", graph.modules());
    assert!(graph.depends_on("crate::agent::respond", "crate::timefmt"));
    assert!(graph.depends_on("crate::stack::moto", "crate::agent"));
    let problems = graph.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn facade_has_no_import_cycle_and_no_file_over_700_lines() {
    let graph = graph_of("src");
    assert!(graph.depends_on("crate::setup", "crate::default_chain"));
    let problems = graph.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker finds a cycle, a cycle through a root re-export, and an
/// over-long file, on files it reads from disk.
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
    let problems = ModuleGraph::read(src).expect("readable").problems();
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

fn components(graph: &ModuleGraph) -> Vec<Vec<String>> {
    graph.cycles().into_iter().map(|c| c.modules).collect()
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_checker_finds_cycles_through_use_super_and_inline_paths() {
    // report -> rules (use) and rules -> report (inline path): a cycle.
    let graph = ModuleGraph::from_sources(&[
        ("lib.rs", "mod report;\nmod rules;\n"),
        ("report.rs", "use crate::rules::Rule;\n"),
        (
            "rules.rs",
            "// use crate::report::Ignored;\nconst S: &str = \"crate::report::X\";\nfn f() { crate::report::g(); }\n",
        ),
    ]);
    assert_eq!(components(&graph), [["crate::report", "crate::rules"]]);

    // A parent naming its child and the child using `super::` items: a cycle;
    // the child naming a sibling through `super::` is not.
    let graph = ModuleGraph::from_sources(&[
        ("lib.rs", "mod check;\n"),
        (
            "check/mod.rs",
            "mod imds;\nmod probe;\nfn run() { imds::probe(); }\n",
        ),
        ("check/imds.rs", "use super::{probe::Probe, prefix};\n"),
        ("check/probe.rs", "pub struct Probe;\n"),
    ]);
    assert_eq!(
        graph.imports("crate::check::imds"),
        Some(names(&["crate::check", "crate::check::probe"]))
    );
    assert_eq!(components(&graph), [["crate::check", "crate::check::imds"]]);

    // Test modules, comments and strings do not count.
    let graph = ModuleGraph::from_sources(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::X;\n"),
        (
            "b.rs",
            "/* crate::a::Y */ pub struct X;\nconst C: char = '\"';\nconst R: &str = r#\"crate::a\"#;\n#[cfg(test)]\nmod tests {\n    use crate::a::Y;\n}\n",
        ),
    ]);
    assert!(graph.depends_on("crate::a", "crate::b"));
    assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
}

/// The rest of the syntax the checker must read: `self::` and chained
/// `super::`, `use` trees with `self`, aliases and globs, `pub use child::`
/// re-exports, inline modules, byte and raw strings with quotes in them,
/// escaped char literals, `#[cfg(test)]` on a single `use` or function,
/// and binaries.
#[test]
fn the_checker_reads_paths_trees_and_literals() {
    let graph = ModuleGraph::from_sources(&[
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\npub use a::deep::Item as Renamed;\n",
        ),
        ("main.rs", "use crate::b::Z;\nfn main() { crate::c::f(); }\n"),
        ("bin/tool.rs", "use crate::c::X;\n"),
        ("a/mod.rs", "pub mod deep;\nuse self::deep::{self as d, *};\n"),
        (
            "a/deep.rs",
            "use super::super::b::{Q as R, c_like};\nconst B: &[u8] = br#\"\"crate::c\"\"#;\n",
        ),
        (
            "b.rs",
            "const Q: char = '\\'';\nfn g() { let _ = \"\\\"crate::c\"; }\nmod inline {\n    use super::Q;\n    fn h() { super::super::c::f(); }\n}\n",
        ),
        (
            "c.rs",
            "#[cfg(test)]\nuse crate::a::deep::T;\n#[cfg(test)]\nfn t() { crate::b::g(); }\npub fn f() {}\n",
        ),
    ]);
    assert_eq!(
        graph.modules(),
        [
            "crate",
            "crate::a",
            "crate::a::deep",
            "crate::b",
            "crate::c"
        ]
    );
    assert_eq!(graph.imports("crate"), Some(names(&["crate::a::deep"])));
    assert_eq!(graph.imports("crate::a"), Some(names(&["crate::a::deep"])));
    assert_eq!(graph.imports("crate::a::deep"), Some(names(&["crate::b"])));
    // `super::Q` inside `mod inline` is `b` itself; `super::super::c` is `c`.
    assert_eq!(graph.imports("crate::b"), Some(names(&["crate::c"])));
    assert_eq!(graph.imports("crate::c"), Some(BTreeSet::new()));
    assert_eq!(graph.imports("crate::main"), None);
    assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
}

/// A module that imports from a layer above its own, or from the crate root,
/// or across a forbidden pair, is reported; imports downward are not.
#[test]
fn the_checker_finds_layer_violations() {
    let graph = ModuleGraph::from_sources(&[
        (
            "lib.rs",
            "mod cache;\nmod config;\nmod docs;\nmod source;\npub use source::Source;\n",
        ),
        ("config.rs", "pub struct Settings;\n"),
        (
            "source/mod.rs",
            "mod agent;\npub trait Source {}\nuse crate::config::Settings;\n",
        ),
        ("source/agent.rs", "fn f() { crate::cache::refresh(); }\n"),
        (
            "cache.rs",
            "use crate::source::Source;\nuse crate::config::Settings;\nfn r() -> crate::Source {}\n",
        ),
        ("docs.rs", "use crate::cache;\n"),
    ]);
    let layers = Layers {
        levels: &[("config", 0), ("source", 1), ("cache", 2)],
        forbidden: &[("cache", "config")],
    };
    assert_eq!(
        graph.layer_violations(&layers),
        [
            "crate::cache imports crate (the crate root re-exports every layer)",
            "crate::cache imports crate::config (`cache` must not depend on `config`)",
            "crate::source::agent imports crate::cache (layer `cache` (2) is above `source` (1))",
        ]
    );
    // Without the extra pair, cache → config is a downward import.
    let levels_only = Layers {
        forbidden: &[],
        ..layers
    };
    assert_eq!(graph.layer_violations(&levels_only).len(), 2);
}
