//! Which character set a client's text is in, as far as the node's lexer is concerned: a client
//! charset the node cannot lex safely is never put in force (see [`UNSAFE_CLIENT_CHARSETS`]).

use super::lexer::{Token, TokenKind};

/// What `SET NAMES` and `SET CHARACTER SET` assign.
const CHARSET: [&str; 3] = [
    "character_set_connection",
    "character_set_client",
    "character_set_results",
];

/// Character sets whose multi-byte characters may end in the byte of `\\`, `` ` `` or `@`: a
/// server reading the client's text in one of them sees quotes and identifiers end where a
/// byte-wise lexer (the node's) does not, so a statement could read as a harmless `SELECT` here
/// and run a `DROP` there.
pub const UNSAFE_CLIENT_CHARSETS: [&str; 5] = ["big5", "cp932", "gbk", "sjis", "gb18030"];

/// True when a `SET` list (the tokens after `SET`, or between `SET STATEMENT` and `FOR`) gives
/// `character_set_client` a value the node cannot vouch for: a charset of
/// [`UNSAFE_CLIENT_CHARSETS`], or anything but a plain name (a variable, an expression, a
/// charset number), whose value the node cannot see.
pub fn sets_unsafe_client_charset(list: &[Token]) -> bool {
    assignments(list).into_iter().any(|a| {
        if !target(a).contains(&"character_set_client") {
            return false;
        }
        let value_at = if a.first().is_some_and(|k| k.is_word("CHARACTER")) {
            2
        } else if a
            .first()
            .is_some_and(|k| k.is_word("NAMES") || k.is_word("CHARSET"))
        {
            1
        } else {
            match a.iter().position(|k| k.is_punct('=')) {
                Some(eq) => eq + 1,
                None => return true,
            }
        };
        let (Some(value), rest) = (a.get(value_at), a.get(value_at + 1..).unwrap_or_default())
        else {
            return true;
        };
        let plain_name = matches!(value.kind, TokenKind::Word | TokenKind::Str)
            && value
                .text
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && (rest.is_empty() || rest.first().is_some_and(|k| k.is_word("COLLATE")));
        !plain_name
            || UNSAFE_CLIENT_CHARSETS
                .iter()
                .any(|c| value.text.eq_ignore_ascii_case(c))
    })
}

/// The assignments of a `SET` list, split on top-level commas.
fn assignments(t: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, tok) in t.iter().enumerate() {
        if tok.is_punct('(') {
            depth += 1;
        } else if tok.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if tok.is_punct(',') && depth == 0 {
            out.push(&t[start..i]);
            start = i + 1;
        }
    }
    out.push(&t[start..]);
    out
}

/// The session variables one assignment sets.
fn target(a: &[Token]) -> Vec<&'static str> {
    let Some(first) = a.first() else {
        return Vec::new();
    };
    if first.is_word("NAMES")
        || first.is_word("CHARSET")
        || (first.is_word("CHARACTER") && a.get(1).is_some_and(|k| k.is_word("SET")))
    {
        return CHARSET.to_vec();
    }
    let name = match first.kind {
        TokenKind::Var => {
            let var = first.text.trim_start_matches("@@");
            if var.len() == first.text.len() || var.starts_with("GLOBAL.") {
                return Vec::new(); // a user variable, or global scope
            }
            if matches!(var, "GLOBAL" | "PERSIST" | "PERSIST_ONLY") {
                return Vec::new(); // `@@global . name`
            }
            let var = var
                .trim_start_matches("SESSION.")
                .trim_start_matches("LOCAL.");
            let named = |i: usize| {
                a.get(i)
                    .filter(|k| matches!(k.kind, TokenKind::Word | TokenKind::QuotedIdent))
                    .map(|k| k.text.clone())
            };
            let spaced = a.get(1).is_some_and(|k| k.is_punct('.'));
            match var {
                // `@@session.`name``: the name is the quoted identifier that follows.
                "" => named(1).unwrap_or_default(),
                // `@@session . name`: the server's grammar allows space around the dot.
                "SESSION" | "LOCAL" if spaced => named(2).unwrap_or_default(),
                _ => var.to_string(),
            }
        }
        TokenKind::QuotedIdent => first.text.clone(),
        TokenKind::Word if first.is_word("SESSION") || first.is_word("LOCAL") => {
            match a
                .get(1)
                .filter(|k| matches!(k.kind, TokenKind::Word | TokenKind::QuotedIdent))
            {
                Some(w) => w.text.clone(),
                None => return Vec::new(),
            }
        }
        TokenKind::Word if first.is_word("GLOBAL") => return Vec::new(),
        TokenKind::Word => first.text.clone(),
        _ => return Vec::new(),
    };
    let name = name.to_ascii_lowercase();
    CHARSET.iter().copied().filter(|v| *v == name).collect()
}
