//! Which databases a user's statements may touch.
//!
//! Every node's backend account is an administrator, so the node is the only fence between a
//! client and the server's accounts: the system schemas are for admin users, and a user's
//! `databases` patterns (as in GRANT: `%` any run, `_` one character, `\` escapes) narrow what
//! it may touch further. `information_schema` stays open to all, as on a server: drivers and
//! tools read their metadata there.

use crate::config::UserRole;

/// The database where a node keeps its replication bookkeeping; clients may read it only.
pub const BOOKKEEPING_DB: &str = "myrelay";

/// Schemas that hold the server's accounts and state and the node's bookkeeping.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "performance_schema", "sys", BOOKKEEPING_DB];

/// The schema every user may read.
pub const METADATA_SCHEMA: &str = "information_schema";

/// Tables of [`METADATA_SCHEMA`] of which a server shows a user its own rows only: the clients'
/// statements, the accounts' privileges and roles. Every client of a node is the backend's
/// administrator, so there they would show everyone's: they are for admin users.
pub const ACCOUNT_VIEWS: [&str; 7] = [
    "PROCESSLIST",
    "USER_PRIVILEGES",
    "SCHEMA_PRIVILEGES",
    "TABLE_PRIVILEGES",
    "COLUMN_PRIVILEGES",
    "APPLICABLE_ROLES",
    "ENABLED_ROLES",
];

/// A database name as written, without its identifier quotes.
pub fn unquoted(name: &str) -> &str {
    name.trim_matches(|c| c == '`' || c == '"')
}

/// A table as written (`db.t` or `t`) as its database (`current_db` when not qualified) and its
/// name, unquoted.
pub fn placed<'s>(current_db: Option<&'s str>, table: &'s str) -> (Option<&'s str>, &'s str) {
    match table.split_once('.') {
        Some((db, name)) => (Some(unquoted(db)), unquoted(name)),
        None => (current_db, unquoted(table)),
    }
}

/// True for a system schema (see [`SYSTEM_SCHEMAS`]).
pub fn is_system(db: &str) -> bool {
    let db = unquoted(db);
    SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db))
}

/// True when a user of `role` whose `databases` patterns are these (`None`: the role's
/// default) may touch `db`. By default admins touch everything and other roles everything but
/// the system schemas.
pub fn allowed(role: UserRole, databases: Option<&[String]>, db: &str) -> bool {
    let db = unquoted(db);
    if db.eq_ignore_ascii_case(METADATA_SCHEMA) {
        return true;
    }
    match databases {
        Some(patterns) => patterns.iter().any(|p| matches(p, db)),
        None => role == UserRole::Admin || !is_system(db),
    }
}

/// True when `name` matches the GRANT-style `pattern` (ASCII case-insensitive: a node refuses
/// rather than guesses on a server whose names are case-sensitive).
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('%', rest)) => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        Some(('_', rest)) => !name.is_empty() && matches_from(rest, &name[1..]),
        Some(('\\', rest)) if !rest.is_empty() => literal(rest[0], &rest[1..], name),
        Some((c, rest)) => literal(*c, rest, name),
    }
}

fn literal(c: char, rest: &[char], name: &[char]) -> bool {
    name.first().is_some_and(|n| n.eq_ignore_ascii_case(&c)) && matches_from(rest, &name[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_patterns() {
        assert!(matches("school", "school"));
        assert!(matches("school", "School"));
        assert!(!matches("school", "schools"));
        assert!(matches("shop_%", "shop_eu"));
        assert!(matches("shop_%", "shopX"));
        assert!(!matches("shop\\_%", "shopX"));
        assert!(matches("shop\\_%", "shop_eu"));
        assert!(matches("%", "anything"));
        assert!(!matches("s_", "s"));
    }

    #[test]
    fn system_schemas_are_for_admins_unless_listed() {
        for db in ["mysql", "`MySQL`", "performance_schema", "sys", "myrelay"] {
            assert!(!allowed(UserRole::App, None, db), "{db}");
            assert!(!allowed(UserRole::Readonly, None, db), "{db}");
            assert!(allowed(UserRole::Admin, None, db), "{db}");
        }
        assert!(allowed(UserRole::App, None, "school"));
        assert!(allowed(UserRole::Readonly, None, "information_schema"));
        let school = ["school".to_string()];
        assert!(allowed(UserRole::App, Some(&school), "school"));
        assert!(!allowed(UserRole::Admin, Some(&school), "shop"));
        assert!(allowed(UserRole::App, Some(&school), "INFORMATION_SCHEMA"));
    }
}
