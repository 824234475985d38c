//! Source text to tokens, without comments, literals or `#[cfg(test)]` items.
//!
//! No compiler help: a small lexer that knows just enough Rust (nested block
//! comments, raw and byte strings, char literals vs. lifetimes) that text
//! inside comments and literals never reads as a path.

/// A token that matters for paths.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// `::`
    Sep,
    /// `{`
    Open,
    /// `}`
    Close,
    Comma,
    Semi,
    Punct(char),
}

/// The code's tokens, with comments, literals and `#[cfg(test)]` items gone
/// (unit tests may import anything).
pub(super) fn code_tokens(text: &str) -> Vec<Tok> {
    without_test_items(tokens(&strip(text)))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `b[i]` is the `r` that opens a raw string (`r"`, `r#"`, `br"`).
fn opens_raw_string(b: &[char], i: usize) -> bool {
    let before = |k: usize| i.checked_sub(k).and_then(|j| b.get(j)).copied();
    let prefix_ok = match before(1) {
        None => true,
        Some('b' | 'c') => !before(2).is_some_and(is_ident_char),
        Some(p) => !is_ident_char(p),
    };
    if b[i] != 'r' || !prefix_ok {
        return false;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&'#') {
        j += 1;
    }
    b.get(j) == Some(&'"')
}

/// Blanks comments and string/char literals (keeps the line structure).
pub(super) fn strip(src: &str) -> String {
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
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
        } else if opens_raw_string(&b, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == '\n' {
                    out.push('\n');
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
            // A char literal ('a', '\n', '\'', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 3; // the quote, the backslash and the escaped char
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

/// Splits stripped code into tokens.
pub(super) fn tokens(code: &str) -> Vec<Tok> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_ident_char(c) {
            let start = i;
            while i < b.len() && is_ident_char(b[i]) {
                i += 1;
            }
            // A number (`1u8`) is no identifier.
            if !c.is_ascii_digit() {
                out.push(Tok::Ident(b[start..i].iter().collect()));
            }
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
            ';' => out.push(Tok::Semi),
            c if c.is_whitespace() => {}
            c => out.push(Tok::Punct(c)),
        }
        i += 1;
    }
    out
}

/// Whether `#[cfg(test)]` starts at `toks[i]`.
fn cfg_test_at(toks: &[Tok], i: usize) -> bool {
    let ident = |s: &str| Tok::Ident(s.to_owned());
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        ident("cfg"),
        Tok::Punct('('),
        ident("test"),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    toks.len() >= i + want.len() && toks[i..i + want.len()] == want
}

/// The index after the item that starts at `toks[i]`: its `;` or the `}`
/// that closes its first `{`, whichever comes first outside brackets
/// (items under `#[cfg(test)]` are modules, `use`s, functions and impls).
fn item_end(toks: &[Tok], mut i: usize) -> usize {
    let (mut braces, mut brackets) = (0i32, 0i32);
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => braces += 1,
            // The enclosing block's `}`: the item ended without one.
            Tok::Close if braces == 0 => return i,
            Tok::Close => {
                braces -= 1;
                if braces == 0 && brackets <= 0 {
                    return i + 1;
                }
            }
            Tok::Semi if braces == 0 && brackets <= 0 => return i + 1,
            Tok::Punct('(' | '[') => brackets += 1,
            Tok::Punct(')' | ']') => brackets -= 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Drops every item marked `#[cfg(test)]` (with its other attributes).
fn without_test_items(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if cfg_test_at(&toks, i) {
            i = item_end(&toks, i + 7);
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}
