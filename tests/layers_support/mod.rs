//! Reads the crate's sources for `tests/layers.rs`: walks the module tree from
//! `src/lib.rs` (and `src/main.rs`) the way rustc does, and extracts from each file the
//! top-level modules it uses and its `unsafe` sites.

pub mod lex;
pub mod safety;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use lex::{lex, Lexed, Tok};

/// One source file of the crate.
pub struct SrcFile {
    /// Path from the package root, `src/audit/render.rs`.
    pub rel: String,
    /// Its module path: `["audit", "render"]`; empty for `lib.rs` and `main.rs`.
    pub module: Vec<String>,
    /// Declared under `#[cfg(test)]` (a unit-test file).
    pub test: bool,
    /// The binary's root (`src/main.rs`): `keywarden::…` there is the library.
    pub bin_root: bool,
    pub lexed: Lexed,
    /// The raw lines, for "is this line blank".
    pub lines: Vec<String>,
}

impl SrcFile {
    pub fn from_text(
        rel: &str,
        module: Vec<String>,
        test: bool,
        bin_root: bool,
        text: &str,
    ) -> SrcFile {
        SrcFile {
            rel: rel.to_owned(),
            module,
            test,
            bin_root,
            lexed: lex(text),
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// The top-level module the file belongs to; `main.rs` counts as `main`.
    pub fn top(&self) -> Option<&str> {
        if self.bin_root {
            return Some("main");
        }
        self.module.first().map(String::as_str)
    }
}

/// A use of one top-level module by a file of another.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub file: String,
    pub line: usize,
    /// Inside `#[cfg(test)]` code.
    pub test: bool,
}

/// Every file reachable from `src/lib.rs` and `src/main.rs`, plus any other `src/**/*.rs`
/// file (given its path-derived module, so that a stray file is still checked).
pub fn read_crate(root: &Path) -> Vec<SrcFile> {
    let mut files = Vec::new();
    walk(
        root,
        &root.join("src/lib.rs"),
        Vec::new(),
        false,
        false,
        &mut files,
    );
    walk(
        root,
        &root.join("src/main.rs"),
        Vec::new(),
        false,
        true,
        &mut files,
    );
    let seen: BTreeSet<String> = files.iter().map(|f| f.rel.clone()).collect();
    let mut all = Vec::new();
    list_rs(&root.join("src"), &mut all);
    for path in all {
        let rel = rel_of(root, &path);
        if !seen.contains(&rel) {
            let module = path_module(&rel);
            files.push(load(root, &path, module, false, false));
        }
    }
    files
}

fn list_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            list_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// `src/a/b/mod.rs` → `[a, b]`; `src/a/b.rs` → `[a, b]`.
fn path_module(rel: &str) -> Vec<String> {
    let trimmed = rel.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn load(root: &Path, path: &Path, module: Vec<String>, test: bool, bin_root: bool) -> SrcFile {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SrcFile::from_text(&rel_of(root, path), module, test, bin_root, &text)
}

fn walk(
    root: &Path,
    path: &Path,
    module: Vec<String>,
    test: bool,
    bin: bool,
    out: &mut Vec<SrcFile>,
) {
    let file = load(root, path, module.clone(), test, bin);
    let dir = path.parent().unwrap_or(root).to_path_buf();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    // A non-mod.rs file's children live in a directory named after it.
    let child_dir = if matches!(stem, "mod" | "lib" | "main") {
        dir.clone()
    } else {
        dir.join(stem)
    };
    let mut children = Vec::new();
    for_each_scope(&file.lexed.toks, |k, scope| {
        let t = &file.lexed.toks;
        if !(is_ident(t, k, "mod") && matches!(t.get(k + 2), Some((Tok::Punct(';'), _)))) {
            return;
        }
        let Some((Tok::Ident(name), _)) = t.get(k + 1) else {
            return;
        };
        let attrs = attributes_before(t, k);
        let inline: Vec<&str> = scope.iter().map(|s| s.name.as_str()).collect();
        let child = match attrs.path {
            Some(p) if inline.is_empty() => dir.join(p),
            Some(p) => child_dir.join(inline.join("/")).join(p),
            None => {
                let base = child_dir.join(inline.join("/"));
                let flat = base.join(format!("{name}.rs"));
                if flat.exists() {
                    flat
                } else {
                    base.join(name).join("mod.rs")
                }
            }
        };
        let mut m = module.clone();
        m.extend(inline.iter().map(|s| s.to_string()));
        m.push(name.clone());
        let in_test = test || attrs.cfg_test || scope.iter().any(|s| s.test);
        children.push((child, m, in_test));
    });
    out.push(file);
    for (child, m, t) in children {
        if child.exists() {
            walk(root, &child, m, t, bin, out);
        }
    }
}

/// An inline `mod name { … }` the scanner is inside.
pub struct Scope {
    pub name: String,
    pub test: bool,
    depth: usize,
}

fn is_ident(t: &[(Tok, usize)], k: usize, s: &str) -> bool {
    matches!(t.get(k), Some((Tok::Ident(x), _)) if x == s)
}

fn is_punct(t: &[(Tok, usize)], k: usize, c: char) -> bool {
    matches!(t.get(k), Some((Tok::Punct(x), _)) if *x == c)
}

/// Calls `f(index, inline scopes)` for every token, tracking `mod name { … }` blocks.
pub fn for_each_scope(t: &[(Tok, usize)], mut f: impl FnMut(usize, &[Scope])) {
    let mut scopes: Vec<Scope> = Vec::new();
    let mut depth = 0usize;
    for k in 0..t.len() {
        f(k, &scopes);
        if is_punct(t, k, '{') {
            depth += 1;
            if k >= 2 && is_ident(t, k - 2, "mod") {
                if let (Tok::Ident(name), _) = &t[k - 1] {
                    let test = attributes_before(t, k - 2).cfg_test;
                    scopes.push(Scope {
                        name: name.clone(),
                        test,
                        depth,
                    });
                }
            }
        } else if is_punct(t, k, '}') {
            if scopes.last().is_some_and(|s| s.depth == depth) {
                scopes.pop();
            }
            depth = depth.saturating_sub(1);
        }
    }
}

#[derive(Default)]
struct Attrs {
    path: Option<String>,
    cfg_test: bool,
}

/// The `#[path = "…"]` and `#[cfg(test)]` attributes of the item whose keyword is at
/// `k`, skipping back over its visibility (`pub`, `pub(crate)`, …).
fn attributes_before(t: &[(Tok, usize)], mut k: usize) -> Attrs {
    let mut a = Attrs::default();
    // Visibility: `pub`, or `pub ( … )`.
    if k > 0 && is_punct(t, k - 1, ')') {
        while k > 0 && !is_punct(t, k - 1, '(') {
            k -= 1;
        }
        k = k.saturating_sub(1);
    }
    if k > 0 && is_ident(t, k - 1, "pub") {
        k -= 1;
    }
    // Attributes: `# [ … ]`, balanced brackets, read backwards.
    while k > 0 && is_punct(t, k - 1, ']') {
        let end = k - 1;
        let mut depth = 0usize;
        let mut j = end;
        loop {
            if is_punct(t, j, ']') {
                depth += 1;
            } else if is_punct(t, j, '[') {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            if j == 0 {
                return a;
            }
            j -= 1;
        }
        if j == 0 || !is_punct(t, j - 1, '#') {
            return a;
        }
        let body = &t[j + 1..end];
        if is_ident(body, 0, "path") && is_punct(body, 1, '=') {
            if let Some((Tok::Str(p), _)) = body.get(2) {
                a.path = Some(p.clone());
            }
        }
        if is_ident(body, 0, "cfg") && body.iter().any(|(x, _)| *x == Tok::Ident("test".into())) {
            a.cfg_test = true;
        }
        k = j - 1;
    }
    a
}

/// Every use of another top-level module: `use crate::x…` (and groups
/// `use crate::{x, y}`), `crate::x::…` in code, `$crate::x` in macros, `super::`
/// climbing out of a top-level module, and in `main.rs`, `keywarden::x`.
/// `crate::Name` for a name the crate root re-exports (`pub use error::Error`) or a
/// `#[macro_export]` macro counts as a use of the module that defines it.
pub fn edges(
    files: &[SrcFile],
    tops: &BTreeSet<String>,
    root_names: &BTreeMap<String, String>,
) -> Vec<Edge> {
    let mut out = Vec::new();
    for f in files {
        let Some(from) = f.top() else { continue };
        let t = &f.lexed.toks;
        for_each_scope(t, |k, scope| {
            let Some((Tok::Ident(head), line)) = t.get(k) else {
                return;
            };
            if k > 0 && matches!(t[k - 1].0, Tok::PathSep) {
                return;
            }
            let mut cur: Vec<&str> = f.module.iter().map(String::as_str).collect();
            cur.extend(scope.iter().map(|s| s.name.as_str()));
            let mut base: Vec<&str> = match head.as_str() {
                "crate" | "$crate" if !f.bin_root => Vec::new(),
                "keywarden" if f.bin_root => Vec::new(),
                "self" => cur.clone(),
                "super" => {
                    cur.pop();
                    cur.clone()
                }
                _ => return,
            };
            let mut j = k + 1;
            if !matches!(t.get(j), Some((Tok::PathSep, _))) {
                return;
            }
            j += 1;
            while is_ident(t, j, "super") && matches!(t.get(j + 1), Some((Tok::PathSep, _))) {
                base.pop();
                j += 2;
            }
            let mut targets = Vec::new();
            if let Some(first) = base.first() {
                targets.push(first.to_string());
            } else if is_punct(t, j, '{') {
                targets.extend(group_heads(t, j));
            } else if let Some((Tok::Ident(seg), _)) = t.get(j) {
                targets.push(seg.clone());
            }
            let test = f.test || scope.iter().any(|s| s.test);
            for seg in targets {
                let to = if tops.contains(&seg) {
                    seg
                } else if let Some(m) = root_names.get(&seg) {
                    m.clone()
                } else {
                    continue;
                };
                if to != from {
                    out.push(Edge {
                        from: from.to_owned(),
                        to,
                        file: f.rel.clone(),
                        line: *line,
                        test,
                    });
                }
            }
        });
    }
    out
}

/// The first segment of each item of a use group starting at `t[open] == '{'`.
fn group_heads(t: &[(Tok, usize)], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect = false;
    for (k, (tok, _)) in t.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                expect = depth == 1;
            }
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => expect = true,
            Tok::Ident(name) if expect => {
                expect = false;
                if name != "self" && !is_punct(t, k + 1, '*') {
                    heads.push(name.clone());
                }
            }
            _ => expect = false,
        }
    }
    heads
}

