//! A statement plus its bound values as plain SQL, for a slave that forwards a prepared write
//! to the master (which does not have the statement).
//!
//! Inlining is exact: strings are written as hex with the client's character-set introducer
//! (`_utf8mb4 X'…'`), so no escaping rule or `sql_mode` can change what the server reads, and
//! numbers keep every digit.

use mysql_common::value::Value;

use super::lexer::{TokenKind, lex};

/// Counts the `?` placeholders of `sql`, as the server sees them (not in strings or comments).
pub fn placeholders(sql: &str) -> usize {
    lex(sql, true)
        .1
        .iter()
        .filter(|t| t.kind == TokenKind::Punct && t.text == "?")
        .count()
}

/// `value` as an SQL literal that means the same to the server as the bound parameter did.
pub fn literal(value: &Value, charset: &str) -> String {
    match value {
        Value::Bytes(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            // Bytes that are not text in the client's charset were binary data: the server
            // passes such a parameter on unconverted, and so does a binary literal.
            if charset.starts_with("utf8") && std::str::from_utf8(bytes).is_err() {
                format!("X'{hex}'")
            } else {
                format!("_{charset} X'{hex}'")
            }
        }
        // f32 widened first: the server widens a FLOAT parameter the same way.
        Value::Float(f) => format!("{}", f64::from(*f)),
        other => other.as_sql(false),
    }
}

/// `sql` with its placeholders replaced by `values` (the client's character set is `charset`).
/// Works on the original text, so comments (and executable comments) stay where they were.
pub fn inline(sql: &str, values: &[Value], charset: &str) -> Option<String> {
    // Offsets from the lexer index its normalised text, which keeps every byte of `sql` except
    // comments; find the placeholders in the original by walking both.
    let mut out = String::with_capacity(sql.len() + values.len() * 8);
    let mut values = values.iter();
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q != b'`' {
                    out.push('\\');
                    i += 1;
                    if let Some(&next) = bytes.get(i) {
                        let len = utf8_len(next);
                        out.push_str(sql.get(i..(i + len).min(bytes.len()))?);
                        i += len;
                    }
                    continue;
                }
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' | b'`' => quote = Some(c),
                b'#' => {
                    let end = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    out.push_str(&sql[i..end]);
                    i = end;
                    continue;
                }
                b'-' if sql[i..].starts_with("-- ") || sql[i..].starts_with("--\t") => {
                    let end = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    out.push_str(&sql[i..end]);
                    i = end;
                    continue;
                }
                b'/' if sql[i..].starts_with("/*")
                    && !sql[i..].starts_with("/*!")
                    && !sql[i..].starts_with("/*M!") =>
                {
                    let end = sql[i + 2..]
                        .find("*/")
                        .map_or(bytes.len(), |n| i + 2 + n + 2);
                    out.push_str(&sql[i..end]);
                    i = end;
                    continue;
                }
                b'?' => {
                    out.push_str(&literal(values.next()?, charset));
                    i += 1;
                    continue;
                }
                _ => {}
            },
        }
        let len = utf8_len(c);
        out.push_str(sql.get(i..(i + len).min(bytes.len()))?);
        i += len;
    }
    values.next().is_none().then_some(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_exactly_and_only_real_placeholders() {
        let sql = "INSERT INTO t VALUES (?, '?', ?, \"a\\\"?\", /* ? */ ?) -- ?\n";
        let values = [
            Value::Int(-7),
            Value::Bytes("it's 😀".as_bytes().to_vec()),
            Value::NULL,
        ];
        assert_eq!(placeholders(sql), 3);
        let got = inline(sql, &values, "utf8mb4").expect("three values");
        assert_eq!(
            got,
            "INSERT INTO t VALUES (-7, '?', _utf8mb4 X'6974277320F09F9880', \"a\\\"?\", /* ? */ NULL) -- ?\n"
        );
        assert_eq!(inline(sql, &values[..2], "utf8mb4"), None, "too few values");
        assert_eq!(literal(&Value::Bytes(vec![0xFF, 0]), "utf8mb4"), "X'FF00'");
        assert_eq!(
            literal(&Value::Bytes(vec![0xFF, 0]), "latin1"),
            "_latin1 X'FF00'"
        );
        assert_eq!(
            literal(&Value::Float(0.1), "x"),
            format!("{}", f64::from(0.1f32))
        );
        assert_eq!(
            literal(&Value::Date(2024, 2, 29, 1, 2, 3, 4), "x"),
            "'2024-02-29 01:02:03.000004'"
        );
    }
}
