//! The web console: login with a proxy user, server-side sessions behind an HttpOnly, SameSite
//! cookie, and SQL run as that user over a real MySQL connection to this node's own client port,
//! so the console is refused exactly what the same user's CLI would be.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use super::status::ApiStatus;
use crate::error::{ER_ACCESS_DENIED_ERROR, ErrorReply};
use crate::metrics::Refusal;
use crate::node::NodeShared;

/// A console session unused this long is forgotten.
const IDLE_EXPIRY: Duration = Duration::from_secs(30 * 60);
/// A console session is forgotten this long after login however busy it is.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Console sessions kept at most; a login beyond it forgets the least recently used one.
const MAX_SESSIONS: usize = 32;
/// Longest a console statement (or login) may take before its connection is dropped.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows of one result set the page shows at most.
const ROWS_SHOWN: usize = 500;

/// One logged-in browser.
pub struct ConsoleSession {
    /// The proxy user it runs SQL as.
    pub user: String,
    password: String,
    created: Instant,
    last_used: Mutex<Instant>,
    /// Its connection to this node's client port; reopened if lost.
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// The console sessions of one node.
pub struct Consoles {
    sessions: Mutex<HashMap<String, Arc<ConsoleSession>>>,
    /// Where the console connects: the node's own client port, on loopback if it listens on
    /// every address.
    client_addr: SocketAddr,
    /// The cookie's name: browsers share cookies across ports of one host, so each node's
    /// console names its own.
    pub cookie: String,
}

/// What a statement run from the console gave.
#[derive(Debug, Default)]
pub struct QueryOutcome {
    /// Its result sets, in order.
    pub sets: Vec<ResultSet>,
    /// The error that ended it, if any.
    pub error: Option<QueryError>,
}

/// One result set, as text.
#[derive(Debug, Default)]
pub struct ResultSet {
    /// Column names (empty for an OK without rows).
    pub columns: Vec<String>,
    /// Rows, at most [`ROWS_SHOWN`].
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows the server sent beyond those shown.
    pub more_rows: usize,
    /// Affected rows of an OK.
    pub affected: u64,
    /// The OK's info string.
    pub info: String,
}

/// A MySQL error as the console shows it.
#[derive(Debug, Clone)]
pub struct QueryError {
    /// MySQL error code (0 when the connection itself failed).
    pub code: u16,
    /// SQLSTATE.
    pub state: String,
    /// Message.
    pub message: String,
}

impl From<ErrorReply> for QueryError {
    fn from(e: ErrorReply) -> QueryError {
        QueryError {
            code: e.code,
            state: String::from_utf8_lossy(&e.state).into_owned(),
            message: e.message,
        }
    }
}

impl From<mysql_async::Error> for QueryError {
    fn from(e: mysql_async::Error) -> QueryError {
        match e {
            mysql_async::Error::Server(s) => QueryError {
                code: s.code,
                state: s.state,
                message: s.message,
            },
            other => QueryError {
                code: 0,
                state: "HY000".into(),
                message: other.to_string(),
            },
        }
    }
}

/// A random session token (256 bits, hex).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Consoles {
    /// The sessions of a node whose clients connect at `client_addr`.
    pub fn new(client_addr: SocketAddr) -> Consoles {
        let ip = match client_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Consoles {
            sessions: Mutex::new(HashMap::new()),
            client_addr: SocketAddr::new(ip, client_addr.port()),
            cookie: format!("myrelay_console_{}", client_addr.port()),
        }
    }

