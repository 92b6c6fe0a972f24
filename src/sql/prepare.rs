//! SQL-level prepared statements (`PREPARE`, `EXECUTE … USING`, `EXECUTE IMMEDIATE`,
//! `DEALLOCATE PREPARE`), read so that a node can tell what an `EXECUTE` will run.
//!
//! `EXECUTE s USING @a` names neither the statement nor the values: replaying it elsewhere would
//! run whatever that server has prepared under `s`, with its own `@a`. So the session remembers
//! what each name was prepared from, and a node that logs or forwards the statement sends the
//! prepared text with the values inlined instead.

use super::lexer::{Piece, Token, TokenKind, split};

/// Where a `PREPARE … FROM` or `EXECUTE IMMEDIATE` takes its SQL from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A string literal (adjacent literals joined, as the server does).
    Literal(String),
    /// A user variable, as written (`@q`).
    Variable(String),
}

/// One SQL-level prepared-statement command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedSql {
    /// `PREPARE name FROM source`.
    Prepare {
        /// Statement name, upper-cased (names are case-insensitive).
        name: String,
        /// The SQL it prepares.
        source: Source,
    },
    /// `EXECUTE name [USING expr, …]`.
    Execute {
        /// Statement name, upper-cased.
        name: String,
        /// The `USING` expressions as written.
        using: Vec<String>,
    },
    /// `EXECUTE IMMEDIATE source [USING expr, …]`.
    Immediate {
        /// The SQL it runs.
        source: Source,
        /// The `USING` expressions as written.
        using: Vec<String>,
    },
    /// `DEALLOCATE PREPARE name` or `DROP PREPARE name`.
    Deallocate {
        /// Statement name, upper-cased.
        name: String,
    },
}

/// Reads a packet holding exactly one prepared-statement command. `None` for anything else, and
/// when the text reads differently with and without backslash escapes (the node cannot know the
/// session's `NO_BACKSLASH_ESCAPES`, so it does not guess).
pub fn parse(sql: &str) -> Option<PreparedSql> {
    let read = |escapes: bool| match split(sql, escapes).as_slice() {
        [piece] => command(piece),
        _ => None,
    };
    let normal = read(true)?;
    (read(false).as_ref() == Some(&normal)).then_some(normal)
}

fn command(piece: &Piece) -> Option<PreparedSql> {
    let t = piece.tokens.as_slice();
    let first = t.first()?;
    if first.is_word("PREPARE") {
        let name = name(t.get(1)?)?;
        t.get(2).filter(|k| k.is_word("FROM"))?;
        let (source, rest) = source(&t[3..])?;
        return rest
            .is_empty()
            .then_some(PreparedSql::Prepare { name, source });
    }
    if first.is_word("EXECUTE") && t.get(1).is_some_and(|k| k.is_word("IMMEDIATE")) {
        let (source, rest) = source(&t[2..])?;
        let using = using(&piece.text, rest)?;
        return Some(PreparedSql::Immediate { source, using });
    }
    if first.is_word("EXECUTE") {
        let name = name(t.get(1)?)?;
        let using = using(&piece.text, &t[2..])?;
        return Some(PreparedSql::Execute { name, using });
    }
    if (first.is_word("DEALLOCATE") || first.is_word("DROP"))
        && t.get(1).is_some_and(|k| k.is_word("PREPARE"))
        && t.len() == 3
    {
        return Some(PreparedSql::Deallocate { name: name(&t[2])? });
    }
    None
}

fn name(tok: &Token) -> Option<String> {
    match tok.kind {
        TokenKind::Word | TokenKind::QuotedIdent => Some(tok.text.to_uppercase()),
        _ => None,
    }
}

/// The source at the start of `t`, and the tokens after it.
fn source(t: &[Token]) -> Option<(Source, &[Token])> {
    let literals = t.iter().take_while(|k| k.kind == TokenKind::Str).count();
    if literals > 0 {
        let text = t[..literals].iter().map(|k| k.text.as_str()).collect();
        return Some((Source::Literal(text), &t[literals..]));
    }
    let var = t.first().filter(|k| k.kind == TokenKind::Var)?;
    // `@@system_var` is no user variable; and `FROM @a := …` is an expression.
    (!var.text.starts_with("@@")).then(|| (Source::Variable(var.text.clone()), &t[1..]))
}

/// The expressions of an optional `USING` clause: split on top-level commas, as written.
fn using(text: &str, t: &[Token]) -> Option<Vec<String>> {
    let Some((first, rest)) = t.split_first() else {
        return Some(Vec::new());
    };
    if !first.is_word("USING") || rest.is_empty() {
        return None;
    }
    let mut exprs = Vec::new();
    let (mut depth, mut start) = (0usize, rest[0].start);
    for tok in rest {
        if tok.is_punct('(') {
            depth += 1;
        } else if tok.is_punct(')') {
            depth = depth.checked_sub(1)?;
        } else if tok.is_punct(',') && depth == 0 {
            exprs.push(text.get(start..tok.start)?.trim().to_string());
            start = tok.end;
        }
    }
    exprs.push(text.get(start..rest.last()?.end)?.trim().to_string());
    exprs.iter().all(|e| !e.is_empty()).then_some(exprs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exprs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_each_command() {
        assert_eq!(
            parse("PREPARE ins FROM 'INSERT INTO t VALUES (?, ?)'"),
            Some(PreparedSql::Prepare {
                name: "INS".into(),
                source: Source::Literal("INSERT INTO t VALUES (?, ?)".into()),
            })
        );
        assert_eq!(
            parse("prepare `My` from @q;"),
            Some(PreparedSql::Prepare {
                name: "MY".into(),
                source: Source::Variable("@Q".into()),
            })
        );
        assert_eq!(
            parse("EXECUTE ins USING @a, CONCAT(@b, 'x,y'), 3 /* , */"),
            Some(PreparedSql::Execute {
                name: "INS".into(),
                using: exprs(&["@a", "CONCAT(@b, 'x,y')", "3"]),
            })
        );
        assert_eq!(
            parse("EXECUTE s"),
            Some(PreparedSql::Execute {
                name: "S".into(),
                using: vec![],
            })
        );
        assert_eq!(
            parse("EXECUTE IMMEDIATE 'DELETE FROM t WHERE id = ?' USING 7"),
            Some(PreparedSql::Immediate {
                source: Source::Literal("DELETE FROM t WHERE id = ?".into()),
                using: exprs(&["7"]),
            })
        );
        assert_eq!(
            parse("DEALLOCATE PREPARE ins"),
            Some(PreparedSql::Deallocate { name: "INS".into() })
        );
        assert_eq!(
            parse("DROP PREPARE ins"),
            Some(PreparedSql::Deallocate { name: "INS".into() })
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        for sql in [
            "SELECT 1",
            "PREPARE s FROM 'SELECT 1'; EXECUTE s",
            "EXECUTE s USING",
            "EXECUTE s USING @a,",
            "PREPARE s FROM @@sql_mode",
            "PREPARE s FROM CONCAT('SELECT ', 1)",
            "DROP TABLE prepare",
            // One statement with backslash escapes, something else without: not guessed.
            "PREPARE s FROM 'SELECT \\' ; DROP TABLE t; -- '",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }
}
