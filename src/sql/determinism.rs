//! Statements a replicating master must refuse because replaying them on a slave could give a
//! different result: the log carries statements, so each must mean the same thing everywhere.
//!
//! `NOW()`, `CURRENT_TIMESTAMP`, `UNIX_TIMESTAMP()` and AUTO_INCREMENT are fine: the log pins the
//! time and the insert id. Everything here is judged on tokens from the lexer, so comments and
//! strings cannot hide a call or fake one.

use std::collections::HashSet;

use super::lexer::{Token, TokenKind, split};

/// Functions whose value differs from one server or call to the next.
const NONDETERMINISTIC: [&str; 12] = [
    "UUID",
    "UUID_SHORT",
    "SYS_GUID",
    "SYSDATE",
    "CONNECTION_ID",
    "FOUND_ROWS",
    "ROW_COUNT",
    "USER",
    "CURRENT_USER",
    "SESSION_USER",
    "SYSTEM_USER",
    "LOAD_FILE",
];

/// Why `sql` (a write) cannot be replicated safely, or `None` when it can. `user_functions`
/// holds the upper-case names of functions the backend does not vouch for (loadable UDFs and
/// stored functions not declared DETERMINISTIC).
pub fn unsafe_reason(sql: &str, user_functions: &HashSet<String>) -> Option<String> {
    split(sql, true)
        .iter()
        .find_map(|piece| unsafe_tokens(&piece.tokens, user_functions))
}

fn is_call(tokens: &[Token], i: usize) -> bool {
    tokens.get(i + 1).is_some_and(|t| t.is_punct('('))
}

fn unsafe_tokens(t: &[Token], user_functions: &HashSet<String>) -> Option<String> {
    for (i, tok) in t.iter().enumerate() {
        if !matches!(tok.kind, TokenKind::Word | TokenKind::QuotedIdent) {
            continue;
        }
        let name = tok.text.to_ascii_uppercase();
        if user_functions.contains(&name) && is_call(t, i) {
            return Some(format!(
                "user-defined function {name}() is not declared DETERMINISTIC, so its replay may differ"
            ));
        }
        if tok.kind != TokenKind::Word {
            continue;
        }
        let name = name.as_str();
        if NONDETERMINISTIC.contains(&name) && is_call(t, i) {
            return Some(format!(
                "{name}() gives a different value on each server, so the statement cannot be replicated"
            ));
        }
        if name == "RAND" && is_call(t, i) && t.get(i + 2).is_some_and(|a| a.is_punct(')')) {
            return Some(
                "RAND() without a seed gives a different value on each server, so the statement cannot be replicated; use RAND(seed)"
                    .into(),
            );
        }
    }
    if t.iter()
        .any(|x| x.kind == TokenKind::Var && (x.text == "@@SERVER_ID" || x.text == "@@HOSTNAME"))
    {
        return Some("server variables such as @@server_id differ between servers".into());
    }
    let first = t.first().map(|x| x.text.as_str()).unwrap_or("");
    let has = |kw: &str| t.iter().any(|x| x.is_word(kw));
    if matches!(first, "UPDATE" | "DELETE") && has("LIMIT") && !has("ORDER") {
        return Some(format!(
            "{first} … LIMIT without ORDER BY may pick different rows on each server; add an ORDER BY on a unique key"
        ));
    }
    if matches!(first, "INSERT" | "REPLACE") && has("SELECT") && !has("ORDER") {
        return Some(
            "INSERT … SELECT without ORDER BY may insert rows in a different order (and with different AUTO_INCREMENT ids) on each server; add an ORDER BY on a unique key"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::unsafe_reason;

    #[test]
    fn refuses_what_replays_differently_and_allows_what_the_log_pins() {
        let unsafe_ = [
            "INSERT INTO t VALUES (UUID())",
            "insert into t values (uuid_short())",
            "UPDATE t SET v = SYSDATE()",
            "UPDATE t SET v = RAND()",
            "UPDATE t SET v = RAND( )",
            "DELETE FROM t LIMIT 1",
            "UPDATE t SET v = 1 WHERE v > 0 LIMIT 10",
            "INSERT INTO t SELECT * FROM u",
            "INSERT INTO t (a) SELECT a FROM u WHERE a > 1",
            "INSERT INTO t VALUES (CONNECTION_ID())",
            "INSERT INTO t VALUES (CURRENT_USER())",
            "INSERT INTO t VALUES (@@server_id)",
            "INSERT INTO t VALUES (/*!50000 UUID() */)",
        ];
        let udfs: HashSet<String> = ["MY_UDF".to_string()].into();
        for sql in unsafe_.iter().chain(&[
            "INSERT INTO t VALUES (my_udf(1))",
            "UPDATE t SET v = `my_udf`()",
        ]) {
            assert!(unsafe_reason(sql, &udfs).is_some(), "{sql} must be refused");
        }
        let safe = [
            "INSERT INTO t VALUES (NOW(6), CURRENT_TIMESTAMP, UNIX_TIMESTAMP())",
            "INSERT INTO t (id, v) VALUES (NULL, 1)",
            "UPDATE t SET v = RAND(42)",
            "UPDATE t SET v = 'UUID()'",
            "INSERT INTO t VALUES ('-- RAND()')",
            "DELETE FROM t ORDER BY id LIMIT 1",
            "INSERT INTO t SELECT * FROM u ORDER BY id",
            "UPDATE t SET uuid = 1",
            "INSERT INTO t VALUES (1) /* UUID() */",
        ];
        for sql in safe.iter().chain(&[
            "INSERT INTO t VALUES ('my_udf(1)')",
            "UPDATE my_udf SET a = 1",
        ]) {
            assert_eq!(unsafe_reason(sql, &udfs), None, "{sql} is safe");
        }
    }
}
