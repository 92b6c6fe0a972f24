//! Keyword classifier: the fallback for what sqlparser cannot parse, and a
//! second opinion on what it can (the final class is the max of both).
//!
//! It works on bare-word tokens from `super::lexer`, so words inside strings,
//! quoted identifiers and comments never count, while executable comments do.
//! Two rule sets are combined with `max`: what the leading keywords say, and
//! "dangerous keyword anywhere" — so a DDL or admin statement cannot pass as
//! a read or a write however it is dressed up. Errors only go towards the
//! stricter class (a column named `flush` makes a SELECT Admin).

use super::class::StatementClass;
use super::client_charset::sets_unsafe_client_charset;
use super::lexer::{Token, TokenKind};

use StatementClass::{Admin, Ddl, Read, Session, Transaction, Write};

/// How deep `PREPARE … FROM '…'` / `SET STATEMENT … FOR …` may nest before we
/// give up and say Admin (bounds recursion on hostile input).
pub const MAX_NESTING: usize = 8;

/// Context for classifying statements nested in a literal or a `FOR` clause.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Whether strings are lexed with backslash escapes (see `lexer::split`).
    pub backslash_escapes: bool,
    /// Current nesting depth.
    pub depth: usize,
    /// Classifies a nested statement (a body, a prepared text) at a depth: the classifier's
    /// entry point, passed in so that the keyword rules do not depend on the classifier.
    pub nested: fn(&str, bool, usize) -> StatementClass,
}

/// What the keyword rules say about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Max of the leading-keyword class and the keyword-anywhere class.
    pub class: StatementClass,
    /// False when the leading keyword is not one we know (class is then Admin).
    pub known: bool,
    /// Leading keyword(s), upper case.
    pub verb: String,
    /// Tables found by simple keyword patterns (best effort).
    pub tables: Vec<String>,
    /// Databases named explicitly.
    pub databases: Vec<String>,
    /// Target of `USE db`.
    pub use_database: Option<String>,
}

/// Classifies one statement from its tokens; `text` is the normalised text
/// the token offsets point into (used to classify a nested statement).
pub fn classify_tokens(text: &str, toks: &[Token], ctx: Ctx) -> Verdict {
    // `(SELECT 1)`: leading parentheses do not change what the statement is.
    let lead = toks.iter().take_while(|t| t.is_punct('(')).count();
    let body = toks.get(lead..).unwrap_or_default();
    let head = leading_rule(text, body, ctx);
    let rest = body.get(head.len..).unwrap_or_default();
    let class = head.class.max(anywhere_class(rest));
    let (tables, databases) = names(text, body, &head.verb);
    let use_database = if head.verb == "USE" {
        body.get(1)
            .filter(|t| is_name(t))
            .map(|t| as_written(text, t))
    } else {
        None
    };
    Verdict {
        class,
        known: head.known,
        verb: head.verb,
        tables,
        databases,
        use_database,
    }
}

/// Result of the leading-keyword rules.
struct Head {
    class: StatementClass,
    known: bool,
    verb: String,
    /// Tokens making up the leading keywords; the anywhere rules skip them,
    /// so `CREATE TEMPORARY TABLE` or `SHOW CREATE TABLE` are not flagged by
    /// their own verb.
    len: usize,
}

fn head(class: StatementClass, verb: &str, len: usize) -> Head {
    Head {
        class,
        known: true,
        verb: verb.to_string(),
        len,
    }
}

fn word(toks: &[Token], i: usize) -> Option<&str> {
    toks.get(i)
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| t.text.as_str())
}

fn is_name(t: &Token) -> bool {
    matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent)
}

/// An identifier as the user wrote it, without quotes (token text of words
/// is upper-cased, so words are taken from the statement text).
fn as_written(text: &str, t: &Token) -> String {
    match t.kind {
        TokenKind::Word => text.get(t.start..t.end).unwrap_or(&t.text).to_string(),
        _ => t.text.clone(),
    }
}

