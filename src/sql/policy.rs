//! Policy: (node role, user role, statement class) → execute, forward or refuse.
//!
//! A pure function, so every cell of the table is unit-tested without a server. Refusals carry
//! the MySQL error a client expects and say what was refused and why.

use super::class::StatementClass;
use super::classify::Statement;
use super::schemas::{
    self, ACCOUNT_VIEWS, BOOKKEEPING_DB, METADATA_SCHEMA, allowed, is_system, unquoted,
};
use crate::config::{NodeRole, UserRole};
use crate::error::{
    ER_DBACCESS_DENIED_ERROR, ER_OPTION_PREVENTS_STATEMENT, ER_SPECIFIC_ACCESS_DENIED_ERROR,
    ER_TABLEACCESS_DENIED_ERROR, ErrorReply,
};

/// What a node does with a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it on this node's backend.
    Execute,
    /// Send it to the master node (a write reaching a replicating slave).
    Forward,
    /// Refuse it with this error; the session stays usable.
    Refuse(ErrorReply),
}

/// Who is asking and where: the context of a decision.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This node's name.
    pub node: &'a str,
    /// This node's role.
    pub node_role: NodeRole,
    /// The master's client address, named in refusals on a slave.
    pub master: Option<&'a str>,
    /// The client's login name.
    pub user: &'a str,
    /// The role in force for this client.
    pub user_role: UserRole,
    /// A slave that follows a master sends writes there instead of refusing them.
    pub forward_writes: bool,
    /// The session's current database (unqualified tables live there).
    pub current_db: Option<&'a str>,
    /// The user's `databases` patterns; `None`: its role's default (see `sql/schemas.rs`).
    pub databases: Option<&'a [String]>,
}

/// A table as written as its database (the current one when not qualified) and its name.
fn placed<'s>(ctx: &Context<'s>, table: &'s str) -> (Option<&'s str>, &'s str) {
    schemas::placed(ctx.current_db, table)
}

/// The databases `stmt` touches, unquoted: those it names, and the current one for tables it
/// does not qualify.
fn touched<'s>(ctx: &Context<'s>, stmt: &'s Statement) -> Vec<&'s str> {
    let mut dbs: Vec<&str> = stmt.databases.iter().map(|d| unquoted(d)).collect();
    dbs.extend(stmt.tables.iter().filter_map(|t| placed(ctx, t).0));
    dbs
}

/// Decides what happens to `stmt` (the decisive statement of a packet) in context `ctx`.
pub fn decide(ctx: &Context<'_>, stmt: &Statement) -> Decision {
    use StatementClass::*;
    let verb = stmt.verb.as_str();
    let touched = touched(ctx, stmt);
    if matches!(stmt.class, Write | Ddl | Admin)
        && touched
            .iter()
            .any(|d| d.eq_ignore_ascii_case(BOOKKEEPING_DB))
    {
        return Decision::Refuse(ErrorReply::new(
            ER_DBACCESS_DENIED_ERROR,
            format!(
                "Access denied for user '{}' to database '{BOOKKEEPING_DB}': it holds the node's replication bookkeeping ({verb} refused)",
                ctx.user
            ),
        ));
    }
    // Changing the server's accounts or state is administration, whatever the statement's
    // shape: `DELETE FROM mysql.user` is no application write.
    let class = if matches!(stmt.class, Write | Ddl) && touched.iter().any(|d| is_system(d)) {
        Admin
    } else {
        stmt.class
    };
    if ctx.user_role != UserRole::Admin
        && let Some(table) = account_view(ctx, stmt)
    {
        return Decision::Refuse(if table.eq_ignore_ascii_case("PROCESSLIST") {
            ErrorReply::new(
                ER_SPECIFIC_ACCESS_DENIED_ERROR,
                format!(
                    "Access denied; you need (at least one of) the PROCESS privilege(s) for this operation: \
                     other clients' statements are for admin users (user '{}' has role {}); SHOW PROCESSLIST lists its own connections",
                    ctx.user,
                    ctx.user_role.as_str()
                ),
            )
        } else {
            ErrorReply::new(
                ER_TABLEACCESS_DENIED_ERROR,
                format!(
                    "{verb} command denied to user '{}' for table 'information_schema.{table}': \
                     it lists every account's privileges, for admin users only (user '{}' has role {})",
                    ctx.user,
                    ctx.user,
                    ctx.user_role.as_str()
                ),
            )
        });
    }
    match by_class(ctx, stmt, class) {
        Decision::Refuse(e) => Decision::Refuse(e),
        allowed => match database_refusal(ctx, verb, &stmt.tables, &touched) {
            Some(e) => Decision::Refuse(e),
            None => allowed,
        },
    }
}

