//! Classifies the SQL text of a COM_QUERY packet so the node's policy can
//! decide whether the client may run it.
//!
//! Pipeline: `lexer` strips comments (inlining executable ones, which the
//! server runs) and splits the packet on `;`; each statement is parsed with
//! sqlparser's MySQL dialect and also run through the keyword rules of
//! `keywords`. The statement's class is the max of both, so sqlparser
//! modelling something loosely (it reads `SET GLOBAL TRANSACTION …` as a plain
//! `SET TRANSACTION`) can never make a statement look harmless. What
//! sqlparser cannot parse is judged by the keyword rules alone, and a leading
//! keyword they do not know makes the statement Admin: only admins may run
//! what we do not understand.

use std::ops::ControlFlow;

use sqlparser::ast::{self, ObjectType, SetExpr, Visit, Visitor, visit_relations};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::class::StatementClass;
use super::keywords::{self, Ctx, MAX_NESTING, push_unique};
use super::lexer::{self, Piece};

/// One statement of a packet and what the classifier found out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The class the policy judges this statement by.
    pub class: StatementClass,
    /// Leading keyword(s) in upper case, e.g. "SELECT", "CREATE TABLE", "DROP DATABASE", "SET", "USE" — used in error messages.
    pub verb: String,
    /// Tables touched, as written: "db.t" or "t" (deduplicated, in order of appearance). Best effort.
    pub tables: Vec<String>,
    /// Databases named explicitly (CREATE/DROP DATABASE x, USE x, db of db.t).
    pub databases: Vec<String>,
    /// For `USE db`: the database it switches to (the session tracks it).
    pub use_database: Option<String>,
    /// Why this statement was classified by the keyword fallback instead of the parser (None when sqlparser parsed it).
    pub fallback_reason: Option<String>,
    /// A loadable UDF this statement calls that the config does not list safe (set by the
    /// session, which knows the backend's UDFs): it makes the statement Admin, and its refusal
    /// names the UDF and how to list it safe.
    pub unsafe_udf: Option<String>,
}

/// The classification of a whole packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    /// One entry per statement in the packet, in order; empty statements (e.g. trailing `;`) are skipped.
    pub statements: Vec<Statement>,
}

impl Classified {
    /// The most restrictive class of all statements (Read for an empty packet).
    pub fn class(&self) -> StatementClass {
        self.statements
            .iter()
            .map(|s| s.class)
            .max()
            .unwrap_or(StatementClass::Read)
    }

    /// The statement that determines `class()` (first one of that class), if any.
    pub fn decisive(&self) -> Option<&Statement> {
        let class = self.class();
        self.statements.iter().find(|s| s.class == class)
    }
}

/// Classifies the SQL text of one COM_QUERY packet. Never panics.
///
/// The text is lexed twice, with and without backslash escapes in strings,
/// because the proxy cannot know whether the session runs with
/// `NO_BACKSLASH_ESCAPES`; `'a\'; DROP TABLE t; -- '` is one harmless SELECT
/// in one mode and a DROP in the other. The stricter reading wins.
pub fn classify(sql: &str) -> Classified {
    let normal = classify_mode(sql, true, 0);
    let no_backslash = classify_mode(sql, false, 0);
    if no_backslash.class() > normal.class() {
        no_backslash
    } else {
        normal
    }
}

/// Class of SQL nested in another statement (`PREPARE s FROM '…'`,
/// `SET STATEMENT … FOR …`, `EXPLAIN …`); Admin once nested too deep.
pub(super) fn nested_class(sql: &str, backslash_escapes: bool, depth: usize) -> StatementClass {
    if depth > MAX_NESTING {
        return StatementClass::Admin;
    }
    classify_mode(sql, backslash_escapes, depth).class()
}

fn classify_mode(sql: &str, backslash_escapes: bool, depth: usize) -> Classified {
    let ctx = Ctx {
        backslash_escapes,
        depth,
        nested: nested_class,
    };
    let statements = lexer::split(sql, backslash_escapes)
        .iter()
        .map(|piece| classify_piece(piece, ctx))
        .collect();
    Classified { statements }
}

