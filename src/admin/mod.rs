//! The admin HTTP listener of a node (`[admin] listen`): the web console, `/health`,
//! `/metrics` (Prometheus), `/api/status` and `/api/history` (JSON).
//!
//! [`prometheus`] encodes the node's state and the counters sessions update (`crate::metrics`)
//! for `/metrics`; [`status`] reads the node's and the cluster's state; [`console`] is the page,
//! its login sessions and its query box; [`history`] samples the node once a second for
//! `/api/history` (the ring itself is `crate::history`); [`reload`] runs a node process until
//! SIGTERM, reloading users on SIGHUP. Without a console login only `/health`, `/metrics`, the login page and the
//! page's static files answer.

pub mod console;
pub mod history;
pub mod prometheus;
pub mod reload;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, info, warn};

use crate::history::History;
use crate::node::NodeShared;
use console::{ConsoleSession, Consoles};

/// What every request handler shares.
#[derive(Clone)]
struct Admin {
    node: Arc<NodeShared>,
    consoles: Arc<Consoles>,
    /// What `/metrics` encodes, built once.
    metrics: Arc<Registry>,
    /// The node's last 15 minutes, filled by [`history::run`].
    history: Arc<History>,
}

/// Serves the admin endpoints of `node` (whose clients connect at `client_addr`) on `listener`,
/// and samples its history, until `shutdown` fires. Returns the task, which ends once both have
/// stopped.
pub fn start(
    node: Arc<NodeShared>,
    listener: TcpListener,
    client_addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    span: Span,
) -> std::io::Result<JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let consoles = Arc::new(Consoles::new(client_addr));
    let history = Arc::new(History::default());
    let sampling = node.config.admin.as_ref().is_none_or(|a| a.history);
    let sampler = sampling.then(|| {
        tokio::spawn(
            history::run(node.clone(), history.clone(), shutdown.clone()).instrument(span.clone()),
        )
    });
    let app = router(Admin {
        metrics: Arc::new(prometheus::registry(node.clone())),
        node,
        consoles: consoles.clone(),
        history,
    });
    let task = tokio::spawn(
        async move {
            let stopped = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopped)
            .await;
            if let Err(e) = served {
                warn!(error = %e, "admin listener failed");
            }
            // Their connections to the node close with them.
            consoles.clear();
            if let Some(sampler) = sampler {
                let _ = sampler.await;
            }
        }
        .instrument(span),
    );
    info!(%addr, "admin listener (console, /health, /metrics)");
    Ok(task)
}

fn router(state: Admin) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/api/status", get(api_status))
        .route("/api/events", get(api_events))
        .route("/api/history", get(api_history))
        .route("/", get(index))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/query", post(query))
        .route("/console.js", get(script))
        .route("/console.css", get(style))
        // Browsers ask for it on every page; an empty answer keeps their consoles clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(state)
}

/// The page only loads its own script and style, and no other site may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn health(State(admin): State<Admin>) -> Response {
    let health = status::health(&admin.node).await;
    let (code, body) = match &health.reason {
        None => (StatusCode::OK, format!("{}\n", health.role)),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} unavailable: {why}\n", health.role),
        ),
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn metrics_text(State(admin): State<Admin>) -> Response {
    match prometheus::render(&admin.metrics) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response(),
        // Part of the text would be missing: no scrape is better than half of one.
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        )
            .into_response(),
    }
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        console::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        console::STYLE,
    )
        .into_response()
}

/// The console session the request's cookie names, with its token.
fn logged_in(admin: &Admin, headers: &HeaderMap) -> Option<(String, Arc<ConsoleSession>)> {
    let prefix = format!("{}=", admin.consoles.cookie);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(prefix.as_str()))
        .find_map(|token| Some((token.to_string(), admin.consoles.session(token)?)))
}

/// A form posted from another site is refused: SameSite keeps the cookie from it already, and
/// this also covers browsers that do not honour SameSite.
fn cross_site(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    let host = host.to_str().unwrap_or("");
    origin.split_once("://").map(|(_, h)| h) != Some(host)
}

/// What the JSON endpoints answer without a console login.
fn log_in_first() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "log in to the console first"})),
    )
        .into_response()
}

async fn api_status(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if logged_in(&admin, &headers).is_none() {
        return log_in_first();
    }
    axum::Json(status::ApiStatus::read(&admin.node)).into_response()
}

/// `?after=<n>`: only what is newer than the last one a reader has (an event's id, a history
/// sample's time).
#[derive(Deserialize)]
struct AfterQuery {
    #[serde(default)]
    after: u64,
}

async fn api_events(
    State(admin): State<Admin>,
    headers: HeaderMap,
    Query(q): Query<AfterQuery>,
) -> Response {
    if logged_in(&admin, &headers).is_none() {
        return log_in_first();
    }
    axum::Json(admin.node.events.since(q.after)).into_response()
}

async fn api_history(
    State(admin): State<Admin>,
    headers: HeaderMap,
    Query(q): Query<AfterQuery>,
) -> Response {
    if logged_in(&admin, &headers).is_none() {
        return log_in_first();
    }
    axum::Json(admin.history.json(q.after)).into_response()
}

async fn index(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    match logged_in(&admin, &headers) {
        Some((_, session)) => html(
            StatusCode::OK,
            console::console_page(&admin.node, &session.user, "", None),
        ),
        None => Redirect::to("/login").into_response(),
    }
}

async fn login_form(State(admin): State<Admin>) -> Response {
    html(StatusCode::OK, console::login_page(&admin.node, None))
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(admin): State<Admin>,
    ConnectInfo(browser): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if cross_site(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match admin
        .consoles
        .login(&admin.node, &form.user, &form.password, browser.ip())
        .await
    {
        Ok(token) => {
            info!(user = %form.user, %browser, "console login");
            let cookie = format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                admin.consoles.cookie,
                console::MAX_AGE.as_secs()
            );
            redirect_setting(&cookie, "/")
        }
        Err(e) => {
            info!(user = %form.user, %browser, error = %e.message, "console login refused");
            html(
                StatusCode::UNAUTHORIZED,
                console::login_page(&admin.node, Some(&e)),
            )
        }
    }
}

/// A redirect to `to` that sets `cookie`.
fn redirect_setting(cookie: &str, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some((token, _)) = logged_in(&admin, &headers) {
        admin.consoles.logout(&token);
    }
    let expired = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        admin.consoles.cookie
    );
    redirect_setting(&expired, "/login")
}

#[derive(Deserialize)]
struct QueryForm {
    sql: String,
}

async fn query(
    State(admin): State<Admin>,
    headers: HeaderMap,
    Form(form): Form<QueryForm>,
) -> Response {
    if cross_site(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some((_, session)) = logged_in(&admin, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let outcome = admin.consoles.run(&session, &form.sql).await;
    html(
        StatusCode::OK,
        console::console_page(&admin.node, &session.user, &form.sql, Some(&outcome)),
    )
}