/// Object kinds that may follow CREATE/DROP/ALTER, and the class each implies.
const OBJECTS: &[(&str, StatementClass)] = &[
    ("DATABASE", Ddl),
    ("SCHEMA", Ddl),
    ("TABLE", Ddl),
    ("INDEX", Ddl),
    ("VIEW", Ddl),
    ("TRIGGER", Ddl),
    ("PROCEDURE", Ddl),
    ("FUNCTION", Ddl),
    ("EVENT", Ddl),
    ("SEQUENCE", Ddl),
    ("TABLESPACE", Ddl),
    ("PACKAGE", Ddl),
    ("SYNONYM", Ddl),
    ("USER", Admin),
    ("ROLE", Admin),
    ("SERVER", Admin),
    ("INSTANCE", Admin),
    ("RESOURCE", Admin),
    ("LOGFILE", Admin),
];

fn leading_rule(text: &str, t: &[Token], ctx: Ctx) -> Head {
    let Some(w0) = word(t, 0) else {
        return Head {
            class: Admin,
            known: false,
            verb: t.first().map(|t| t.text.clone()).unwrap_or_default(),
            len: 0,
        };
    };
    let w1 = word(t, 1).unwrap_or("");
    match w0 {
        "SELECT" | "VALUES" | "TABLE" | "HELP" | "DO" | "HANDLER" | "SIGNAL" | "RESIGNAL" => {
            head(Read, w0, 1)
        }
        "WITH" => head(Read, &with_verb(t), 1),
        "SHOW" => match (w1, word(t, 2)) {
            ("GRANTS", _) => head(Read, "SHOW GRANTS", 2),
            ("PROCESSLIST", _) => head(Read, "SHOW PROCESSLIST", 2),
            ("DATABASES" | "SCHEMAS", _) => head(Read, "SHOW DATABASES", 2),
            ("FULL", Some("PROCESSLIST")) => head(Read, "SHOW PROCESSLIST", 3),
            ("CREATE", Some("USER")) => head(Read, "SHOW CREATE USER", 3),
            _ => head(Read, "SHOW", 2),
        },
        "CHECK" | "CHECKSUM" | "GET" => head(Read, &format!("{w0} {w1}"), 2),
        "DESCRIBE" | "DESC" | "EXPLAIN" => explain(text, t, ctx, w0),
        "ANALYZE" => analyze(text, t, ctx),
        "USE" => head(Session, "USE", 1),
        "SET" => set_statement(text, t, ctx),
        "LOCK" | "UNLOCK" => match w1 {
            "TABLE" | "TABLES" => head(Session, &format!("{w0} TABLES"), 2),
            _ => head(Admin, &format!("{w0} {w1}"), 2),
        },
        "DEALLOCATE" => head(Session, "DEALLOCATE PREPARE", 2),
        "PREPARE" => prepare(t, ctx),
        "EXECUTE" if w1 == "IMMEDIATE" => {
            literal_statement(t, 2, &["USING"], ctx, "EXECUTE IMMEDIATE")
        }
        "EXECUTE" => head(Write, "EXECUTE", 1),
        "BEGIN" if w1 == "NOT" && word(t, 2) == Some("ATOMIC") => head(Ddl, "BEGIN NOT ATOMIC", 3),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "XA" => head(Transaction, w0, 1),
        "RELEASE" => head(Transaction, "RELEASE SAVEPOINT", 2),
        "START" if w1 == "TRANSACTION" => head(Transaction, "START TRANSACTION", 2),
        "START" | "STOP" => head(Admin, &format!("{w0} {w1}"), 2),
        "INSERT" | "REPLACE" | "UPDATE" | "DELETE" | "CALL" => head(Write, w0, 1),
        "CREATE" | "DROP" | "ALTER" => create_drop_alter(t, w0),
        "RENAME" if w1 == "USER" => head(Admin, "RENAME USER", 2),
        "RENAME" => head(Ddl, &format!("RENAME {w1}"), 2),
        "TRUNCATE" => head(Ddl, "TRUNCATE TABLE", 1),
        "OPTIMIZE" | "REPAIR" => head(Ddl, &format!("{w0} TABLE"), 1),
        // The server's own files need FILE rights (admin); a LOCAL file is the client's data,
        // which the node itself asks the client for: a write like an INSERT.
        "LOAD"
            if t.iter()
                .take_while(|k| !k.is_word("INFILE"))
                .any(|k| k.is_word("LOCAL")) =>
        {
            head(Write, &format!("LOAD {w1} LOCAL"), 2)
        }
        "LOAD" => head(Admin, &format!("LOAD {w1}"), 2),
        "GRANT" | "REVOKE" | "KILL" | "SHUTDOWN" | "FLUSH" | "RESET" | "PURGE" | "CHANGE"
        | "INSTALL" | "UNINSTALL" | "BINLOG" | "CACHE" | "RESTART" | "CLONE" | "BACKUP"
        | "IMPORT" => head(Admin, w0, 1),
        // Only admins may run what we do not understand.
        _ => Head {
            class: Admin,
            known: false,
            verb: w0.to_string(),
            len: 1,
        },
    }
}

