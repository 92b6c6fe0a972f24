//! Statements whose answer is about the session's previous statement or its state: a slave
//! that forwarded a write sends these to the master, where that write ran.

use super::lexer::{Token, TokenKind, split};

/// Functions and variables that report on the previous statement.
const ABOUT_LAST: [&str; 3] = ["ROW_COUNT", "LAST_INSERT_ID", "FOUND_ROWS"];
const COUNTS: [&str; 4] = [
    "@@WARNING_COUNT",
    "@@ERROR_COUNT",
    "@@SESSION.WARNING_COUNT",
    "@@SESSION.ERROR_COUNT",
];

fn about_last(tokens: &[Token]) -> bool {
    let show = tokens.first().is_some_and(|t| t.is_word("SHOW"))
        && tokens
            .iter()
            .skip(1)
            .any(|t| t.is_word("WARNINGS") || t.is_word("ERRORS"));
    show || tokens.iter().enumerate().any(|(i, t)| {
        (t.kind == TokenKind::Word
            && ABOUT_LAST.contains(&t.text.as_str())
            && tokens.get(i + 1).is_some_and(|n| n.is_punct('(')))
            || (t.kind == TokenKind::Var && COUNTS.contains(&t.text.as_str()))
    })
}

/// True when `sql` asks about the previous statement: `SHOW WARNINGS` / `SHOW ERRORS` (and
/// their `COUNT(*)` forms), `ROW_COUNT()`, `LAST_INSERT_ID()`, `FOUND_ROWS()`,
/// `@@warning_count`, `@@error_count`.
pub fn reads_last_statement(sql: &str) -> bool {
    [true, false]
        .into_iter()
        .any(|escapes| split(sql, escapes).iter().any(|p| about_last(&p.tokens)))
}

/// True when `sql` assigns a user variable inside another statement (`SELECT @v := …`,
/// `SELECT … INTO @v`), which changes the session as a `SET` does.
pub fn assigns_user_variable(sql: &str) -> bool {
    let user_var = |t: &Token| t.kind == TokenKind::Var && !t.text.starts_with("@@");
    [true, false].into_iter().any(|escapes| {
        split(sql, escapes).iter().any(|p| {
            p.tokens
                .windows(3)
                .any(|w| user_var(&w[0]) && w[1].is_punct(':') && w[2].is_punct('='))
                || p.tokens
                    .windows(2)
                    .any(|w| w[0].is_word("INTO") && user_var(&w[1]))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_questions_about_the_last_statement() {
        for sql in [
            "SHOW WARNINGS",
            "show errors limit 1",
            "SHOW COUNT(*) WARNINGS",
            "SELECT ROW_COUNT()",
            "select last_insert_id ( )",
            "SELECT FOUND_ROWS(), 1",
            "SELECT @@warning_count",
            "SELECT @@session.error_count",
        ] {
            assert!(reads_last_statement(sql), "{sql}");
        }
        for sql in [
            "SELECT 'ROW_COUNT()'",
            "SELECT row_count FROM t",
            "SELECT 1 -- LAST_INSERT_ID()",
            "SHOW TABLES",
        ] {
            assert!(!reads_last_statement(sql), "{sql}");
        }
    }

    #[test]
    fn recognises_user_variable_assignments() {
        assert!(assigns_user_variable("SELECT @v := MAX(id) FROM t"));
        assert!(assigns_user_variable("SELECT @v:=1"));
        assert!(!assigns_user_variable("SELECT @v"));
        assert!(!assigns_user_variable("SELECT '@v := 1'"));
        assert!(assigns_user_variable("SELECT MAX(id) INTO @mx FROM t"));
        assert!(assigns_user_variable(
            "SELECT a, b FROM t LIMIT 1 INTO @a, @b"
        ));
        assert!(!assigns_user_variable(
            "SELECT a INTO OUTFILE '/tmp/x' FROM t"
        ));
        assert!(!assigns_user_variable("SELECT @@x INTO @@y"));
    }
}