    fn connect_opts(&self, user: &str, password: &str) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.client_addr.ip().to_string())
            .tcp_port(self.client_addr.port())
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
    }

    /// Logs `user` in from a browser at `browser`: a login is a successful MySQL login to this
    /// node. Returns the session token for the cookie.
    pub async fn login(
        &self,
        node: &NodeShared,
        user: &str,
        password: &str,
        browser: IpAddr,
    ) -> Result<String, QueryError> {
        // The node sees the console's connection come from its own loopback address; an admin
        // whose rights hold only from `admin_from` must not gain them by using the console.
        let seen_as = self.client_addr.ip();
        if let Some(account) = node.users().get(user)
            && account.effective_role(browser) < account.effective_role(seen_as)
        {
            return Err(ErrorReply::new(
                ER_ACCESS_DENIED_ERROR,
                format!(
                    "Access denied for user '{user}' from {browser}: its admin rights hold only \
                     from its admin_from networks; use the CLI from there"
                ),
            )
            .into());
        }
        let conn =
            tokio::time::timeout(QUERY_TIMEOUT, Conn::new(self.connect_opts(user, password)))
                .await
                .map_err(|_| QueryError {
                    code: 0,
                    state: "HY000".into(),
                    message: format!("the node at {} did not answer", self.client_addr),
                })??;
        let token = new_token();
        let now = Instant::now();
        let session = Arc::new(ConsoleSession {
            user: user.to_string(),
            password: password.to_string(),
            created: now,
            last_used: Mutex::new(now),
            conn: tokio::sync::Mutex::new(Some(conn)),
        });
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.alive(now));
            while sessions.len() >= MAX_SESSIONS {
                let oldest = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_used())
                    .map(|(t, _)| t.clone());
                match oldest {
                    Some(t) => sessions.remove(&t),
                    None => break,
                };
            }
            sessions.insert(token.clone(), session);
        }
        Ok(token)
    }

    /// The session a cookie names, if it is still alive (and marks it used).
    pub fn session(&self, token: &str) -> Option<Arc<ConsoleSession>> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().ok()?;
        let session = sessions.get(token)?.clone();
        if !session.alive(now) {
            sessions.remove(token);
            return None;
        }
        if let Ok(mut used) = session.last_used.lock() {
            *used = now;
        }
        Some(session)
    }

    /// Forgets a session (logout).
    pub fn logout(&self, token: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(token);
        }
    }

    /// Forgets every session (the node stops).
    pub fn clear(&self) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.clear();
        }
    }

    /// Runs `sql` as the session's user on this node.
    pub async fn run(&self, session: &ConsoleSession, sql: &str) -> QueryOutcome {
        let mut conn = session.conn.lock().await;
        if conn.is_none() {
            let opts = self.connect_opts(&session.user, &session.password);
            match tokio::time::timeout(QUERY_TIMEOUT, Conn::new(opts)).await {
                Ok(Ok(c)) => *conn = Some(c),
                Ok(Err(e)) => {
                    return QueryOutcome {
                        error: Some(e.into()),
                        ..Default::default()
                    };
                }
                Err(_) => {
                    return QueryOutcome {
                        error: Some(QueryError {
                            code: 0,
                            state: "HY000".into(),
                            message: "the node did not answer".into(),
                        }),
                        ..Default::default()
                    };
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            return QueryOutcome::default();
        };
        let mut outcome = QueryOutcome::default();
        let ran = tokio::time::timeout(QUERY_TIMEOUT, run_sets(c, sql, &mut outcome.sets)).await;
        match ran {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A server error leaves the connection usable; anything else does not.
                if !matches!(e, mysql_async::Error::Server(_)) {
                    *conn = None;
                }
                outcome.error = Some(e.into());
            }
            Err(_) => {
                // Dropping the connection makes the node kill the backend query.
                *conn = None;
                outcome.error = Some(QueryError {
                    code: 0,
                    state: "HY000".into(),
                    message: format!(
                        "the statement ran longer than {} s; its connection was closed",
                        QUERY_TIMEOUT.as_secs()
                    ),
                });
            }
        }
        outcome
    }
}

impl ConsoleSession {
    fn last_used(&self) -> Instant {
        self.last_used.lock().map(|t| *t).unwrap_or(self.created)
    }

    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.created) < MAX_AGE
            && now.duration_since(self.last_used()) < IDLE_EXPIRY
    }
}