/// Verb of `WITH … <stmt>`: the first statement keyword outside parentheses.
fn with_verb(t: &[Token]) -> String {
    let mut depth = 0usize;
    for tok in t.iter().skip(1) {
        if tok.is_punct('(') {
            depth += 1;
        } else if tok.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0
            && [
                "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "TABLE", "VALUES",
            ]
            .iter()
            .any(|k| tok.is_word(k))
        {
            return tok.text.clone();
        }
    }
    "WITH".to_string()
}

fn nested(sql: &str, ctx: Ctx) -> StatementClass {
    (ctx.nested)(sql, ctx.backslash_escapes, ctx.depth + 1)
}

/// The rest of the statement from token `i` on, as text.
fn rest_text<'a>(text: &'a str, t: &[Token], i: usize) -> &'a str {
    t.get(i)
        .and_then(|tok| text.get(tok.start..))
        .unwrap_or_default()
}

/// `EXPLAIN <stmt>` takes the class of `<stmt>`: `EXPLAIN ANALYZE` executes
/// it, and a plain EXPLAIN of a write is kept Write to stay on the safe side.
/// `EXPLAIN t` / `DESCRIBE t` list columns: Read.
fn explain(text: &str, t: &[Token], ctx: Ctx, w0: &str) -> Head {
    let mut i = 1;
    loop {
        match word(t, i) {
            Some("EXTENDED" | "PARTITIONS" | "ANALYZE" | "VERBOSE") => i += 1,
            Some("FORMAT") => {
                i += if t.get(i + 1).is_some_and(|t| t.is_punct('=')) {
                    3
                } else {
                    2
                }
            }
            _ => break,
        }
    }
    match t.get(i) {
        Some(tok) if tok.is_punct('(') || starts_statement(tok) => {
            head(nested(rest_text(text, t, i), ctx).max(Read), w0, i)
        }
        _ => head(Read, w0, i),
    }
}

fn starts_statement(tok: &Token) -> bool {
    [
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "TABLE", "WITH", "VALUES",
    ]
    .iter()
    .any(|k| tok.is_word(k))
}

/// `ANALYZE TABLE t` is maintenance (Ddl); MariaDB's `ANALYZE <stmt>` runs
/// the statement, so it takes that statement's class.
fn analyze(text: &str, t: &[Token], ctx: Ctx) -> Head {
    let mut i = 1;
    loop {
        match word(t, i) {
            Some("NO_WRITE_TO_BINLOG" | "LOCAL") => i += 1,
            Some("TABLE" | "TABLES") => return head(Ddl, "ANALYZE TABLE", i + 1),
            Some("FORMAT") => {
                i += if t.get(i + 1).is_some_and(|t| t.is_punct('=')) {
                    3
                } else {
                    2
                }
            }
            _ => break,
        }
    }
    match t.get(i) {
        Some(tok) if tok.is_punct('(') || starts_statement(tok) => {
            head(nested(rest_text(text, t, i), ctx), "ANALYZE", i)
        }
        _ => head(Admin, "ANALYZE", 1),
    }
}

/// `PREPARE s FROM '…'` is judged by the literal; `FROM @var` cannot be
/// verified here, so only admins may run it.
fn prepare(t: &[Token], ctx: Ctx) -> Head {
    match word(t, 2) {
        Some("FROM") => literal_statement(t, 3, &[], ctx, "PREPARE"),
        _ => head(Admin, "PREPARE", 1),
    }
}

