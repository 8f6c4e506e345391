//! The crate's layering, checked on every test run (docs/architecture.md "Layers").
//!
//! Reads every `src/**/*.rs`, finds the crate modules each file uses (`use crate::…`,
//! `crate::…` paths in code, `$crate::…` in macros, `super::…` resolved to its module,
//! `pub use` re-exports, `keywarden::…` in `main.rs`), maps them to their top-level
//! module and checks the result against `LAYERS`: no use runs from a lower layer to a
//! higher one unless `KNOWN_VIOLATIONS` lists it, the CLI never uses `ffi`, there is no
//! import cycle between top-level modules beyond the listed ones, and `unsafe` appears
//! only in `src/ffi/` and `src/backend/loader.rs`, each block under a `// SAFETY:`
//! comment. Run with `--no-capture` to see the cycles it reports.

mod layers_support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use layers_support::safety::{has_safety_comment, last_token_by_line, unsafe_sites, UnsafeKind};
use layers_support::{edges, read_crate, root_names, Edge, SrcFile};

/// Top-level modules by layer, top first. A module may use modules of its own layer
/// and of any layer below, never one above. Keep in step with docs/architecture.md.
const LAYERS: &[(&str, &[&str])] = &[
    // `main` is `src/main.rs`, the `keywarden` binary's root.
    ("front ends", &["ffi", "cli", "service", "main"]),
    ("the gateway pipeline", &["gateway"]),
    ("engines", &["policy", "lifecycle", "audit"]),
    // The three things outside the process Keywarden reads through safe interfaces:
    // the real token, the metadata store, the calling process.
    (
        "backend, store and caller facts",
        &["backend", "store", "identity"],
    ),
    (
        "config, error and utilities",
        &[
            "config",
            "error",
            "abi",
            "call",
            "functions",
            "functions_table",
            "coarse_clock",
            "fasthash",
            "fsguard",
            "logging",
            "pin_file",
            "wire",
        ],
    ),
];

/// Modules the project brief plans but `src/` does not have yet, with their layer,
/// so that their place is settled before they are written.
const PLANNED: &[(&str, &str)] = &[
    ("monitoring", "engines"),
    ("backup", "engines"),
    ("reports", "engines"),
];

/// A use that runs against the layering (upwards, or closing a cycle inside a layer).
struct Known {
    from: &'static str,
    to: &'static str,
    why: &'static str,
}

/// Dependencies allowed to run against the layering: none, and the list may only
/// shrink. An entry whose dependency no longer exists fails the check until it is
/// deleted here (and in docs/architecture.md). Never add an entry for new code: put
/// the item in the right layer instead.
const KNOWN_VIOLATIONS: &[Known] = &[];

/// Where `unsafe` may appear: a directory (ending in `/`) or a file.
const UNSAFE_ALLOWED: &[&str] = &["src/ffi/", "src/backend/loader.rs"];

struct Crate {
    files: Vec<SrcFile>,
    edges: Vec<Edge>,
}

fn read() -> Crate {
    let files = read_crate(Path::new(env!("CARGO_MANIFEST_DIR")));
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.top().map(str::to_owned))
        .collect();
    let edges = edges(&files, &tops, &root_names(&files));
    Crate { files, edges }
}

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, ms))| ms.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

fn known(from: &str, to: &str) -> Option<&'static Known> {
    KNOWN_VIOLATIONS
        .iter()
        .find(|k| k.from == from && k.to == to)
}

fn fail(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}:\n  {}\n",
        problems.join("\n  ")
    );
}

#[test]
fn every_module_has_a_layer() {
    let c = read();
    let mut problems = Vec::new();
    let tops: BTreeSet<&str> = c.files.iter().filter_map(SrcFile::top).collect();
    for f in &c.files {
        if let Some(top) = f.top() {
            if layer_of(top).is_none()
                && !problems
                    .iter()
                    .any(|p: &String| p.contains(&format!("`{top}`")))
            {
                problems.push(format!(
                    "{}: top-level module `{top}` has no layer: add it to LAYERS in \
                     tests/layers.rs and to the diagram in docs/architecture.md",
                    f.rel
                ));
            }
        }
    }
    for (_, ms) in LAYERS {
        for m in *ms {
            if !tops.contains(m) {
                problems.push(format!(
                    "LAYERS names `{m}`, which is not a module in src/: remove it (or move \
                     it to PLANNED)"
                ));
            }
        }
    }
    for (m, layer) in PLANNED {
        if tops.contains(m) {
            problems.push(format!(
                "`{m}` exists now: move it from PLANNED into LAYERS"
            ));
        }
        if !LAYERS.iter().any(|(name, _)| name == layer) {
            problems.push(format!("PLANNED puts `{m}` in unknown layer {layer:?}"));
        }
    }
    fail("modules without a layer", &problems);
}