/// The `information_schema` table of [`ACCOUNT_VIEWS`] that `stmt` reads, if any.
fn account_view<'s>(ctx: &Context<'s>, stmt: &'s Statement) -> Option<&'s str> {
    stmt.tables.iter().find_map(|t| {
        let (db, table) = placed(ctx, t);
        let hit = db.is_some_and(|d| d.eq_ignore_ascii_case(METADATA_SCHEMA))
            && ACCOUNT_VIEWS.iter().any(|v| v.eq_ignore_ascii_case(table));
        hit.then_some(table)
    })
}

/// The decision by node role, user role and `class` alone.
fn by_class(ctx: &Context<'_>, stmt: &Statement, class: StatementClass) -> Decision {
    use StatementClass::*;
    let verb = stmt.verb.as_str();
    match class {
        // A slave's tables are replication's: a client's table lock there would hold it back.
        Session if verb == "LOCK TABLES" && ctx.node_role == NodeRole::Slave => {
            Decision::Refuse(on_master_only(ctx, "table locks", verb))
        }
        Read | Session | Transaction => Decision::Execute,
        Write => {
            if ctx.user_role == UserRole::Readonly {
                return Decision::Refuse(ErrorReply::new(
                    ER_TABLEACCESS_DENIED_ERROR,
                    format!(
                        "{verb} command denied to user '{}' for table '{}': role readonly may only read",
                        ctx.user,
                        stmt.tables.first().map(String::as_str).unwrap_or("*"),
                    ),
                ));
            }
            match ctx.node_role {
                NodeRole::Master => Decision::Execute,
                NodeRole::Slave if ctx.forward_writes => Decision::Forward,
                NodeRole::Slave => Decision::Refuse(on_master_only(ctx, "writes", verb)),
            }
        }
        Ddl | Admin => {
            // A UDF is native code the node cannot read: say how an operator vouches for one.
            let (what, udf_hint) = match &stmt.unsafe_udf {
                Some(udf) => (
                    format!("a call of the loadable UDF {udf}()"),
                    format!(
                        "; a loadable UDF is native code the node cannot judge, so only admins \
                         may call it, on the master, unless the node's config lists it safe: add \
                         \"{udf}\" to safe_udfs in its [functions] section"
                    ),
                ),
                None if stmt.class == Ddl => ("DDL".into(), String::new()),
                None => ("administrative statements".into(), String::new()),
            };
            if ctx.node_role == NodeRole::Slave {
                let mut refusal = on_master_only(ctx, &what, verb);
                refusal.message.push_str(&udf_hint);
                return Decision::Refuse(refusal);
            }
            if ctx.user_role != UserRole::Admin {
                return Decision::Refuse(ErrorReply::new(
                    ER_SPECIFIC_ACCESS_DENIED_ERROR,
                    format!(
                        "Access denied; you need the admin role for {verb} ({what}): user '{}' has role {}{udf_hint}",
                        ctx.user,
                        ctx.user_role.as_str()
                    ),
                ));
            }
            Decision::Execute
        }
    }
}