/// Class of the SQL held in string literal(s) at token `i` (the server joins
/// adjacent literals: `'SELECT 1' ' INTO OUTFILE …'`). Anything else there —
/// a variable, an expression, a hex or charset-prefixed literal — cannot be
/// checked here: Admin. Words in `allowed_after` may follow the literal.
fn literal_statement(t: &[Token], i: usize, allowed_after: &[&str], ctx: Ctx, verb: &str) -> Head {
    let lits: Vec<&str> = t
        .iter()
        .skip(i)
        .take_while(|tok| tok.kind == TokenKind::Str)
        .map(|tok| tok.text.as_str())
        .collect();
    let end = i + lits.len();
    let tail_ok = t
        .get(end)
        .is_none_or(|tok| allowed_after.iter().any(|k| tok.is_word(k)));
    if lits.is_empty() || !tail_ok {
        return head(Admin, verb, 1);
    }
    head(nested(&lits.concat(), ctx), verb, end)
}

fn create_drop_alter(t: &[Token], w0: &str) -> Head {
    if w0 == "DROP" && word(t, 1) == Some("PREPARE") {
        return head(Session, "DROP PREPARE", 2);
    }
    let mut temporary = false;
    // Modifiers (OR REPLACE, DEFINER = …, ALGORITHM = …, UNIQUE …) come
    // before the object keyword; the first object keyword decides.
    for (i, tok) in t.iter().enumerate().skip(1).take(16) {
        if tok.is_word("TEMPORARY") {
            temporary = true;
            continue;
        }
        if tok.kind != TokenKind::Word {
            continue;
        }
        if let Some((obj, class)) = OBJECTS.iter().find(|(o, _)| tok.text == *o) {
            if temporary && *obj == "TABLE" && w0 != "ALTER" {
                return head(Session, &format!("{w0} TEMPORARY TABLE"), i + 1);
            }
            return head(*class, &format!("{w0} {obj}"), i + 1);
        }
    }
    head(Ddl, w0, 1)
}

/// Session variables whose change needs privileges or hides statements from
/// replication/auditing: treated like SET GLOBAL.
const RESTRICTED_VARS: &[&str] = &[
    "SQL_LOG_BIN",
    "SQL_LOG_OFF",
    "GTID_NEXT",
    "GTID_SEQ_NO",
    "GTID_DOMAIN_ID",
    "SERVER_ID",
    "PSEUDO_THREAD_ID",
    "PSEUDO_SLAVE_MODE",
    "PSEUDO_REPLICA_MODE",
    "BINLOG_FORMAT",
    "BINLOG_ROW_IMAGE",
    "SKIP_REPLICATION",
];

fn set_statement(text: &str, t: &[Token], ctx: Ctx) -> Head {
    match word(t, 1).unwrap_or("") {
        "STATEMENT" => {
            // SET STATEMENT var = v [, …] FOR <stmt>: the FOR outside parentheses.
            let mut depth = 0usize;
            for (i, tok) in t.iter().enumerate().skip(2) {
                if tok.is_punct('(') {
                    depth += 1;
                } else if tok.is_punct(')') {
                    depth = depth.saturating_sub(1);
                } else if depth == 0 && tok.is_word("FOR") {
                    let vars = assignments_class(t.get(2..i).unwrap_or_default())
                        .max(client_charset_class(t.get(2..i).unwrap_or_default()));
                    let inner = nested(rest_text(text, t, i + 1), ctx);
                    return head(Session.max(vars).max(inner), "SET STATEMENT", t.len());
                }
            }
            head(Admin, "SET STATEMENT", 2)
        }
        w1 => {
            let verb = match w1 {
                "PASSWORD" => "SET PASSWORD",
                "ROLE" => "SET ROLE",
                "DEFAULT" => "SET DEFAULT ROLE",
                "RESOURCE" => "SET RESOURCE GROUP",
                "TRANSACTION" => "SET TRANSACTION",
                _ => "SET",
            };
            let list = t.get(1..).unwrap_or_default();
            head(
                assignments_class(list).max(client_charset_class(list)),
                verb,
                1,
            )
        }
    }
}

