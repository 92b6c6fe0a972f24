//! The read-only fast path: a plain `SELECT` is recognised from the lexer's tokens alone, without
//! sqlparser and without lexing twice, which is most of what classifying costs on the text
//! protocol.
//!
//! It is an allowlist, not a second classifier: the answer is either "certainly one read" or
//! "ask [`classify`](super::classify::classify)". It sees the packet through the same lexer the
//! classifier uses, so comments are gone and executable comments are code before any rule looks,
//! and nothing hidden in them can pass. A packet qualifies only if
//! - it has no backslash, so both ways of lexing strings (with and without
//!   `NO_BACKSLASH_ESCAPES`) read the same statement;
//! - it is one statement (no `;` outside strings, no compound body), starting with `SELECT`;
//! - every function it calls is a built-in on [`PURE_CALLS`] (no `NEXTVAL`, `LOAD_FILE`,
//!   `GET_LOCK`, stored or loadable functions), and a word before `(` that is not a call is a
//!   keyword on [`PAREN_KEYWORDS`];
//! - it has no `INTO` (`OUTFILE`/`DUMPFILE`/variables), no sequence access (`NEXT`/`PREVIOUS
//!   VALUE FOR`), no `PROCEDURE`, and no `:=` assignment;
//! - the classifier's own "dangerous anywhere" keyword rules find nothing in it.
//!
//! Everything else takes the full path, so the fast path can only be slower to say "read", never
//! wrong about it.

use super::class::StatementClass;
use super::classify::{Classified, Statement};
use super::keywords::anywhere_class;
use super::lexer::{self, Token, TokenKind};

/// Built-in functions without side effects on the server or the session.
const PURE_CALLS: &[&str] = &[
    "ABS",
    "AVG",
    "BIT_LENGTH",
    "CAST",
    "CEIL",
    "CEILING",
    "CHAR_LENGTH",
    "COALESCE",
    "CONCAT",
    "CONCAT_WS",
    "CONVERT",
    "COUNT",
    "CURDATE",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "CURTIME",
    "DATE",
    "DATE_ADD",
    "DATE_FORMAT",
    "DATE_SUB",
    "DATEDIFF",
    "DAY",
    "DAYOFWEEK",
    "FLOOR",
    "FORMAT",
    "FROM_UNIXTIME",
    "GREATEST",
    "GROUP_CONCAT",
    "HEX",
    "HOUR",
    "IF",
    "IFNULL",
    "INSTR",
    "LCASE",
    "LEAST",
    "LEFT",
    "LENGTH",
    "LOCATE",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MAX",
    "MD5",
    "MIN",
    "MINUTE",
    "MOD",
    "MONTH",
    "NOW",
    "NULLIF",
    "POSITION",
    "POW",
    "POWER",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "ROUND",
    "RPAD",
    "RTRIM",
    "SECOND",
    "SHA1",
    "SHA2",
    "SIGN",
    "SQRT",
    "STD",
    "STDDEV",
    "STR_TO_DATE",
    "SUBSTR",
    "SUBSTRING",
    "SUM",
    "TIMESTAMPDIFF",
    "TRIM",
    "TRUNCATE",
    "UCASE",
    "UNHEX",
    "UNIX_TIMESTAMP",
    "UPPER",
    "UTC_TIMESTAMP",
    "YEAR",
];

/// Keywords that may stand before `(` without calling anything (subqueries, lists, grouping).
const PAREN_KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "EXISTS", "ON", "USING", "AS", "JOIN",
    "UNION", "ALL", "DISTINCT", "ANY", "SOME", "BY", "HAVING", "WHEN", "THEN", "ELSE", "IS",
    "LIKE", "BETWEEN", "CASE", "XOR", "DIV",
];

/// Words that change what a `SELECT` is (or may be): left to the full classifier.
const NOT_PLAIN: &[&str] = &["INTO", "NEXT", "PREVIOUS", "VALUE", "PROCEDURE", "LASTVAL"];

/// `Some` when `sql` is certainly one plain read (see the module doc), classified as the full
/// classifier would for the policy's purposes; `None` means "classify it fully".
pub fn plain_select(sql: &str) -> Option<Classified> {
    if sql.contains('\\') {
        return None;
    }
    let (_, tokens) = lexer::lex(sql, true);
    let mut tokens = tokens.as_slice();
    // One trailing `;` ends the statement; any other `;` starts another one.
    if let [rest @ .., last] = tokens
        && last.is_punct(';')
    {
        tokens = rest;
    }
    let (first, _) = tokens.split_first()?;
    if !first.is_word("SELECT") {
        return None;
    }
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        let plain = match token.kind {
            TokenKind::Word => word_is_plain(token, next),
            TokenKind::Punct => {
                !(token.is_punct(';') || token.is_punct(':') || qualifies(tokens, i))
            }
            TokenKind::Str | TokenKind::QuotedIdent | TokenKind::Var => true,
        };
        if !plain {
            return None;
        }
    }
    if anywhere_class(tokens) != StatementClass::Read {
        return None;
    }
    Some(Classified {
        statements: vec![Statement {
            class: StatementClass::Read,
            verb: "SELECT".into(),
            tables: Vec::new(),
            databases: Vec::new(),
            use_database: None,
            fallback_reason: None,
            unsafe_udf: None,
        }],
    })
}

