//! `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>`: which connection a statement kills, so that
//! a user may kill its own connections without the admin role.

use super::lexer::{TokenKind, split};

/// The connection id a lone `KILL` statement names (`None` for anything else, including
/// `KILL QUERY ID <query id>` and `KILL USER <name>`, which stay admin statements).
pub fn kill_target(sql: &str) -> Option<u32> {
    let pieces = split(sql, true);
    let [piece] = pieces.as_slice() else {
        return None;
    };
    let mut tokens = piece.tokens.iter().peekable();
    if !tokens.next()?.is_word("KILL") {
        return None;
    }
    for optional in [["HARD", "SOFT"], ["CONNECTION", "QUERY"]] {
        if tokens
            .peek()
            .is_some_and(|t| optional.iter().any(|w| t.is_word(w)))
        {
            tokens.next();
        }
    }
    let id = tokens.next()?;
    if id.kind != TokenKind::Word || tokens.next().is_some() {
        return None;
    }
    id.text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::kill_target;

    #[test]
    fn reads_the_connection_a_kill_names() {
        assert_eq!(kill_target("KILL 42"), Some(42));
        assert_eq!(kill_target("kill query 42;"), Some(42));
        assert_eq!(kill_target("KILL HARD CONNECTION 7"), Some(7));
        assert_eq!(kill_target("KILL /* c */ QUERY 9"), Some(9));
        assert_eq!(kill_target("KILL QUERY ID 9"), None);
        assert_eq!(kill_target("KILL USER bob"), None);
        assert_eq!(kill_target("KILL 1; DROP TABLE t"), None);
        assert_eq!(kill_target("SELECT 1"), None);
    }
}