/// Admin when the list makes the server read the client's text in a way the node's lexer does
/// not (see [`sets_unsafe_client_charset`]); only admins, who may run DDL anyway, may do that.
fn client_charset_class(list: &[Token]) -> StatementClass {
    if sets_unsafe_client_charset(list) {
        Admin
    } else {
        Session
    }
}

/// Class of `[scope] var = value, …` (the part after SET).
fn assignments_class(t: &[Token]) -> StatementClass {
    let mut class = Session;
    let mut depth = 0usize;
    let mut at_item_start = true;
    for tok in t {
        if tok.is_punct('(') {
            depth += 1;
        } else if tok.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tok.is_punct(',') {
            at_item_start = true;
            continue;
        }
        if depth > 0 || !at_item_start {
            continue;
        }
        match tok.kind {
            TokenKind::Word => match tok.text.as_str() {
                "GLOBAL" | "PERSIST" | "PERSIST_ONLY" => class = class.max(Admin),
                // Scope keywords: the variable follows.
                "SESSION" | "LOCAL" => {}
                name => {
                    class = class.max(system_var_class(name));
                    at_item_start = false;
                }
            },
            // `@@session . name`: the server's grammar allows space around the dot.
            TokenKind::Punct if tok.is_punct('.') => {}
            TokenKind::Var => {
                let v = tok.text.as_str();
                if let Some(sys) = v.strip_prefix("@@") {
                    match sys {
                        "GLOBAL" | "PERSIST" | "PERSIST_ONLY" => {
                            class = class.max(Admin);
                            continue;
                        }
                        // The name follows, after the dot.
                        "SESSION" | "LOCAL" => continue,
                        _ => {}
                    }
                    let (scope, name) = sys.split_once('.').unwrap_or(("SESSION", sys));
                    if !matches!(scope, "SESSION" | "LOCAL") {
                        class = class.max(Admin);
                    }
                    if name.is_empty() {
                        // `@@session.`name`` or `@@ name`: the name follows.
                        continue;
                    }
                    class = class.max(system_var_class(name));
                }
                at_item_start = false;
            }
            TokenKind::QuotedIdent => {
                class = class.max(system_var_class(&tok.text.to_ascii_uppercase()));
                at_item_start = false;
            }
            _ => at_item_start = false,
        }
    }
    class
}

/// Class of assigning `name` (upper case) at session scope. The first word
/// after SET goes through here too, so `SET PASSWORD`/`SET ROLE`/`SET DEFAULT
/// ROLE`/`SET RESOURCE GROUP` are caught wherever they sit in the list.
fn system_var_class(name: &str) -> StatementClass {
    match name {
        "AUTOCOMMIT" => Transaction,
        "PASSWORD" | "ROLE" | "DEFAULT" | "RESOURCE" => Admin,
        _ if RESTRICTED_VARS.contains(&name) => Admin,
        _ => Session,
    }
}

/// Keywords that make a statement at least `class` wherever they appear.
const ANYWHERE: &[(&str, StatementClass)] = &[
    ("CREATE", Ddl),
    ("DROP", Ddl),
    ("ALTER", Ddl),
    ("RENAME", Ddl),
    ("TRUNCATE", Ddl),
    ("GRANT", Admin),
    ("REVOKE", Admin),
    ("KILL", Admin),
    ("SHUTDOWN", Admin),
    ("FLUSH", Admin),
    ("OUTFILE", Admin),
    ("DUMPFILE", Admin),
    ("INFILE", Admin),
    ("INSTALL", Admin),
    ("UNINSTALL", Admin),
    ("PURGE", Admin),
    ("BINLOG", Admin),
    // Reads server files, like LOAD DATA INFILE.
    ("LOAD_FILE", Admin),
    // CREATE FUNCTION … SONAME loads a shared library (a UDF).
    ("SONAME", Admin),
    ("INSERT", Write),
    ("UPDATE", Write),
    ("DELETE", Write),
    ("REPLACE", Write),
    ("CALL", Write),
    ("NEXTVAL", Write),
    ("SETVAL", Write),
];