/// True when the `.` at `i` qualifies a name (`db.t`, `t.col`): which database a qualified name
/// reaches is the parser's to say, so such reads take the full path. Unqualified tables are in
/// the current database, which the policy judged when the session selected it.
fn qualifies(tokens: &[Token], i: usize) -> bool {
    tokens[i].is_punct('.')
        && i.checked_sub(1)
            .and_then(|p| tokens.get(p))
            .is_some_and(|prev| match prev.kind {
                TokenKind::QuotedIdent => true,
                TokenKind::Word => !prev.text.starts_with(|c: char| c.is_ascii_digit()),
                _ => false,
            })
}

/// A word is plain unless it is on [`NOT_PLAIN`] or calls something off [`PURE_CALLS`].
fn word_is_plain(word: &Token, next: Option<&Token>) -> bool {
    let text = word.text.as_str();
    if NOT_PLAIN.contains(&text) {
        return false;
    }
    if !next.is_some_and(|n| n.is_punct('(')) {
        return true;
    }
    PURE_CALLS.contains(&text) || PAREN_KEYWORDS.contains(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::classify::{classify, tests::CASES};

    #[test]
    fn takes_the_common_reads() {
        for sql in [
            "SELECT c FROM sbtest1 WHERE id=5",
            "SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c",
            "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100",
            "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c;",
            "SELECT 1.5, c FROM t",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u) FOR UPDATE",
            "SELECT 'DROP TABLE t', `drop` FROM t -- DROP TABLE t",
            "SELECT @@version, @a",
        ] {
            assert!(plain_select(sql).is_some(), "{sql}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_classifier() {
        for sql in [
            "SELECT 1; DROP TABLE t",
            "SELECT 1 /*!; DROP TABLE t */",
            "SELECT 1 /*M!100000 ; DROP TABLE t */",
            "SELECT * FROM t /*! INTO OUTFILE '/tmp/x' */",
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            "SELECT a INTO @v FROM t",
            "SELECT NEXTVAL(s)",
            "SELECT NEXT VALUE FOR s",
            "SELECT LOAD_FILE('/etc/passwd')",
            "SELECT GET_LOCK('x', 1)",
            "SELECT my_function(1)",
            "SELECT @a := 1",
            "SELECT 'a\\'; DROP TABLE t; -- '",
            "SELECT * FROM t PROCEDURE ANALYSE()",
            "/* SELECT */ DROP TABLE t",
            "INSERT INTO t SELECT 1",
            // Qualified names: which database they reach is the parser's to say.
            "SELECT * FROM mysql.user",
            "SELECT * FROM `mysql`.user",
            "select s.name from school.student s",
            "",
        ] {
            assert!(plain_select(sql).is_none(), "{sql}");
        }
    }

    /// Whatever the fast path takes, the full classifier calls one read statement too.
    #[test]
    fn agrees_with_the_classifier_on_every_case() {
        let mut taken = 0;
        for (sql, _) in CASES {
            if let Some(fast) = plain_select(sql) {
                let full = classify(sql);
                assert_eq!(full.class(), StatementClass::Read, "{sql}");
                assert_eq!(full.statements.len(), 1, "{sql}");
                assert_eq!(
                    fast.decisive().map(|s| &s.verb),
                    Some(&full.statements[0].verb)
                );
                taken += 1;
            }
        }
        assert!(
            taken >= 10,
            "the fast path took only {taken} of the classifier's cases"
        );
    }

    /// Every prefix of a dangerous packet is either refused by the fast path or a read.
    #[test]
    fn every_prefix_is_safe() {
        let sql = "SELECT a, COUNT(*) FROM t /*!50000 , (SELECT NEXTVAL(s)) */ WHERE b = 'x;y' GROUP BY a; DROP TABLE t";
        for end in (0..=sql.len()).filter(|&i| sql.is_char_boundary(i)) {
            let prefix = &sql[..end];
            if plain_select(prefix).is_some() {
                assert_eq!(classify(prefix).class(), StatementClass::Read, "{prefix}");
            }
        }
    }
}
