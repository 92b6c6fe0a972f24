//! SQL understanding: what a statement is ([`classify`]) and whether this node runs it ([`policy`]).

pub mod class;
pub mod classify;
pub mod client_charset;
pub mod diagnostics;
pub mod fast_read;
pub mod inline;
pub mod keywords;
pub mod kill;
pub mod lexer;
pub mod local_infile;
pub mod policy;
pub mod prepare;
pub mod replica;
pub mod routine;
pub mod schemas;

/// The upper-cased words of a packet, a trailing `;` dropped: enough to recognise the few fixed
/// statements the node answers or treats itself (`SHOW WARNINGS`, a plain `COMMIT`, …).
pub fn words(sql: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(sql)
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

/// `name` as a backtick-quoted identifier, safe to splice into SQL whatever it contains.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_identifiers() {
        assert_eq!(super::quote_ident("a`b"), "`a``b`");
    }
}
