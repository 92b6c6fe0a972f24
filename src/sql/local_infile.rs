//! `LOAD DATA LOCAL INFILE` / `LOAD XML LOCAL INFILE` make the *server* ask the *client* for a
//! file. Through a node the backend would ask the node instead, so the node refuses them: no file
//! of the node's host can ever be read this way.

use super::lexer::split;

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
}
