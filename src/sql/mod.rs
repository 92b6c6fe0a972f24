//! SQL understanding: what a statement is ([`classify`]) and whether this node runs it ([`policy`]).

pub mod classify;
pub mod determinism;
pub mod keywords;
pub mod lexer;
pub mod local_infile;
pub mod policy;
pub mod prepare;

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
