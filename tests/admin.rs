//! The admin HTTP listener over real HTTP in front of real nodes: `/metrics` parses as Prometheus
//! text and moves with statements, `/health` answers 200 or 503 with the reason, `/api/status`
//! and the console need a login whose cookie is HttpOnly and SameSite, `/api/history` samples
//! statements each second behind the same login, and the console's query box is under the same
//! policy as the wire protocol.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{ADMIN, APP, Cluster, READER};
use myrelay::config::{Admin, NodeConfig};
use mysql_async::prelude::Queryable;
use prometheus_parse::{Scrape, Value};

fn with_admin(config: &mut NodeConfig) {
    config.admin = Some(Admin {
        listen: "127.0.0.1:0".parse().expect("addr"),
        history: true,
    });
}

fn admin_addr(node: &common::TestNode) -> SocketAddr {
    node.node.admin_addr.expect("admin listener configured")
}

/// A client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Scrapes `/metrics` and parses it with a Prometheus text parser; every family declared with
/// `# TYPE` must come back with samples, so that a line the parser skipped cannot go unnoticed.
async fn scrape(addr: SocketAddr) -> Scrape {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = response.text().await.expect("body");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let declared: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for family in &declared {
        assert!(
            scrape.samples.iter().any(|s| s.metric == *family),
            "family {family} has no parsed sample in:\n{body}"
        );
    }
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let bucket_lines = body
        .lines()
        .filter(|l| l.starts_with("myrelay_statement_duration_seconds_bucket"))
        .count();
    // The parser folds a histogram's buckets into one sample (its sum and count stay apart).
    assert_eq!(
        scrape.samples.len(),
        samples - bucket_lines + 1,
        "every sample line parsed"
    );
    scrape
}

/// The value of the sample `metric` with exactly `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && *s.labels == wanted)
        .unwrap_or_else(|| panic!("no sample {metric}{labels:?}"));
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a single number: {other:?}"),
    }
}

fn statements(scrape: &Scrape, class: &str, outcome: &str) -> f64 {
    value(
        scrape,
        "myrelay_statements_total",
        &[("class", class), ("outcome", outcome)],
    )
}