/// Names the crate root makes available outside any module: `pub use m::{A, B}` in
/// `lib.rs`, and `#[macro_export]` macros, each mapped to its defining module.
pub fn root_names(files: &[SrcFile]) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for f in files {
        let t = &f.lexed.toks;
        if f.module.is_empty() && !f.bin_root {
            for k in 0..t.len() {
                if !is_ident(t, k, "use") {
                    continue;
                }
                let Some((Tok::Ident(m), _)) = t.get(k + 1) else {
                    continue;
                };
                let mut j = k + 2;
                // The last segment, or each name of a trailing group.
                while let (Some((Tok::PathSep, _)), Some((Tok::Ident(_), _))) =
                    (t.get(j), t.get(j + 1))
                {
                    j += 2;
                }
                if matches!(t.get(j), Some((Tok::PathSep, _))) && is_punct(t, j + 1, '{') {
                    for n in group_heads(t, j + 1) {
                        names.insert(n, m.clone());
                    }
                } else if let Some((Tok::Ident(n), _)) = t.get(j - 1) {
                    names.insert(n.clone(), m.clone());
                }
            }
        }
        for k in 0..t.len() {
            if is_ident(t, k, "macro_rules")
                && is_punct(t, k + 1, '!')
                && attributes_before_macro(t, k)
            {
                if let (Some((Tok::Ident(n), _)), Some(top)) = (t.get(k + 2), f.top()) {
                    names.insert(n.clone(), top.to_owned());
                }
            }
        }
    }
    names
}

/// `#[macro_export]` directly above `macro_rules!` at `k`.
fn attributes_before_macro(t: &[(Tok, usize)], k: usize) -> bool {
    k >= 4 && is_ident(t, k - 2, "macro_export") && is_punct(t, k - 1, ']')
}