#[test]
fn no_import_runs_up_the_layers() {
    let c = read();
    let mut problems = Vec::new();
    for e in &c.edges {
        let (Some((lf, nf)), Some((lt, nt))) = (layer_of(&e.from), layer_of(&e.to)) else {
            continue; // every_module_has_a_layer reports it.
        };
        if lt < lf && known(&e.from, &e.to).is_none() {
            problems.push(format!(
                "{}:{}: `{}` ({nf}) uses `crate::{}` ({nt}), a layer above it{}. Move what \
                 it needs down to `{}`'s layer or below, or pass it in from above; \
                 KNOWN_VIOLATIONS is not for new code",
                e.file,
                e.line,
                e.from,
                e.to,
                if e.test { ", in test code" } else { "" },
                e.from
            ));
        }
    }
    let graph = graph(&c.edges);
    for k in KNOWN_VIOLATIONS {
        if !graph.contains_key(&(k.from.to_owned(), k.to.to_owned())) {
            problems.push(format!(
                "KNOWN_VIOLATIONS lists `{}` → `{}` ({}), but nothing in src/{}* uses `{}` \
                 any more: delete the entry in tests/layers.rs and its line in \
                 docs/architecture.md",
                k.from, k.to, k.why, k.from, k.to
            ));
            continue;
        }
        let upward =
            matches!((layer_of(k.from), layer_of(k.to)), (Some((f, _)), Some((t, _))) if t < f);
        if !upward && !on_a_cycle(&graph, k.from, k.to) {
            problems.push(format!(
                "KNOWN_VIOLATIONS lists `{}` → `{}`, which runs down the layers and closes \
                 no cycle: it is not a violation, delete the entry",
                k.from, k.to
            ));
        }
    }
    fail("imports against the layering", &problems);
}

#[test]
fn the_cli_never_uses_ffi() {
    let c = read();
    let mut problems: Vec<String> = c
        .edges
        .iter()
        .filter(|e| (e.from == "cli" || e.from == "main") && e.to == "ffi")
        .map(|e| {
            format!(
                "{}:{}: the CLI uses `crate::ffi`; it is a front end of its own on the \
                 engine layers: use the engine, backend or store API instead",
                e.file, e.line
            )
        })
        .collect();
    if known("cli", "ffi").is_some() || known("main", "ffi").is_some() {
        problems.push("KNOWN_VIOLATIONS may not excuse cli → ffi: delete the entry".into());
    }
    fail("the CLI uses ffi", &problems);
}

/// `(from, to)` → the places that use it.
type Graph = BTreeMap<(String, String), Vec<String>>;

fn graph(edges: &[Edge]) -> Graph {
    let mut g = Graph::new();
    for e in edges {
        g.entry((e.from.clone(), e.to.clone()))
            .or_default()
            .push(format!("{}:{}", e.file, e.line));
    }
    g
}

/// The shortest path `from` → … → `to`, as the list of modules, if there is one.
fn path(g: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(n) = queue.pop_front() {
        for (a, b) in g.keys() {
            if *a != n || prev.contains_key(b) || b == from {
                continue;
            }
            prev.insert(b.clone(), n.clone());
            if b == to {
                let mut p = vec![to.to_owned()];
                while let Some(x) = prev.get(p.last()?) {
                    p.push(x.clone());
                    if x == from {
                        break;
                    }
                }
                p.reverse();
                return Some(p);
            }
            queue.push_back(b.clone());
        }
    }
    None
}

fn on_a_cycle(g: &Graph, from: &str, to: &str) -> bool {
    path(g, to, from).is_some()
}