/// The refusal of statement `verb` (on `tables`, in the databases `touched`) when it touches a
/// database this user may not touch: 1142 naming the table, or 1044 naming the database.
pub fn database_refusal(
    ctx: &Context<'_>,
    verb: &str,
    tables: &[String],
    touched: &[&str],
) -> Option<ErrorReply> {
    let db = touched
        .iter()
        .find(|db| !allowed(ctx.user_role, ctx.databases, db))?;
    let why = match ctx.databases {
        Some(patterns) => format!(
            "user '{}' may touch databases {}",
            ctx.user,
            patterns.join(", ")
        ),
        None => format!("'{db}' is a system schema, for admin users only"),
    };
    let in_db = |t: &&String| placed(ctx, t).0.is_some_and(|d| d.eq_ignore_ascii_case(db));
    Some(match tables.iter().find(in_db) {
        Some(table) => ErrorReply::new(
            ER_TABLEACCESS_DENIED_ERROR,
            format!(
                "{verb} command denied to user '{}' for table '{table}': {why}",
                ctx.user
            ),
        ),
        None => ErrorReply::new(
            ER_DBACCESS_DENIED_ERROR,
            format!(
                "Access denied for user '{}' to database '{db}': {why}",
                ctx.user
            ),
        ),
    })
}

