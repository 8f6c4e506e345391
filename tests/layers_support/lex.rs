//! A small Rust lexer for the layering check: enough to tell code from comments and
//! literals, so that a path or `unsafe` inside a string or a comment is not taken for
//! code, and so that `// SAFETY:` comments can be found by line.

/// One token of code, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword; `$crate` is one identifier.
    Ident(String),
    /// A string literal's contents (escapes left as written): `#[path = "…"]` needs it.
    Str(String),
    /// `::`
    PathSep,
    /// Any other punctuation character.
    Punct(char),
    /// A number, char literal or lifetime: nothing the check looks at.
    Other,
}

pub struct Lexed {
    pub toks: Vec<(Tok, usize)>,
    /// The text of every comment, by the line it starts on (a block comment spanning
    /// lines is recorded on each of its lines).
    pub comments: Vec<(usize, String)>,
}

pub fn lex(src: &str) -> Lexed {
    let c: Vec<char> = src.chars().collect();
    let mut out = Lexed {
        toks: Vec::new(),
        comments: Vec::new(),
    };
    let (mut i, mut line) = (0usize, 1usize);
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            let start = i;
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            out.comments.push((line, c[start..i].iter().collect()));
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let (mut depth, mut text) = (0usize, String::new());
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    text.push_str("/*");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    text.push_str("*/");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if c[i] == '\n' {
                    out.comments.push((line, std::mem::take(&mut text)));
                    line += 1;
                    i += 1;
                } else {
                    text.push(c[i]);
                    i += 1;
                }
            }
            out.comments.push((line, text));
        } else if let Some((body_start, hashes)) = raw_string_start(&c, i) {
            // r"…", r#"…"#, br#"…"#: ends at a quote followed by as many hashes.
            let l0 = line;
            let mut j = body_start;
            let end = loop {
                if j >= c.len() {
                    break c.len();
                }
                if c[j] == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                    break j;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                j += 1;
            };
            out.toks.push((
                Tok::Str(c[body_start..end.min(c.len())].iter().collect()),
                l0,
            ));
            i = (end + 1 + hashes).min(c.len());
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && at(i + 1) == '"') {
            let l0 = line;
            i += if ch == '"' { 1 } else { 2 };
            let start = i;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            out.toks
                .push((Tok::Str(c[start..i.min(c.len())].iter().collect()), l0));
            i += 1;
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            // A char literal ('a', '\n', '\u{1F600}', b'x') or a lifetime ('a).
            let q = if ch == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                // Past the escaped character, so that '\'' ends at its last quote.
                let mut j = q + 3;
                while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                    j += 1;
                }
                i = j + 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                // A lifetime or label: skip the quote; the name lexes as an identifier
                // but is never followed by `::`, so it is harmless.
                i = q + 1;
            }
            out.toks.push((Tok::Other, line));
        } else if ch == '$' && is_ident_start(at(i + 1)) {
            let start = i;
            i += 1;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.toks
                .push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if is_ident_start(ch) {
            // r#ident (a raw identifier) reads as the identifier.
            if ch == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
                i += 2;
            }
            let name_start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.toks
                .push((Tok::Ident(c[name_start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while i < c.len()
                && (is_ident_char(c[i]) || (c[i] == '.' && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
            out.toks.push((Tok::Other, line));
        } else if ch == ':' && at(i + 1) == ':' {
            out.toks.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.toks.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// `(index of the first body char, number of hashes)` when a raw string literal starts
/// at `i`.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    // Only reached at a token start; `r` must be followed by hashes, then a quote.
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((j + 1, hashes))
}

fn is_ident_start(ch: char) -> bool {
    ch == '_' || ch.is_alphabetic()
}

fn is_ident_char(ch: char) -> bool {
    ch == '_' || ch.is_alphanumeric()
}