async fn run_sets(
    conn: &mut Conn,
    sql: &str,
    sets: &mut Vec<ResultSet>,
) -> Result<(), mysql_async::Error> {
    let mut result = conn.query_iter(sql).await?;
    loop {
        let columns: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let mut set = ResultSet {
            columns,
            affected: result.affected_rows(),
            info: result.info().into_owned(),
            ..Default::default()
        };
        while let Some(row) = result.next().await? {
            if set.rows.len() < ROWS_SHOWN {
                set.rows.push(row_text(row));
            } else {
                set.more_rows += 1;
            }
        }
        sets.push(set);
        if result.is_empty() {
            return Ok(());
        }
    }
}

fn row_text(row: Row) -> Vec<Option<String>> {
    row.unwrap().into_iter().map(value_text).collect()
}

/// A value as the page shows it: text as text, binary as hex, NULL as `None`.
fn value_text(v: Value) -> Option<String> {
    Some(match v {
        Value::NULL => return None,
        Value::Bytes(b) => match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => e.into_bytes().iter().fold("0x".to_string(), |mut s, b| {
                let _ = write!(s, "{b:02X}");
                s
            }),
        },
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(neg, d, h, mi, s, us) => format!(
            "{}{}:{mi:02}:{s:02}.{us:06}",
            if neg { "-" } else { "" },
            u32::from(h) + d * 24
        ),
    })
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/console.css\"></head><body>",
        escape(title)
    );
}

/// The login page, with an error from the last attempt if any.
pub fn login_page(node: &NodeShared, error: Option<&QueryError>) -> String {
    let mut out = String::new();
    let name = &node.config.name;
    head(&mut out, &format!("myrelay {name} — log in"));
    let _ = write!(
        out,
        "<main class=\"login\"><h1>myrelay <span class=\"node\">{}</span> <span class=\"role {role}\">{role}</span></h1>\
         <p>Log in with a proxy user of this node (the same name and password as for a MySQL client).</p>",
        escape(name),
        role = node.config.role.as_str()
    );
    if let Some(e) = error {
        error_box(&mut out, e);
    }
    out.push_str(
        "<form method=\"post\" action=\"/login\" id=\"login\">\
         <label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <button type=\"submit\">Log in</button></form></main></body></html>",
    );
    out
}

fn error_box(out: &mut String, e: &QueryError) {
    let _ = write!(
        out,
        "<div class=\"error\" id=\"query-error\" data-code=\"{code}\"><strong>ERROR {code} ({})</strong>: {}</div>",
        escape(&e.state),
        escape(&e.message),
        code = e.code
    );
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
}

/// Milliseconds since the epoch as UTC `HH:MM:SS` (the page shows times of today's refusals).
fn clock(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn refusal_rows(out: &mut String, refusals: &[Refusal]) {
    if refusals.is_empty() {
        out.push_str("<tr class=\"empty\"><td colspan=\"7\">none yet</td></tr>");
    }
    for r in refusals {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            clock(r.at_unix_ms),
            escape(&r.user),
            escape(&r.source),
            r.class,
            r.code,
            escape(&r.statement),
            escape(&r.reason)
        );
    }
}