/// A cycle through `a` → `b` (which must be an edge), each step with one place.
fn describe_cycle(g: &Graph, a: &str, b: &str) -> Option<String> {
    let mut p = path(g, b, a)?;
    p.insert(0, a.to_owned());
    let steps: Vec<String> = p
        .windows(2)
        .map(|w| {
            let at = g
                .get(&(w[0].clone(), w[1].clone()))
                .and_then(|v| v.first())
                .cloned();
            format!("{} → {} ({})", w[0], w[1], at.unwrap_or_default())
        })
        .collect();
    Some(steps.join(", "))
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let c = read();
    let all = graph(&c.edges);
    // Report every cycle through a listed edge, so the list's cost stays visible.
    for k in KNOWN_VIOLATIONS {
        if !all.contains_key(&(k.from.to_owned(), k.to.to_owned())) {
            continue; // no_import_runs_up_the_layers reports the stale entry.
        }
        if let Some(cycle) = describe_cycle(&all, k.from, k.to) {
            eprintln!("known cycle: {cycle}");
        }
    }
    let mut rest = all.clone();
    rest.retain(|(a, b), _| known(a, b).is_none());
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (a, b) in rest.keys() {
        if let Some(cycle) = describe_cycle(&rest, a, b) {
            let mut members: Vec<&str> = cycle.split(", ").collect();
            members.sort_unstable();
            if seen.insert(members.join("|")) {
                problems.push(format!(
                    "import cycle: {cycle}. Break it by moving the shared item down a layer"
                ));
            }
        }
    }
    fail("import cycles between top-level modules", &problems);
}

#[test]
fn unsafe_only_in_ffi_and_the_backend_loader_each_block_with_safety() {
    let c = read();
    let mut problems = Vec::new();
    for f in &c.files {
        let allowed = UNSAFE_ALLOWED.iter().any(|a| {
            if a.ends_with('/') {
                f.rel.starts_with(a)
            } else {
                f.rel == *a
            }
        });
        let last = last_token_by_line(f);
        for (line, kind) in unsafe_sites(f) {
            if !allowed {
                problems.push(format!(
                    "{}:{line}: `unsafe` ({kind:?}) outside {}: put the operation behind a \
                     safe function there",
                    f.rel,
                    UNSAFE_ALLOWED.join(" and ")
                ));
            } else if matches!(kind, UnsafeKind::Block | UnsafeKind::Impl)
                && !has_safety_comment(f, &last, line)
            {
                problems.push(format!(
                    "{}:{line}: `unsafe` {} without a `// SAFETY:` comment just above it: \
                     say why every precondition holds",
                    f.rel,
                    if kind == UnsafeKind::Block {
                        "block"
                    } else {
                        "impl"
                    }
                ));
            }
        }
    }
    fail("unsafe code", &problems);
}

/// The scanner itself: every form of use is seen, and nothing in a comment or a
/// string is. Without this the checks above could pass by seeing nothing.
#[test]
fn the_scanner_sees_every_form_of_use_and_nothing_else() {
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    let text = r##"
use crate::store::Store;
use crate::{audit::{self, Writer}, config};
pub use super::gateway::Gateway;
fn f() -> crate::Result<()> { let _ = crate::backend::x(); $crate::abi::y(); Ok(()) }
// crate::ffi::in_a_comment
/* crate::ffi::in_a_block /* nested */ crate::ffi::still */
const S: &str = "crate::ffi::in_a_string unsafe { }"; // unsafe { }
const R: &str = r#"crate::ffi::"raw""#;
const C: [char; 3] = ['"', '\'', '\u{22}'];
fn g<'a>(x: &'a str) -> &'a str { crate::lifecycle::z(x) }
mod inner { use super::super::policy::P; }
pub(crate) fn h() { unsafe { } }
"##;
    let files = vec![SrcFile::from_text(
        "src/cli/mod.rs",
        m("cli"),
        false,
        false,
        text,
    )];
    let tops: BTreeSet<String> = [
        "store",
        "audit",
        "config",
        "gateway",
        "error",
        "backend",
        "abi",
        "ffi",
        "lifecycle",
        "policy",
        "cli",
    ]
    .map(str::to_owned)
    .into();
    let names = BTreeMap::from([("Result".to_owned(), "error".to_owned())]);
    let seen: BTreeSet<(String, usize)> = edges(&files, &tops, &names)
        .into_iter()
        .map(|e| (e.to, e.line))
        .collect();
    let want: BTreeSet<(String, usize)> = [
        ("store", 2),
        ("audit", 3),
        ("config", 3),
        ("gateway", 4),
        ("error", 5),
        ("backend", 5),
        ("abi", 5),
        ("lifecycle", 11),
        ("policy", 12),
    ]
    .map(|(m, l)| (m.to_owned(), l))
    .into();
    assert_eq!(seen, want);
    assert_eq!(unsafe_sites(&files[0]), vec![(13, UnsafeKind::Block)]);
}