fn classify_piece(piece: &Piece, ctx: Ctx) -> Statement {
    let kw = keywords::classify_tokens(&piece.text, &piece.tokens, ctx);
    let mut class = kw.class;
    let stored_program = ["CREATE", "ALTER"].iter().any(|v| {
        ["PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"]
            .iter()
            .any(|o| kw.verb == format!("{v} {o}"))
    });
    if piece.compound || stored_program {
        // A stored-program body: its inner statements are judged too, so
        // that `CREATE PROCEDURE … BEGIN SET GLOBAL …; END` is Admin (a
        // definer-rights routine runs with its creator's privileges), and a
        // BEGIN we misread as a block cannot swallow the statement after it.
        // Inner lines we do not recognise (DECLARE, END IF, …) are not held
        // against it.
        for inner in body_statements(&piece.tokens).into_iter().skip(1) {
            let v = keywords::classify_tokens(&piece.text, inner, ctx);
            if v.use_database.is_some() {
                // USE is not allowed in a stored program: we merged two
                // statements by mistake, and the session would lose track of
                // its database. Only admins get that benefit of the doubt.
                class = StatementClass::Admin;
            } else if v.known {
                class = class.max(v.class);
            }
        }
    }
    let db_statement =
        kw.verb.ends_with(" DATABASE") || kw.verb.ends_with(" SCHEMA") || kw.verb == "USE";
    match parse(&piece.text) {
        Ok(parsed) => {
            let mut tables = Vec::new();
            // What a SHOW looks into is read by the keyword rules alone.
            let show = kw.verb.starts_with("SHOW");
            let mut databases = if db_statement || show || kw.verb == "CALL" {
                kw.databases.clone()
            } else {
                Vec::new()
            };
            if show {
                // sqlparser reads `SHOW TABLES FROM db` as naming a table `db`.
                tables.extend(kw.tables.iter().cloned());
            }
            for stmt in &parsed {
                class = class.max(parser_class(stmt));
                if !show {
                    collect_tables(stmt, &mut tables);
                }
            }
            for t in &tables {
                if let Some((db, _)) = t.split_once('.') {
                    push_unique(&mut databases, db.to_string());
                }
            }
            Statement {
                class,
                verb: kw.verb,
                tables,
                databases,
                use_database: kw.use_database,
                fallback_reason: None,
                unsafe_udf: None,
            }
        }
        Err(reason) => Statement {
            class,
            verb: kw.verb,
            tables: kw.tables,
            databases: kw.databases,
            use_database: kw.use_database,
            fallback_reason: Some(reason),
            unsafe_udf: None,
        },
    }
}

/// Splits a stored-program body into the statements it may run: at `;` and
/// after the words that introduce a statement (`BEGIN`, `THEN`, `DO`, …).
pub(super) fn body_statements(tokens: &[lexer::Token]) -> Vec<&[lexer::Token]> {
    const STARTERS: &[&str] = &["BEGIN", "ATOMIC", "THEN", "ELSE", "DO", "LOOP", "REPEAT"];
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.is_punct(';') {
            out.push(&tokens[start..i]);
            start = i + 1;
        } else if STARTERS.iter().any(|k| t.is_word(k)) {
            out.push(&tokens[start..=i]);
            start = i + 1;
        }
    }
    out.push(&tokens[start..]);
    out
}