/// The "dangerous keyword anywhere" rules over bare words.
pub fn anywhere_class(t: &[Token]) -> StatementClass {
    let mut class = Read;
    for (i, tok) in t.iter().enumerate() {
        if tok.kind != TokenKind::Word {
            continue;
        }
        let next = t.get(i + 1);
        let prev = i.checked_sub(1).and_then(|p| t.get(p));
        let prev_is = |k: &str| prev.is_some_and(|p| p.is_word(k));
        let next_is_paren = next.is_some_and(|n| n.is_punct('('));
        let hit = match tok.text.as_str() {
            // INSERT(), REPLACE(), TRUNCATE() are also string/number functions.
            "INSERT" | "REPLACE" | "TRUNCATE" if next_is_paren => None,
            // SELECT … FOR UPDATE locks rows; ON UPDATE/ON DELETE are
            // column/foreign-key clauses of DDL.
            "UPDATE" if prev_is("FOR") || prev_is("ON") => None,
            "DELETE" if prev_is("ON") => None,
            // LOCAL INFILE is the client's file, which the node asks the client for.
            "INFILE" if t[..i].iter().any(|k| k.is_word("LOCAL")) => None,
            // NEXT VALUE FOR seq advances a sequence.
            "NEXT"
                if next.is_some_and(|n| n.is_word("VALUE"))
                    && t.get(i + 2).is_some_and(|n| n.is_word("FOR")) =>
            {
                Some(Write)
            }
            w => ANYWHERE.iter().find(|(k, _)| *k == w).map(|(_, c)| *c),
        };
        if let Some(c) = hit {
            class = class.max(c);
        }
    }
    class
}

/// Where the server keeps its accounts, which `SHOW GRANTS` and `SHOW CREATE USER` read (a
/// server asks for rights on it to show another account's).
const ACCOUNTS_DB: &str = "mysql";

/// True for the statements that show accounts (their grants, their password hashes): they
/// count as reading the accounts schema.
fn reads_accounts(verb: &str) -> bool {
    matches!(verb, "SHOW GRANTS" | "SHOW CREATE USER")
}

/// Best-effort table and database names from keyword patterns.
fn names(text: &str, t: &[Token], verb: &str) -> (Vec<String>, Vec<String>) {
    let mut tables: Vec<String> = Vec::new();
    let mut dbs: Vec<String> = Vec::new();
    if verb.starts_with("SHOW") {
        if reads_accounts(verb) {
            dbs.push(ACCOUNTS_DB.to_string());
        } else {
            show_names(text, t, &mut tables, &mut dbs);
        }
        return (tables, dbs);
    }
    if verb == "CALL" {
        // A procedure runs with its definer's rights: `CALL sys.p()` reaches into `sys`.
        let qualified = t.get(2).is_some_and(|x| x.is_punct('.'));
        if let Some(db) = t.get(1).filter(|x| qualified && is_name(x)) {
            dbs.push(as_written(text, db));
        }
        return (tables, dbs);
    }
    let db_stmt = verb.ends_with(" DATABASE") || verb.ends_with(" SCHEMA") || verb == "USE";
    let mut i = 0;
    while i < t.len() {
        let trigger = match t.get(i) {
            Some(tok) if tok.kind == TokenKind::Word => tok.text.as_str(),
            _ => {
                i += 1;
                continue;
            }
        };
        let is_trigger = match trigger {
            "TABLE" | "TABLES" | "INTO" | "FROM" | "JOIN" => true,
            "UPDATE" | "TRUNCATE" | "HANDLER" => i == 0,
            "DATABASE" | "SCHEMA" | "USE" => db_stmt,
            _ => false,
        };
        i += 1;
        if !is_trigger {
            continue;
        }
        while word(t, i).is_some_and(|w| matches!(w, "IF" | "NOT" | "EXISTS" | "TABLE")) {
            i += 1;
        }
        while let Some(first) = t.get(i).filter(|x| is_name(x) && !is_clause_word(x)) {
            let mut name = as_written(text, first);
            let mut db = None;
            let dot = t.get(i + 1).is_some_and(|x| x.is_punct('.'));
            if let Some(second) = t.get(i + 2).filter(|x| dot && is_name(x)) {
                db = Some(name.clone());
                name = format!("{name}.{}", as_written(text, second));
                i += 2;
            }
            i += 1;
            if matches!(trigger, "DATABASE" | "SCHEMA" | "USE") {
                push_unique(&mut dbs, name);
            } else {
                if let Some(db) = db {
                    push_unique(&mut dbs, db);
                }
                push_unique(&mut tables, name);
            }
            if t.get(i).is_some_and(|x| x.is_punct(',')) {
                i += 1;
            } else {
                break;
            }
        }
    }
    (tables, dbs)
}

