//! Prepared statements on the client side of the wire: decoding COM_STMT_EXECUTE, and turning a
//! statement plus its bound values into plain SQL for the paths that need text (the replication
//! log, and forwarding a write from a slave).
//!
//! Inlining is exact: strings are written as hex with the client's character-set introducer
//! (`_utf8mb4 X'…'`), so no escaping rule or `sql_mode` can change what the server reads, and
//! numbers keep every digit.

use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;
use mysql_common::value::{BinValue, Value, ValueDeserializer};

use crate::sql::lexer::{TokenKind, lex};

/// A bound parameter's declared type: the column type and whether it is unsigned.
pub type ParamType = (ColumnType, bool);

/// A decoded COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq)]
pub struct Execute {
    /// The client's statement id.
    pub stmt_id: u32,
    /// One value per parameter (`Value::NULL` for NULL); long-data parameters are `None`.
    pub values: Vec<Option<Value>>,
    /// Types sent with this execute, if the client bound new ones.
    pub new_types: Option<Vec<ParamType>>,
}

/// Why an execute packet cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed COM_STMT_EXECUTE: {0}")]
pub struct Malformed(pub String);

fn short() -> Malformed {
    Malformed("packet ends early".into())
}

/// The statement id a COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET body starts with.
pub fn stmt_id(body: &[u8]) -> Option<u32> {
    body.get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes a COM_STMT_EXECUTE body (after the command byte) for a statement with `params`
/// parameters whose earlier types are `known_types`; `long_data` marks parameters already sent
/// with COM_STMT_SEND_LONG_DATA.
pub fn decode_execute(
    body: &[u8],
    params: usize,
    known_types: Option<&[ParamType]>,
    long_data: &[bool],
) -> Result<Execute, Malformed> {
    let stmt_id = stmt_id(body).ok_or_else(short)?;
    // flags (1) and iteration count (4) follow; neither changes how values are read.
    let mut rest = body.get(9..).ok_or_else(short)?;
    if params == 0 {
        return Ok(Execute {
            stmt_id,
            values: Vec::new(),
            new_types: None,
        });
    }
    let bitmap_len = params.div_ceil(8);
    let nulls = rest.get(..bitmap_len).ok_or_else(short)?.to_vec();
    rest = &rest[bitmap_len..];
    let (&bound, after) = rest.split_first().ok_or_else(short)?;
    rest = after;
    let new_types = if bound == 1 {
        let raw = rest.get(..2 * params).ok_or_else(short)?;
        rest = &rest[2 * params..];
        let types = raw
            .chunks(2)
            .map(|t| {
                ColumnType::try_from(t[0])
                    .map(|ty| (ty, t[1] & 0x80 != 0))
                    .map_err(|_| Malformed(format!("unknown parameter type {}", t[0])))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(types)
    } else {
        None
    };
    let types = new_types
        .as_deref()
        .or(known_types)
        .ok_or_else(|| Malformed("parameters were never bound to types".into()))?;
    let mut buf = ParseBuf(rest);
    let mut values = Vec::with_capacity(params);
    for (i, (ty, unsigned)) in types.iter().enumerate().take(params) {
        if nulls[i / 8] & (1 << (i % 8)) != 0 {
            values.push(Some(Value::NULL));
        } else if long_data.get(i).copied().unwrap_or(false) {
            values.push(None);
        } else {
            let flags = if *unsigned {
                ColumnFlags::UNSIGNED_FLAG
            } else {
                ColumnFlags::empty()
            };
            let v = ValueDeserializer::<BinValue>::deserialize((*ty, flags), &mut buf)
                .map_err(|e| Malformed(format!("parameter {i}: {e}")))?;
            values.push(Some(v.0));
        }
    }
    Ok(Execute {
        stmt_id,
        values,
        new_types,
    })
}

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

    #[test]
    fn decodes_execute_packets() {
        // stmt 7, flags 0, iterations 1, two params: NULL bitmap (2nd is NULL), bound, types
        // LONGLONG unsigned and VAR_STRING, value 42 then nothing for the NULL.
        let mut body = vec![7, 0, 0, 0, 0, 1, 0, 0, 0];
        body.push(0b10);
        body.push(1);
        body.extend_from_slice(&[ColumnType::MYSQL_TYPE_LONGLONG as u8, 0x80]);
        body.extend_from_slice(&[ColumnType::MYSQL_TYPE_VAR_STRING as u8, 0]);
        body.extend_from_slice(&42u64.to_le_bytes());
        let e = decode_execute(&body, 2, None, &[false, false]).expect("decodes");
        assert_eq!(e.stmt_id, 7);
        // mysql_common folds an unsigned value that fits i64 into Int.
        assert_eq!(e.values, vec![Some(Value::Int(42)), Some(Value::NULL)]);
        assert!(decode_execute(&body[..12], 2, None, &[false, false]).is_err());
        assert!(decode_execute(&body[..9], 2, None, &[]).is_err());
        // Without new types and none known: refused, not guessed.
        let mut unbound = vec![7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        unbound.extend_from_slice(&42u64.to_le_bytes());
        assert!(decode_execute(&unbound, 1, None, &[false]).is_err());
    }
}