fn parse(text: &str) -> Result<Vec<ast::Statement>, String> {
    // sqlparser limits its recursion depth (deep nesting is an error, not a
    // stack overflow); catching a panic is extra insurance for a proxy.
    let result = std::panic::catch_unwind(|| Parser::parse_sql(&MySqlDialect {}, text));
    match result {
        Ok(Ok(stmts)) if stmts.is_empty() => Err("sqlparser returned no statement".to_string()),
        Ok(Ok(stmts)) => Ok(stmts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("sqlparser panicked".to_string()),
    }
}

/// What the parsed AST says. Variants not listed are Admin: a new or exotic
/// statement must be looked at before it is allowed to non-admins.
fn parser_class(stmt: &ast::Statement) -> StatementClass {
    use StatementClass::*;
    use ast::Statement as S;
    match stmt {
        S::Query(q) => query_class(q),
        // EXECUTE IMMEDIATE '…' is judged by its literal in keywords.rs
        // (sqlparser reads MySQL's form as EXECUTE of a statement named
        // IMMEDIATE).
        S::Execute {
            immediate, name, ..
        } if *immediate
            || name
                .as_ref()
                .is_some_and(|n| object_name(n).eq_ignore_ascii_case("IMMEDIATE")) =>
        {
            Read
        }
        S::Insert(_)
        | S::Update(_)
        | S::Delete(_)
        | S::Merge(_)
        | S::Call(_)
        | S::Execute { .. } => Write,
        // EXPLAIN ANALYZE runs the statement; a plain EXPLAIN of a write is
        // kept Write too (see keywords::explain).
        S::Explain { statement, .. } => parser_class(statement),
        S::ExplainTable { .. }
        | S::ShowFunctions { .. }
        | S::ShowVariable { .. }
        | S::ShowStatus { .. }
        | S::ShowVariables { .. }
        | S::ShowCreate { .. }
        | S::ShowColumns { .. }
        | S::ShowCatalogs { .. }
        | S::ShowDatabases { .. }
        | S::ShowProcessList { .. }
        | S::ShowSchemas { .. }
        | S::ShowCharset(_)
        | S::ShowObjects(_)
        | S::ShowTables { .. }
        | S::ShowViews { .. }
        | S::ShowCollation { .. } => Read,
        S::Use(_) | S::LockTables { .. } | S::UnlockTables | S::Deallocate { .. } => Session,
        S::Set(set) => match set {
            ast::Set::SetRole { .. } | ast::Set::SetSessionAuthorization(_) => Admin,
            ast::Set::SingleAssignment {
                scope: Some(ast::ContextModifier::Global),
                ..
            } => Admin,
            _ => Session,
        },
        // A BEGIN … END block of statements (other dialects' syntax).
        S::StartTransaction { statements, .. } if !statements.is_empty() => Ddl,
        S::StartTransaction { .. }
        | S::Commit { .. }
        | S::Rollback { .. }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. } => Transaction,
        S::CreateTable(ct) if ct.temporary => Session,
        S::Drop {
            object_type: ObjectType::Table,
            temporary: true,
            ..
        } => Session,
        S::Drop {
            object_type: ObjectType::User | ObjectType::Role,
            ..
        } => Admin,
        S::CreateTable(_)
        | S::CreateView(_)
        | S::CreateIndex(_)
        | S::CreateDatabase { .. }
        | S::CreateSchema { .. }
        | S::CreateFunction(_)
        | S::CreateProcedure { .. }
        | S::CreateTrigger(_)
        | S::CreateSequence { .. }
        | S::AlterTable(_)
        | S::AlterSchema(_)
        | S::AlterIndex { .. }
        | S::AlterView(_)
        | S::AlterFunction(_)
        | S::AlterTrigger(_)
        | S::Drop { .. }
        | S::DropFunction(_)
        | S::DropProcedure { .. }
        | S::DropTrigger(_)
        | S::Truncate(_)
        | S::RenameTable(_)
        | S::Analyze(_)
        | S::OptimizeTable { .. } => Ddl,
        _ => Admin,
    }
}

fn query_class(q: &ast::Query) -> StatementClass {
    let ctes = q
        .with
        .iter()
        .flat_map(|w| &w.cte_tables)
        .map(|cte| query_class(&cte.query));
    ctes.fold(set_expr_class(&q.body), StatementClass::max)
}

fn set_expr_class(body: &SetExpr) -> StatementClass {
    match body {
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => StatementClass::Read,
        SetExpr::Query(q) => query_class(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_class(left).max(set_expr_class(right))
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            StatementClass::Write
        }
        // Unknown future variants: judge strictly; the keyword rules decide
        // whether that is really more than a read.
        #[allow(unreachable_patterns)]
        _ => StatementClass::Admin,
    }
}

fn object_name(name: &ast::ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Collects the names introduced by `WITH name AS (…)`.
struct CteNames(Vec<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        for cte in q.with.iter().flat_map(|w| &w.cte_tables) {
            self.0.push(cte.alias.name.value.clone());
        }
        ControlFlow::Continue(())
    }
}

fn collect_tables(stmt: &ast::Statement, tables: &mut Vec<String>) {
    match stmt {
        // Database names are reported as databases, not tables.
        ast::Statement::CreateDatabase { .. }
        | ast::Statement::CreateSchema { .. }
        | ast::Statement::Use(_) => return,
        ast::Statement::Drop {
            object_type,
            names,
            table,
            ..
        } => {
            if matches!(
                object_type,
                ObjectType::Table | ObjectType::View | ObjectType::Sequence
            ) {
                for n in names {
                    push_unique(tables, object_name(n));
                }
            }
            if let Some(t) = table {
                push_unique(tables, object_name(t));
            }
            return;
        }
        // Not covered by visit_relations.
        ast::Statement::RenameTable(renames) => {
            for r in renames {
                push_unique(tables, object_name(&r.old_name));
                push_unique(tables, object_name(&r.new_name));
            }
        }
        ast::Statement::CreateSequence { name, .. } => push_unique(tables, object_name(name)),
        _ => {}
    }
    // CTE names look like tables in the AST but are not.
    let mut ctes = CteNames(Vec::new());
    let _ = stmt.visit(&mut ctes);
    let ctes = ctes.0;
    let _ = visit_relations(stmt, |name| {
        let name = object_name(name);
        if !ctes.contains(&name) {
            push_unique(tables, name);
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
#[path = "classify_tests.rs"]
pub(crate) mod tests;