fn on_master_only(ctx: &Context<'_>, what: &str, verb: &str) -> ErrorReply {
    ErrorReply::new(
        ER_OPTION_PREVENTS_STATEMENT,
        format!(
            "myrelay node '{}' is a slave: {what} ({verb}) must run on the master at {}",
            ctx.node,
            ctx.master.unwrap_or("(unknown master)")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn stmt(class: StatementClass) -> Statement {
        Statement {
            class,
            verb: "VERB".into(),
            tables: vec!["t".into()],
            databases: vec![],
            use_database: None,
            fallback_reason: None,
            unsafe_udf: None,
        }
    }

    /// Every (node role × user role × class) cell: the expected outcome as an error, None = execute.
    #[test]
    fn every_cell_of_the_policy() {
        use StatementClass::{Admin, Ddl, Read, Session, Transaction, Write};
        use UserRole::{App, Readonly};
        let classes = [Read, Session, Transaction, Write, Ddl, Admin];
        let expect = |node: NodeRole, user: UserRole, class: StatementClass| -> Option<Code> {
            match (node, user, class) {
                (_, _, Read | Session | Transaction) => None,
                (_, Readonly, Write) => Some(ER_TABLEACCESS_DENIED_ERROR),
                (NodeRole::Master, _, Write) => None,
                (NodeRole::Slave, _, Write) => Some(ER_OPTION_PREVENTS_STATEMENT),
                (NodeRole::Slave, _, Ddl | Admin) => Some(ER_OPTION_PREVENTS_STATEMENT),
                (NodeRole::Master, UserRole::Admin, Ddl | Admin) => None,
                (NodeRole::Master, _, Ddl | Admin) => Some(ER_SPECIFIC_ACCESS_DENIED_ERROR),
            }
        };
        let mut cells = 0;
        for node in [NodeRole::Master, NodeRole::Slave] {
            for user in [Readonly, App, UserRole::Admin] {
                for class in classes {
                    let ctx = Context {
                        node: "n1",
                        node_role: node,
                        master: Some("127.0.0.1:3307"),
                        user: "u",
                        user_role: user,
                        forward_writes: false,
                        current_db: None,
                        databases: None,
                    };
                    let expected = expect(node, user, class);
                    match decide(&ctx, &stmt(class)) {
                        Decision::Execute => assert_eq!(expected, None),
                        Decision::Forward => unreachable!("forwarding is off in this table"),
                        Decision::Refuse(e) => {
                            let code = expected.map(Code::code);
                            assert!(
                                expected.is_some_and(|c| e.is(c)),
                                "{node:?} {user:?} {class:?}: {e}, expected {code:?}"
                            );
                            if e.is(ER_OPTION_PREVENTS_STATEMENT) {
                                assert!(e.message.contains("127.0.0.1:3307"), "{e}");
                            }
                            assert!(e.message.contains("VERB"), "names the statement: {e}");
                        }
                    }
                    cells += 1;
                }
            }
        }
        assert_eq!(cells, 36);
    }

    #[test]
    fn the_bookkeeping_database_is_read_only_for_clients() {
        let ctx = |db: Option<&'static str>| Context {
            node: "m",
            node_role: NodeRole::Master,
            master: None,
            user: "root",
            user_role: UserRole::Admin,
            forward_writes: false,
            current_db: db,
            databases: None,
        };
        let with = |class, tables: &[&str], dbs: &[&str]| Statement {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            databases: dbs.iter().map(|d| d.to_string()).collect(),
            ..stmt(class)
        };
        use StatementClass::*;
        let refused =
            |d: Decision| matches!(d, Decision::Refuse(ref e) if e.is(ER_DBACCESS_DENIED_ERROR));
        assert!(refused(decide(
            &ctx(None),
            &with(Write, &["myrelay.applied"], &["myrelay"])
        )));
        assert!(refused(decide(
            &ctx(None),
            &with(Write, &["`MyRelay`.applied"], &[])
        )));
        assert!(refused(decide(
            &ctx(Some("myrelay")),
            &with(Write, &["applied"], &[])
        )));
        assert!(refused(decide(&ctx(None), &with(Ddl, &[], &["myrelay"]))));
        assert_eq!(
            decide(&ctx(None), &with(Read, &["myrelay.applied"], &["myrelay"])),
            Decision::Execute
        );
        assert_eq!(
            decide(&ctx(Some("school")), &with(Write, &["applied"], &[])),
            Decision::Execute
        );
    }

    #[test]
    fn a_following_slave_forwards_writes_but_still_refuses_ddl() {
        for user in [UserRole::App, UserRole::Admin, UserRole::Readonly] {
            let ctx = Context {
                node: "s1",
                node_role: NodeRole::Slave,
                master: Some("127.0.0.1:3307"),
                user: "u",
                user_role: user,
                forward_writes: true,
                current_db: None,
                databases: None,
            };
            let write = decide(&ctx, &stmt(StatementClass::Write));
            if user == UserRole::Readonly {
                assert!(
                    matches!(write, Decision::Refuse(ref e) if e.is(ER_TABLEACCESS_DENIED_ERROR))
                );
            } else {
                assert_eq!(write, Decision::Forward);
            }
            assert!(
                matches!(decide(&ctx, &stmt(StatementClass::Ddl)), Decision::Refuse(ref e) if e.is(ER_OPTION_PREVENTS_STATEMENT))
            );
        }
    }

    #[test]
    fn a_call_of_an_unsafe_udf_is_refused_saying_how_to_list_it_safe() {
        let udf = Statement {
            class: StatementClass::Admin,
            verb: "SELECT".into(),
            unsafe_udf: Some("risky".into()),
            ..stmt(StatementClass::Admin)
        };
        let ctx = |node_role, user_role| Context {
            node: "n1",
            node_role,
            master: Some("127.0.0.1:3307"),
            user: "u",
            user_role,
            forward_writes: true,
            current_db: None,
            databases: None,
        };
        for (node, user, code) in [
            (
                NodeRole::Master,
                UserRole::App,
                Some(ER_SPECIFIC_ACCESS_DENIED_ERROR),
            ),
            (
                NodeRole::Master,
                UserRole::Readonly,
                Some(ER_SPECIFIC_ACCESS_DENIED_ERROR),
            ),
            (NodeRole::Master, UserRole::Admin, None),
            (
                NodeRole::Slave,
                UserRole::Admin,
                Some(ER_OPTION_PREVENTS_STATEMENT),
            ),
            (
                NodeRole::Slave,
                UserRole::App,
                Some(ER_OPTION_PREVENTS_STATEMENT),
            ),
        ] {
            match (decide(&ctx(node, user), &udf), code) {
                (Decision::Execute, None) => {}
                (Decision::Refuse(e), Some(code)) => {
                    assert!(e.is(code), "{node:?} {user:?}: {e}");
                    for part in ["loadable UDF risky()", "safe_udfs", "[functions]", "SELECT"] {
                        assert!(e.message.contains(part), "{node:?} {user:?}: {e}");
                    }
                }
                (other, _) => panic!("{node:?} {user:?}: {other:?}"),
            }
        }
    }
}
