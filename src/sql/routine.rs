//! `CALL` runs a stored procedure's body with its definer's rights, so a `CALL` is only as
//! harmless as that body; a `SELECT f()` changes data when the stored function `f` does. The
//! node reads the bodies from its backend and judges them here, statement by statement, as it
//! judges a `CREATE PROCEDURE`.

use super::class::StatementClass;
use super::classify::{body_statements, nested_class};
use super::keywords::{self, Ctx, anywhere_class};
use super::lexer::{self, TokenKind};

/// Procedures the packet `sql` calls, as written (`p` or `db.p`, unquoted), in order, each once.
/// Both ways of lexing strings are looked at, so a `CALL` that one of them hides in a string is
/// still found.
pub fn called(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for escapes in [true, false] {
        let (text, tokens) = lexer::lex(sql, escapes);
        for (i, tok) in tokens.iter().enumerate() {
            if !tok.is_word("CALL") {
                continue;
            }
            let name_at = |j: usize| tokens.get(j).and_then(|t| identifier(&text, t));
            let Some(first) = name_at(i + 1) else {
                continue;
            };
            let dotted = tokens.get(i + 2).is_some_and(|t| t.is_punct('.'));
            let name = match name_at(i + 3).filter(|_| dotted) {
                Some(second) => format!("{first}.{second}"),
                None => first,
            };
            keywords::push_unique(&mut out, name);
        }
    }
    out
}

/// The name a word or quoted identifier token stands for, as written in `text` (a word's token
/// text is upper-cased).
fn identifier(text: &str, t: &lexer::Token) -> Option<String> {
    match t.kind {
        TokenKind::Word => Some(text.get(t.start..t.end).unwrap_or(&t.text).to_string()),
        TokenKind::QuotedIdent => Some(t.text.clone()),
        _ => None,
    }
}

/// Names the packet `sql` may call as functions, lower-cased (`f` or `db.f`): every word or
/// quoted identifier right before `(`. Built-ins and table names come along too; the caller
/// matches them against the stored functions the backend has, so they only cost a lookup.
pub fn function_calls(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for escapes in [true, false] {
        let (text, tokens) = lexer::lex(sql, escapes);
        let name = |t: &lexer::Token| identifier(&text, t).map(|n| n.to_lowercase());
        for (i, pair) in tokens.windows(2).enumerate() {
            if !pair[1].is_punct('(') {
                continue;
            }
            let Some(f) = name(&pair[0]) else {
                continue;
            };
            let schema = i
                .checked_sub(2)
                .filter(|_| tokens[i - 1].is_punct('.'))
                .and_then(|j| name(&tokens[j]));
            keywords::push_unique(
                &mut out,
                match schema {
                    Some(db) => format!("{db}.{f}"),
                    None => f,
                },
            );
        }
    }
    out
}

/// The strictest class of the statements a routine body (information_schema's
/// `ROUTINE_DEFINITION`: `BEGIN … END` or one statement) may run. Lines the keyword rules do not
/// know as statements (`DECLARE … HANDLER FOR DROP …`, `IF … THEN`) still count by their
/// dangerous keywords. The routines it calls in turn are the caller's to look up.
fn statements_class(body: &str) -> StatementClass {
    let mut class = StatementClass::Read;
    for backslash_escapes in [true, false] {
        let ctx = Ctx {
            backslash_escapes,
            depth: 0,
            nested: nested_class,
        };
        let (text, tokens) = lexer::lex(body, backslash_escapes);
        for inner in body_statements(&tokens) {
            let v = keywords::classify_tokens(&text, inner, ctx);
            class = class.max(if v.known {
                v.class
            } else {
                anywhere_class(inner)
            });
            if v.use_database.is_some() {
                // USE is not allowed in a routine: the body was split wrongly.
                class = StatementClass::Admin;
            }
        }
    }
    class
}

/// The class of what a procedure body may run, at least Write (a `CALL` is judged a write).
pub fn body_class(body: &str) -> StatementClass {
    statements_class(body).max(StatementClass::Write)
}

/// True when a stored function's body may change data itself (the functions it calls are the
/// caller's to look up); a `CALL` in it counts as a change.
pub fn function_writes(body: &str) -> bool {
    statements_class(body) >= StatementClass::Write || !called(body).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass::*;

    #[test]
    fn finds_called_procedures() {
        assert_eq!(called("CALL p()"), vec!["p"]);
        assert_eq!(
            called("call `my db`.`p q`(1); CALL d.p2"),
            vec!["my db.p q", "d.p2"]
        );
        assert_eq!(called("SELECT 'CALL x()'"), Vec::<String>::new());
        // Hidden from one lexing of strings but not the other: found.
        assert_eq!(called("SELECT 'a\\'; CALL p(); -- '"), vec!["p"]);
    }

    #[test]
    fn finds_what_may_be_function_calls() {
        assert_eq!(
            function_calls("SELECT f(1), `My Db`.G (2), d . h(3) FROM t WHERE x IN (1)"),
            vec!["f", "my db.g", "d.h", "in"]
        );
        assert_eq!(
            function_calls("SELECT 'f(1)', a FROM t"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn tells_functions_that_write() {
        for (body, writes) in [
            ("RETURN 1", false),
            ("RETURN (SELECT COUNT(*) FROM t)", false),
            ("BEGIN DECLARE n INT; SET n = 2; RETURN n; END", false),
            ("BEGIN INSERT INTO log VALUES (1); RETURN 1; END", true),
            ("BEGIN UPDATE t SET a = 1; RETURN 0; END", true),
            ("BEGIN CALL p(); RETURN 0; END", true),
        ] {
            assert_eq!(function_writes(body), writes, "{body}");
        }
    }

    #[test]
    fn judges_bodies_by_their_strictest_statement() {
        for (body, expected) in [
            ("BEGIN INSERT INTO t VALUES (1); END", Write),
            ("UPDATE t SET a = 1", Write),
            ("BEGIN SELECT 1; END", Write),
            ("BEGIN DROP TABLE t; END", Ddl),
            ("DROP TABLE t", Ddl),
            ("BEGIN IF 1 THEN CREATE TABLE x (a INT); END IF; END", Ddl),
            (
                "BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION DROP TABLE t; SELECT 1; END",
                Ddl,
            ),
            ("BEGIN SET GLOBAL max_connections = 1; END", Admin),
            ("BEGIN PREPARE s FROM @q; EXECUTE s; END", Admin),
            ("BEGIN PREPARE s FROM 'TRUNCATE t'; EXECUTE s; END", Ddl),
            ("BEGIN GRANT ALL ON *.* TO x; END", Admin),
        ] {
            assert_eq!(body_class(body), expected, "{body}");
        }
    }
}