/// The tables and databases a `SHOW` looks into: `SHOW CREATE TABLE db.t`, `SHOW CREATE
/// DATABASE db`, `SHOW [FULL] COLUMNS | INDEX FROM t [FROM db]`, `SHOW TABLES | TABLE STATUS |
/// TRIGGERS | EVENTS FROM db`, so that the policy judges them as it judges reading the tables.
fn show_names(text: &str, t: &[Token], tables: &mut Vec<String>, dbs: &mut Vec<String>) {
    // A name at `i`, qualified or not: (database, name, index after it).
    let name_at = |i: usize| -> Option<(Option<String>, String, usize)> {
        let first = t.get(i).filter(|x| is_name(x))?;
        let dot = t.get(i + 1).is_some_and(|x| x.is_punct('.'));
        Some(match t.get(i + 2).filter(|x| dot && is_name(x)) {
            Some(second) => (
                Some(as_written(text, first)),
                as_written(text, second),
                i + 3,
            ),
            None => (None, as_written(text, first), i + 1),
        })
    };
    let mut add_table = |db: Option<String>, name: String, dbs: &mut Vec<String>| match db {
        Some(db) => {
            push_unique(tables, format!("{db}.{name}"));
            push_unique(dbs, db);
        }
        None => push_unique(tables, name),
    };
    if word(t, 1) == Some("CREATE") {
        let mut at = 3;
        while word(t, at).is_some_and(|w| matches!(w, "IF" | "NOT" | "EXISTS")) {
            at += 1;
        }
        let Some((db, name, _)) = name_at(at) else {
            return;
        };
        match word(t, 2) {
            Some("DATABASE" | "SCHEMA") => push_unique(dbs, name),
            Some("TABLE" | "VIEW" | "SEQUENCE") => add_table(db, name, dbs),
            // A routine, trigger or event: its database.
            _ => dbs.extend(db),
        }
        return;
    }
    // Statements about one table's parts name the table first, then perhaps its database.
    let mut table_first = t
        .iter()
        .take_while(|x| !x.is_word("FROM") && !x.is_word("IN"))
        .any(|x| {
            ["COLUMNS", "FIELDS", "INDEX", "INDEXES", "KEYS"]
                .iter()
                .any(|w| x.is_word(w))
        });
    let mut table: Option<(Option<String>, String)> = None;
    let mut i = 1;
    while i < t.len() && !t[i].is_word("LIKE") && !t[i].is_word("WHERE") {
        if !t[i].is_word("FROM") && !t[i].is_word("IN") {
            i += 1;
            continue;
        }
        let Some((db, name, next)) = name_at(i + 1) else {
            break;
        };
        i = next;
        if std::mem::take(&mut table_first) {
            table = Some((db, name));
        } else if let Some((None, t)) = table.take() {
            table = Some((Some(name), t));
        } else {
            push_unique(dbs, name);
        }
    }
    if let Some((db, name)) = table {
        add_table(db, name, dbs);
    }
}

/// Words that follow INTO/FROM/TABLE without being a table name.
fn is_clause_word(t: &Token) -> bool {
    t.kind == TokenKind::Word
        && matches!(
            t.text.as_str(),
            "OUTFILE"
                | "DUMPFILE"
                | "CACHE"
                | "SELECT"
                | "VALUES"
                | "VALUE"
                | "DUAL"
                | "WITH"
                | "SET"
        )
}

/// Appends `v` unless present: names are reported once, in order of appearance.
pub fn push_unique(list: &mut Vec<String>, v: String) {
    if !list.contains(&v) {
        list.push(v);
    }
}
