//! Prepared statements on the client side of the wire: decoding COM_STMT_EXECUTE's bound values
//! (a slave runs its prepared writes as text, `sql::inline`).

use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;
use mysql_common::value::{BinValue, Value, ValueDeserializer};

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

#[cfg(test)]
mod tests {
    use super::*;

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