/// The histogram's total count (its +Inf bucket).
fn latency_count(scrape: &Scrape) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == "myrelay_statement_duration_seconds")
        .expect("latency histogram");
    let Value::Histogram(buckets) = &sample.value else {
        panic!("not a histogram: {:?}", sample.value);
    };
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf");
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "cumulative buckets"
    );
    buckets.last().map(|b| b.count).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_when_statements_run() {
    let cluster = Cluster::start_with(1, with_admin).await;
    let (master, slave) = (&cluster.master, &cluster.slaves[0]);
    let mut root = master.connect(ADMIN).await;
    root.query_drop("CREATE DATABASE m").await.expect("ddl");
    root.query_drop("CREATE TABLE m.t (id INT PRIMARY KEY, v TEXT)")
        .await
        .expect("ddl");
    cluster.converge(Duration::from_secs(10)).await;

    let before = scrape(admin_addr(master)).await;
    let slave_before = scrape(admin_addr(slave)).await;
    root.query_drop("INSERT INTO m.t VALUES (1, 'one')")
        .await
        .expect("insert");
    let _: Vec<i64> = root.query("SELECT id FROM m.t").await.expect("select");
    // Prepared statements (binary protocol, as sysbench and most drivers run them) count too,
    // once per execution.
    root.exec_drop("INSERT INTO m.t VALUES (?, ?)", (3, "three"))
        .await
        .expect("prepared insert");
    for id in [1, 3] {
        let _: Vec<i64> = root
            .exec("SELECT id FROM m.t WHERE id = ?", (id,))
            .await
            .expect("prepared select");
    }
    let mut reader = master.connect(READER).await;
    let refused = common::expect_error(&mut reader, "DROP TABLE m.t").await;
    assert_eq!(refused.0, 1227, "{refused:?}");
    let mut app_on_slave = slave.connect(APP).await;
    app_on_slave
        .query_drop("INSERT INTO m.t VALUES (2, 'two')")
        .await
        .expect("forwarded insert");
    let refused = common::expect_error(&mut app_on_slave, "ALTER TABLE m.t ADD w INT").await;
    assert_eq!(refused.0, 1290, "{refused:?}");
    cluster.converge(Duration::from_secs(10)).await;

    let after = scrape(admin_addr(master)).await;
    let slave_after = scrape(admin_addr(slave)).await;
    let moved = |a: &Scrape, b: &Scrape, class: &str, outcome: &str| {
        statements(b, class, outcome) - statements(a, class, outcome)
    };
    // The slave's forwarded insert runs on the master as a write of its own.
    assert_eq!(moved(&before, &after, "write", "executed"), 3.0);
    assert!(moved(&before, &after, "read", "executed") >= 3.0);
    assert_eq!(moved(&before, &after, "ddl", "refused"), 1.0);
    assert_eq!(moved(&before, &after, "ddl", "executed"), 0.0);
    assert_eq!(
        moved(&slave_before, &slave_after, "write", "forwarded"),
        1.0
    );
    assert_eq!(moved(&slave_before, &slave_after, "ddl", "refused"), 1.0);
    assert!(latency_count(&after) >= latency_count(&before) + 6.0);
    for (metric, node_before, node_after) in [
        ("myrelay_client_bytes_received_total", &before, &after),
        ("myrelay_client_bytes_sent_total", &before, &after),
        ("myrelay_client_connections_total", &before, &after),
        ("myrelay_replication_lsn", &before, &after),
        (
            "myrelay_replication_applied_lsn",
            &slave_before,
            &slave_after,
        ),
    ] {
        assert!(
            value(node_after, metric, &[]) > value(node_before, metric, &[]),
            "{metric} moved"
        );
    }
    assert!(value(&after, "myrelay_client_connections", &[]) >= 3.0);
    let lsn = value(&after, "myrelay_replication_lsn", &[]);
    assert_eq!(
        value(&after, "myrelay_slave_applied_lsn", &[("slave", "slave1")]),
        lsn
    );
    assert_eq!(
        value(&after, "myrelay_slave_lag_entries", &[("slave", "slave1")]),
        0.0
    );
    assert_eq!(
        value(&after, "myrelay_slave_connected", &[("slave", "slave1")]),
        1.0
    );
    assert_eq!(
        value(&slave_after, "myrelay_replication_applied_lsn", &[]),
        lsn
    );
    assert_eq!(
        value(&slave_after, "myrelay_replication_connected", &[]),
        1.0
    );
    assert!(
        value(
            &after,
            "myrelay_backend_connections",
            &[("state", "in_use")]
        ) >= 2.0
    );
    for result in ["applied", "failed"] {
        assert_eq!(
            value(
                &after,
                "myrelay_config_reloads_total",
                &[("result", result)]
            ),
            0.0,
            "no SIGHUP yet"
        );
    }
    assert_eq!(
        value(
            &after,
            "myrelay_node_info",
            &[("node", "master"), ("role", "master")]
        ),
        1.0
    );
}