/// The console page: the cluster, counters, last refusals and the query box, with the result
/// of the statement just run.
pub fn console_page(
    node: &NodeShared,
    user: &str,
    sql: &str,
    outcome: Option<&QueryOutcome>,
) -> String {
    let status = ApiStatus::read(node);
    let n = &status.node;
    let mut out = String::new();
    head(&mut out, &format!("myrelay {} — console", n.name));
    let _ = write!(
        out,
        "<header><h1>myrelay <span class=\"node\">{name}</span> <span class=\"role {role}\">{role}</span></h1>\
         <span class=\"state\" id=\"node-state\">{state}</span>\
         <span class=\"whoami\">logged in as <strong>{user}</strong> \
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form></span></header><main>",
        name = escape(&n.name),
        role = n.role,
        state = escape(&n.state),
        user = escape(user),
    );
    // The cluster: a diagram (drawn by the script), then a row per node.
    out.push_str(
        "<section><h2>Cluster</h2><p class=\"hint\" id=\"cluster-note\"></p>\
         <svg id=\"cluster-map\" class=\"map\" role=\"img\" aria-label=\"the cluster's nodes and links\"></svg>\
         <table id=\"topology\"><thead><tr><th>node</th><th>role</th>\
         <th>client address</th><th>state</th><th>LSN</th><th>lag (entries)</th><th>lag (ms)</th>\
         <th>console</th></tr></thead><tbody>",
    );
    for row in &status.topology {
        let _ = write!(
            out,
            "<tr data-node=\"{name}\" class=\"{this}\"><td class=\"name\">{name}{me}</td><td class=\"role\">{}</td>\
             <td class=\"address\">{}</td><td class=\"state\">{}</td><td class=\"lsn\">{}</td>\
             <td class=\"lag\">{}</td><td class=\"lag-ms\">{}</td><td class=\"console\">",
            row.role,
            escape(&opt(row.address.as_ref())),
            escape(&row.state),
            opt(row.lsn),
            opt(row.lag_entries),
            opt(row.lag_ms),
            name = escape(&row.name),
            this = if row.this_node { "this" } else { "" },
            me = if row.this_node { " (this node)" } else { "" },
        );
        match (&row.console, row.this_node) {
            (_, true) => out.push_str("this page"),
            (Some(console), false) => {
                let _ = write!(out, "<a href=\"http://{c}/\">{c}</a>", c = escape(console));
            }
            (None, false) => out.push('—'),
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></section>");
    // Plots of the last 15 minutes and the events, drawn by the script from /api/history and
    // /api/events.
    out.push_str(
        "<section id=\"history\"><h2>Last 15 minutes</h2><p class=\"hint\" id=\"history-note\">\
         Sampled every second by the node; hover a plot for values.</p><div class=\"charts\">",
    );
    for (id, title) in [
        (
            "statements",
            "Statements per second, by class (refusals marked)",
        ),
        ("latency", "Latency p50 / p99 (ms)"),
        (
            "lag",
            "Replication lag per slave (ms), as the master measures it",
        ),
        ("clients", "Clients and backend connections in use"),
    ] {
        let _ = write!(
            out,
            "<figure class=\"chart\" id=\"chart-{id}\"><figcaption>{title}</figcaption>\
             <svg class=\"plot\" viewBox=\"0 0 720 190\" role=\"img\" aria-label=\"{title}\"></svg>\
             <div class=\"legend\"></div></figure>"
        );
    }
    out.push_str(
        "</div></section><section><h2>Events</h2><svg id=\"timeline\" class=\"timeline\" \
         viewBox=\"0 0 1100 44\" role=\"img\" aria-label=\"events over the last 15 minutes\"></svg>\
         <div class=\"events\"><table id=\"events\"><thead><tr><th>time (UTC)</th><th>what</th>\
         <th>detail</th></tr></thead><tbody><tr class=\"empty\"><td colspan=\"3\">none yet</td></tr>\
         </tbody></table></div></section>",
    );
    // Counters.
    let c = &status.counters;
    let _ = write!(
        out,
        "<section><h2>Counters</h2><dl class=\"counters\" id=\"counters\">\
         <dt>clients now</dt><dd data-counter=\"client_connections\">{}</dd>\
         <dt>logins</dt><dd data-counter=\"connections_total\">{}</dd>\
         <dt>backend connections in use / idle / max</dt><dd data-counter=\"backend\">{} / {} / {}</dd>\
         <dt>bytes in / out</dt><dd data-counter=\"bytes\">{} / {}</dd>\
         <dt>uptime</dt><dd data-counter=\"uptime\">{} s</dd></dl>",
        c.client_connections,
        c.connections_total,
        c.backend.in_use,
        c.backend.idle,
        c.backend.size,
        c.bytes_in,
        c.bytes_out,
        n.uptime_secs,
    );
    out.push_str(
        "<table id=\"statements\"><thead><tr><th>class</th><th>executed</th><th>forwarded</th>\
         <th>refused</th></tr></thead><tbody>",
    );
    for (class, by_outcome) in &c.statements {
        let _ = write!(out, "<tr data-class=\"{class}\"><td>{class}</td>");
        for outcome in ["executed", "forwarded", "refused"] {
            let _ = write!(
                out,
                "<td data-outcome=\"{outcome}\">{}</td>",
                by_outcome.get(outcome).copied().unwrap_or(0)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
    // Refusals.
    out.push_str(
        "<section><h2>Last refused statements</h2><table id=\"refusals\"><thead><tr><th>time (UTC)</th>\
         <th>user</th><th>source</th><th>class</th><th>code</th><th>statement</th><th>reason</th></tr></thead><tbody>",
    );
    refusal_rows(&mut out, &status.refusals);
    out.push_str("</tbody></table></section>");
    // Query box and result.
    let _ = write!(
        out,
        "<section><h2>Run SQL as {user} on {name}</h2><p class=\"hint\">Runs over a MySQL connection to this \
         node, under the same policy as any client.</p>\
         <form method=\"post\" action=\"/query\" id=\"query\"><textarea name=\"sql\" rows=\"4\" \
         spellcheck=\"false\" required>{}</textarea><button type=\"submit\">Run</button></form>",
        escape(sql),
        user = escape(user),
        name = escape(&n.name),
    );
    if let Some(outcome) = outcome {
        out.push_str("<div id=\"result\">");
        for set in &outcome.sets {
            result_set(&mut out, set);
        }
        if let Some(e) = &outcome.error {
            error_box(&mut out, e);
        }
        out.push_str("</div>");
    }
    out.push_str("</section></main><script src=\"/console.js\"></script></body></html>");
    out
}

fn result_set(out: &mut String, set: &ResultSet) {
    if set.columns.is_empty() {
        let _ = write!(
            out,
            "<p class=\"ok\">OK, {} row{} affected{}</p>",
            set.affected,
            if set.affected == 1 { "" } else { "s" },
            if set.info.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&set.info))
            }
        );
        return;
    }
    out.push_str("<table class=\"rows\"><thead><tr>");
    for c in &set.columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &set.rows {
        out.push_str("<tr>");
        for v in row {
            match v {
                Some(v) => {
                    let _ = write!(out, "<td>{}</td>", escape(v));
                }
                None => out.push_str("<td class=\"null\">NULL</td>"),
            }
        }
        out.push_str("</tr>");
    }
    let shown = set.rows.len();
    let _ = write!(
        out,
        "</tbody></table><p class=\"count\">{shown} row{}{}</p>",
        if shown == 1 { "" } else { "s" },
        if set.more_rows > 0 {
            format!(" shown, {} more not shown", set.more_rows)
        } else {
            String::new()
        }
    );
}

/// The page's script: polls `/api/status` and rewrites the live parts with text only.
pub const SCRIPT: &str = include_str!("console.js");
/// The page's style sheet.
pub const STYLE: &str = include_str!("console.css");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }

    #[test]
    fn values_render_as_text_hex_or_null() {
        assert_eq!(value_text(Value::NULL), None);
        assert_eq!(
            value_text(Value::Bytes(b"abc".to_vec())).as_deref(),
            Some("abc")
        );
        assert_eq!(
            value_text(Value::Bytes(vec![0xff, 0x00])).as_deref(),
            Some("0xFF00")
        );
        assert_eq!(
            value_text(Value::Time(true, 1, 2, 3, 4, 5)).as_deref(),
            Some("-26:03:04.000005")
        );
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
