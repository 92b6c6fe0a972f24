//! `LOAD DATA LOCAL INFILE` / `LOAD XML LOCAL INFILE` make the *server* ask the *client* for a
//! file. Through a node the backend would ask the node instead, so the node never lets the backend
//! read anything of its own: it refuses these statements, or (where the config allows them) asks
//! the client for the file itself and hands the backend exactly those bytes.

use super::lexer::{TokenKind, split};

/// True when `sql` holds a `LOAD … LOCAL INFILE` statement (comments cannot hide it).
pub fn is_local_infile(sql: &str) -> bool {
    [true, false].into_iter().any(|escapes| {
        split(sql, escapes).iter().any(|piece| {
            let words: Vec<&str> = piece
                .tokens
                .iter()
                .take(6)
                .map(|t| t.text.as_str())
                .collect();
            words.first() == Some(&"LOAD")
                && words.contains(&"LOCAL")
                && piece.tokens.iter().any(|t| t.is_word("INFILE"))
        })
    })
}

/// The file name of a packet that is exactly one `LOAD … LOCAL INFILE 'name'` statement, read
/// alike with and without backslash escapes; `None` otherwise.
pub fn local_infile_name(sql: &str) -> Option<String> {
    let read = |escapes: bool| match split(sql, escapes).as_slice() {
        [piece] if piece.tokens.first()?.is_word("LOAD") => {
            let at = piece.tokens.iter().position(|t| t.is_word("INFILE"))?;
            let local = piece.tokens[..at].iter().any(|t| t.is_word("LOCAL"));
            let name = piece
                .tokens
                .get(at + 1)
                .filter(|t| t.kind == TokenKind::Str)?;
            local.then(|| name.text.clone())
        }
        _ => None,
    };
    let name = read(true)?;
    (read(false)? == name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::is_local_infile;

    #[test]
    fn finds_local_infile_however_written() {
        for sql in [
            "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
            "load data low_priority local infile 'x' into table t",
            "/* c */ LOAD XML LOCAL INFILE 'x' INTO TABLE t",
            "SELECT 1; LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
            "/*!LOAD DATA LOCAL INFILE 'x' INTO TABLE t*/",
        ] {
            assert!(is_local_infile(sql), "{sql}");
        }
        for sql in [
            "LOAD DATA INFILE 'x' INTO TABLE t",
            "SELECT 'LOAD DATA LOCAL INFILE'",
            "SELECT local FROM infile",
        ] {
            assert!(!is_local_infile(sql), "{sql}");
        }
    }

    #[test]
    fn names_the_file_of_a_single_statement() {
        use super::local_infile_name;
        assert_eq!(
            local_infile_name("LOAD DATA LOCAL INFILE '/tmp/a.csv' INTO TABLE t").as_deref(),
            Some("/tmp/a.csv")
        );
        assert_eq!(
            local_infile_name("load xml low_priority local infile \"x.xml\" into table t")
                .as_deref(),
            Some("x.xml")
        );
        for sql in [
            "LOAD DATA INFILE 'x' INTO TABLE t",
            "SELECT 1; LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
            "LOAD DATA LOCAL INFILE @f INTO TABLE t",
            "LOAD DATA LOCAL INFILE 'a\\' INTO TABLE t -- '",
        ] {
            assert_eq!(local_infile_name(sql), None, "{sql}");
        }
    }
}
