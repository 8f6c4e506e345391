//! `unsafe` sites and their `// SAFETY:` comments, for `tests/layers.rs`.

use std::collections::BTreeMap;

use super::lex::Tok;
use super::{is_ident, is_punct, SrcFile};

/// The last code token of each line that has code.
pub fn last_token_by_line(f: &SrcFile) -> BTreeMap<usize, &Tok> {
    f.lexed
        .toks
        .iter()
        .map(|(tok, line)| (*line, tok))
        .collect()
}

/// What an `unsafe` keyword introduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeKind {
    Block,
    Fn,
    Impl,
    Trait,
    ExternBlock,
}

/// Every `unsafe` in code (not comments or strings) that is unsafe code: blocks,
/// functions, impls, traits and extern blocks. An `unsafe fn(…)` or
/// `unsafe extern "C" fn(…)` pointer *type* is not: it cannot be called without a block.
pub fn unsafe_sites(f: &SrcFile) -> Vec<(usize, UnsafeKind)> {
    let t = &f.lexed.toks;
    let mut out = Vec::new();
    for k in 0..t.len() {
        if !is_ident(t, k, "unsafe") {
            continue;
        }
        let line = t[k].1;
        let mut j = k + 1;
        let extern_ = is_ident(t, j, "extern");
        if extern_ {
            j += 1;
            if matches!(t.get(j), Some((Tok::Str(_), _))) {
                j += 1;
            }
        }
        let kind = if is_punct(t, j, '{') {
            Some(if extern_ {
                UnsafeKind::ExternBlock
            } else {
                UnsafeKind::Block
            })
        } else if is_ident(t, j, "fn") {
            matches!(t.get(j + 1), Some((Tok::Ident(_), _))).then_some(UnsafeKind::Fn)
        } else if is_ident(t, j, "impl") {
            Some(UnsafeKind::Impl)
        } else if is_ident(t, j, "trait") {
            Some(UnsafeKind::Trait)
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push((line, kind));
        }
    }
    out
}

/// A `// SAFETY:` comment just above line `line`: walking up through comment lines
/// and the lines of the same statement, stopping at a blank line or at the end of
/// the previous statement or item (a line ending in `;`, `{`, `}` or `,`).
pub fn has_safety_comment(f: &SrcFile, last_tok: &BTreeMap<usize, &Tok>, line: usize) -> bool {
    const LOOKBACK: usize = 12;
    let said_on = |l: usize| {
        f.lexed
            .comments
            .iter()
            .any(|(cl, text)| *cl == l && text.contains("SAFETY:"))
    };
    for l in (line.saturating_sub(LOOKBACK).max(1)..line).rev() {
        if said_on(l) {
            return true;
        }
        if f.lines.get(l - 1).is_none_or(|s| s.trim().is_empty()) {
            return false;
        }
        if let Some(Tok::Punct(';' | '{' | '}' | ',')) = last_tok.get(&l) {
            return false;
        }
    }
    false
}