/// POSTs a form; returns status, headers and body.
async fn post(
    client: &reqwest::Client,
    url: String,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client.post(url).form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// Logs in and returns the `name=token` pair to send back, checking the cookie's flags.
async fn login(client: &reqwest::Client, addr: SocketAddr, (user, pass): (&str, &str)) -> String {
    let (status, headers, _) = post(
        client,
        format!("http://{addr}/login"),
        None,
        &[("user", user), ("password", pass)],
    )
    .await;
    assert_eq!(status, 303, "login redirects to the console");
    assert_eq!(headers["location"], "/");
    let cookie = headers["set-cookie"].to_str().expect("ascii").to_string();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Strict"), "{cookie}");
    attributes[0].to_string()
}

/// Runs `sql` from the console at `addr`; returns the page (which must be a 200).
async fn run_sql(client: &reqwest::Client, addr: SocketAddr, cookie: &str, sql: &str) -> String {
    let (status, _, page) = post(
        client,
        format!("http://{addr}/query"),
        Some(cookie),
        &[("sql", sql)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page
}

async fn get(client: &reqwest::Client, url: String, cookie: Option<&str>) -> (u16, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("GET");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_needs_a_login_and_runs_sql_under_the_wire_policy() {
    let mut cluster = Cluster::start_with(1, with_admin).await;
    let client = http();
    let (m, s) = (admin_addr(&cluster.master), admin_addr(&cluster.slaves[0]));
    let mut root = cluster.master.connect(ADMIN).await;
    root.query_drop("CREATE DATABASE c").await.expect("ddl");
    root.query_drop("CREATE TABLE c.t (id INT PRIMARY KEY, name TEXT)")
        .await
        .expect("ddl");
    root.query_drop("INSERT INTO c.t VALUES (1, 'Ada'), (2, '<b>Bob</b>')")
        .await
        .expect("insert");
    cluster.converge(Duration::from_secs(10)).await;

    // Without a login: only /health and /metrics answer.
    assert_eq!(
        get(&client, format!("http://{m}/health"), None).await,
        (200, "master\n".into())
    );
    assert_eq!(
        get(&client, format!("http://{m}/metrics"), None).await.0,
        200
    );
    assert_eq!(
        get(&client, format!("http://{m}/api/status"), None).await.0,
        401
    );
    let index = client
        .get(format!("http://{m}/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), 303);
    assert_eq!(index.headers()["location"], "/login");
    let (status, headers, _) = post(
        &client,
        format!("http://{m}/query"),
        None,
        &[("sql", "SELECT 1")],
    )
    .await;
    assert_eq!(
        (status, &headers["location"]),
        (303, &"/login".parse().expect("hv"))
    );
    let (status, _, page) = post(
        &client,
        format!("http://{m}/login"),
        None,
        &[("user", ADMIN.0), ("password", "wrong")],
    )
    .await;
    assert_eq!(status, 401);
    assert!(page.contains("ERROR 1045"), "{page}");
    let bogus = "myrelay_console_0=0000";
    assert_eq!(
        get(&client, format!("http://{m}/api/status"), Some(bogus))
            .await
            .0,
        401
    );

    // Logged in: the status names the cluster.
    let cookie = login(&client, m, APP).await;
    let (status, json) = get(&client, format!("http://{m}/api/status"), Some(&cookie)).await;
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&json).expect("json");
    let topology = status["topology"].as_array().expect("topology");
    let names: Vec<&str> = topology.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["master", "slave1"]);
    assert_eq!(topology[1]["state"], "streaming");
    assert_eq!(topology[1]["lag_entries"], 0);
    assert!(topology[1]["lag_ms"].is_u64());
    assert_eq!(status["node"]["role"], "master");
    let (status, page) = get(&client, format!("http://{m}/"), Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-node=\"slave1\""), "{page}");

    // SELECT from the master's console: rows, escaped.
    let page = run_sql(&client, m, &cookie, "SELECT id, name FROM c.t ORDER BY id").await;
    assert!(page.contains("<td>Ada</td>"), "{page}");
    assert!(page.contains("<td>&lt;b&gt;Bob&lt;/b&gt;</td>"), "{page}");
    assert!(!page.contains("<b>Bob"), "statement output is escaped");
    // The app user may not run DDL on the master, exactly as over the wire.
    let page = run_sql(&client, m, &cookie, "DROP TABLE c.t").await;
    assert!(page.contains("data-code=\"1227\""), "{page}");

    // A slave's console refuses DDL with 1290, even for an admin, and lists the refusal.
    let slave_cookie = login(&client, s, ADMIN).await;
    assert_ne!(
        slave_cookie.split('=').next(),
        cookie.split('=').next(),
        "cookie per node"
    );
    let page = run_sql(&client, s, &slave_cookie, "CREATE TABLE c.u (id INT)").await;
    assert!(page.contains("data-code=\"1290\""), "{page}");
    assert!(page.contains("ERROR 1290 (HY000)"), "{page}");
    let (_, json) = get(
        &client,
        format!("http://{s}/api/status"),
        Some(&slave_cookie),
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(&json).expect("json");
    let refusal = &status["refusals"][0];
    assert_eq!(refusal["code"], 1290);
    assert_eq!(refusal["user"], ADMIN.0);
    assert_eq!(refusal["statement"], "CREATE TABLE c.u (id INT)");
    assert_eq!(status["topology"][0]["role"], "master");
    assert_eq!(status["topology"][1]["name"], "slave1");

    // A form from another site is refused; logging out ends the session.
    let (status, _, _) = {
        let response = client
            .post(format!("http://{m}/query"))
            .header("cookie", &cookie)
            .header("origin", "http://evil.example")
            .form(&[("sql", "SELECT 1")])
            .send()
            .await
            .expect("POST");
        (response.status().as_u16(), (), ())
    };
    assert_eq!(status, 403);
    let (status, _, _) = post(&client, format!("http://{m}/logout"), Some(&cookie), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(
        get(&client, format!("http://{m}/api/status"), Some(&cookie))
            .await
            .0,
        401
    );

    // Health: 200 with the role; 503 with the reason once the slave's backend is gone.
    assert_eq!(
        get(&client, format!("http://{s}/health"), None).await,
        (200, "slave\n".into())
    );
    cluster.slaves[0].server.stop().await;
    let (status, body) = get(&client, format!("http://{s}/health"), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("backend") && body.contains("unreachable"),
        "{body}"
    );
}

/// A slave whose master cannot be reached is not healthy, and says why.
#[tokio::test]
async fn a_slave_without_its_master_is_unhealthy() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let slave = common::TestNode::start_with("lonely", myrelay::config::NodeRole::Slave, |c| {
        with_admin(c);
        c.replication = Some(common::slave_replication(closed, common::SECRET));
    })
    .await;
    let addr = admin_addr(&slave);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, body) = loop {
        let (status, body) = get(&http(), format!("http://{addr}/health"), None).await;
        if status == 503 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not linked to the master"), "{body}");
    // The node itself still serves reads.
    let mut conn = slave.connect(READER).await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.expect("read");
    assert_eq!(one, Some(1));
}

/// Waits (20 s at most) until `node` has recorded an event of `kind` whose detail has `about`,
/// after event `after`.
async fn event(
    node: &common::TestNode,
    after: u64,
    kind: &str,
    about: &str,
) -> myrelay::events::Event {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = node.node.shared.events.since(after);
        if let Some(e) = events
            .iter()
            .find(|e| e.kind == kind && e.detail.contains(about))
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event about {about}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node records what happened when: a slave linking, dropping and linking again, a reload
/// and what it changed, a burst of refusals; `/api/events` serves them behind the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_record_what_happened_when() {
    let mut cluster = Cluster::start_with(1, with_admin).await;
    let linked = event(&cluster.master, 0, "slave_linked", "slave1").await;
    event(&cluster.slaves[0], 0, "master_linked", "master").await;

    // A slave that goes away (its node and its backend, as when its machine dies) and one that
    // comes in.
    let gone = cluster.slaves.pop().expect("a slave");
    gone.node.stop().await;
    drop(gone.server);
    let dropped = event(&cluster.master, linked.id, "slave_dropped", "slave1").await;
    assert!(dropped.id > linked.id && dropped.at_unix_ms >= linked.at_unix_ms);
    cluster.add_slave(common::SECRET).await;
    event(&cluster.master, dropped.id, "slave_linked", "slave1").await;
    // The master knows each slave by the address its clients connect to.
    let master = cluster.master.node.shared.master.clone().expect("a master");
    let addrs: Vec<_> = master.slaves().into_values().map(|s| s.addr).collect();
    assert_eq!(addrs, [Some(cluster.slaves[0].addr())]);

    // A reload, and a burst of refusals.
    let mut config = cluster.master.node.shared.config.clone();
    config.users.remove(READER.0);
    cluster.master.node.reload(&config);
    event(&cluster.master, 0, "reload", "users changed").await;
    let mut app = cluster.master.connect(APP).await;
    for _ in 0..2 * myrelay::events::REFUSAL_BURST {
        let _ = app.query_drop("DROP DATABASE nothing").await;
    }
    event(&cluster.master, 0, "refusals", "user 'app', error 1227").await;

    let client = http();
    let m = admin_addr(&cluster.master);
    let (status, _) = get(&client, format!("http://{m}/api/events"), None).await;
    assert_eq!(status, 401, "behind the login");
    let cookie = login(&client, m, ADMIN).await;
    let (status, body) = get(&client, format!("http://{m}/api/events"), Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    let events: Vec<serde_json::Value> = serde_json::from_str(&body).expect("JSON");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["slave_linked", "slave_dropped", "reload", "refusals"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let (_, newer) = get(
        &client,
        format!("http://{m}/api/events?after={}", dropped.id),
        Some(&cookie),
    )
    .await;
    assert!(!newer.contains("\"slave_dropped\""), "only newer: {newer}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `/api/history` with `cookie`, parsed; it must be a 200.
async fn history(client: &reqwest::Client, addr: SocketAddr, cookie: &str) -> serde_json::Value {
    let (status, json) = get(client, format!("http://{addr}/api/history"), Some(cookie)).await;
    assert_eq!(status, 200, "{json}");
    serde_json::from_str(&json).expect("json")
}

/// Polls `/api/history` until its newest sample satisfies `done` (within 10 s); returns it all.
async fn history_until(
    client: &reqwest::Client,
    addr: SocketAddr,
    cookie: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = history(client, addr, cookie).await;
        let newest = h["samples"].as_array().and_then(|s| s.last());
        if newest.is_some_and(&done) {
            return h;
        }
        assert!(Instant::now() < deadline, "no such sample in time: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples `from` (exclusive, unix ms) on, summing statements of `class` and `outcome`.
fn statements_since(h: &serde_json::Value, from: u64, class: &str, outcome: &str) -> u64 {
    let index = |key: &str, name: &str| {
        h[key]
            .as_array()
            .and_then(|names| names.iter().position(|n| n == name))
            .unwrap_or_else(|| panic!("no {name} in {key}"))
    };
    let (row, col) = (index("classes", class), index("outcomes", outcome));
    h["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["t"].as_u64().expect("t") > from)
        .map(|s| s["stmts"][row][col].as_u64().expect("count"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_samples_every_second_behind_the_console_login() {
    let cluster = Cluster::start_with(1, with_admin).await;
    let client = http();
    let m = admin_addr(&cluster.master);

    // Refused without a login, as /api/status is.
    assert_eq!(
        get(&client, format!("http://{m}/api/history"), None).await,
        (401, r#"{"error":"log in to the console first"}"#.into())
    );
    let bogus = "myrelay_console_0=0000";
    assert_eq!(
        get(&client, format!("http://{m}/api/history"), Some(bogus))
            .await
            .0,
        401
    );
    let cookie = login(&client, m, APP).await;

    // The node's first sample, before any statement of ours.
    let first = history_until(&client, m, &cookie, |_| true).await;
    assert_eq!(first["interval_ms"], 1000);
    assert_eq!(first["capacity"], 900);
    let before = now_ms();

    let mut root = cluster.master.connect(ADMIN).await;
    root.query_drop("CREATE DATABASE h").await.expect("ddl");
    root.query_drop("CREATE TABLE h.t (id INT PRIMARY KEY)")
        .await
        .expect("ddl");
    root.query_drop("INSERT INTO h.t VALUES (1), (2)")
        .await
        .expect("insert");
    for _ in 0..40 {
        let _: Vec<i64> = root.query("SELECT id FROM h.t").await.expect("select");
    }
    cluster.converge(Duration::from_secs(10)).await;
    let after = now_ms();
    let (_, json) = get(&client, format!("http://{m}/api/status"), Some(&cookie)).await;
    let status: serde_json::Value = serde_json::from_str(&json).expect("json");
    let lsn = status["node"]["lsn"].as_u64().expect("lsn");

    // Wait for the node to sample a second that ends after our statements, with the slave
    // caught up.
    let h = history_until(&client, m, &cookie, |s| {
        s["t"].as_u64() > Some(after) && s["slaves"][0]["lsn"].as_u64() == Some(lsn)
    })
    .await;
    let samples = h["samples"].as_array().expect("samples");
    assert!(samples.len() <= 900);
    assert!(
        samples
            .windows(2)
            .all(|w| w[0]["t"].as_u64() < w[1]["t"].as_u64()),
        "oldest first"
    );
    assert!(statements_since(&h, before, "read", "executed") >= 40);
    assert!(statements_since(&h, before, "write", "executed") >= 1);
    assert!(statements_since(&h, before, "ddl", "executed") >= 2);
    let busy: Vec<&serde_json::Value> = samples
        .iter()
        .filter(|s| s["t"].as_u64().expect("t") > before)
        .filter(|s| s["stmts"][0][0].as_u64() > Some(0))
        .collect();
    assert!(!busy.is_empty(), "some second saw the reads: {h}");
    for s in &busy {
        let (p50, p99) = (s["p50_us"].as_u64(), s["p99_us"].as_u64());
        assert!(p50.is_some() && p50 <= p99, "{s}");
        assert!(s["bytes_in"].as_u64() > Some(0), "{s}");
        assert!(s["bytes_out"].as_u64() > Some(0), "{s}");
    }
    let quiet = samples.first().expect("a sample");
    let rate = |s: &serde_json::Value| s["stmts"][0][0].as_u64().unwrap_or(0);
    assert!(
        busy.iter().map(|s| rate(s)).max() > Some(rate(quiet)),
        "statements/s rose from the first sample: {h}"
    );
    let newest = samples.last().expect("a sample");
    assert!(newest["clients"].as_u64() >= Some(1), "{newest}");
    assert!(newest["pool"].is_u64(), "{newest}");
    let slave = &newest["slaves"][0];
    assert_eq!(slave["name"], "slave1");
    assert!(slave["lag_ms"].is_u64(), "{slave}");
    assert!(
        slave["gtid"].as_str().is_some_and(|g| !g.is_empty()),
        "{slave}"
    );

    // A slave has no slaves to show; logging out ends access.
    let s = admin_addr(&cluster.slaves[0]);
    let slave_cookie = login(&client, s, READER).await;
    let on_slave = history_until(&client, s, &slave_cookie, |_| true).await;
    let newest = on_slave["samples"].as_array().and_then(|s| s.last());
    assert!(
        newest.is_some_and(|s| s.get("slaves").is_none()),
        "{on_slave}"
    );
    let (status, _, _) = post(&client, format!("http://{m}/logout"), Some(&cookie), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(
        get(&client, format!("http://{m}/api/history"), Some(&cookie))
            .await
            .0,
        401
    );
}

/// Every node shows the whole cluster with client addresses: a slave learns its siblings from
/// the master over the replication channel, and keeps what it last knew (and when) once the
/// master is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_shows_the_whole_cluster() {
    let mut cluster = Cluster::start_with(2, with_admin).await;
    let client = http();
    let s1 = admin_addr(&cluster.slaves[0]);
    let cookie = login(&client, s1, ADMIN).await;
    // Each node at its client address, with its console.
    let at = |node: &common::TestNode| format!("{} {}", node.addr(), admin_addr(node));
    let want = [
        ("master", at(&cluster.master)),
        ("slave1", at(&cluster.slaves[0])),
        ("slave2", at(&cluster.slaves[1])),
    ];
    let status = |client: reqwest::Client, cookie: String| async move {
        let (code, body) = get(&client, format!("http://{s1}/api/status"), Some(&cookie)).await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
    };
    let rows = |status: &serde_json::Value| -> Vec<(String, String)> {
        status["topology"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or("").to_string(),
                            format!(
                                "{} {}",
                                r["address"].as_str().unwrap_or(""),
                                r["console"].as_str().unwrap_or("")
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rows(&status(client.clone(), cookie.clone()).await);
        if want
            .iter()
            .all(|(n, a)| got.iter().any(|(gn, ga)| gn == n && ga == a))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slave1 sees {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What the master told is shown, not exported: the per-slave families are the master's
    // measurements, and slave1 exports none of them.
    let exported = scrape(s1).await;
    let per_slave: Vec<&str> = exported
        .samples
        .iter()
        .map(|s| s.metric.as_str())
        .filter(|m| m.starts_with("myrelay_slave_"))
        .collect();
    assert!(per_slave.is_empty(), "{per_slave:?}");
    // The master's backend dies, so the master serves no slave: slave1 still shows slave2, and
    // says as of when.
    cluster.master.server.kill().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = status(client.clone(), cookie.clone()).await;
        let got = rows(&now);
        let master_row = now["topology"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if master_row == "unreachable" {
            assert!(
                got.iter().any(|(n, a)| n == "slave2" && *a == want[2].1),
                "{got:?}"
            );
            assert!(
                now["node"]["siblings_as_of_unix_ms"].as_u64().is_some(),
                "{now}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the master still shows as {master_row}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
