//! TLS on the replication channel: mutual TLS with the cluster CA, the secret's challenge on top.
//! A slave with the cluster's certificate and secret replicates; one whose certificate another CA
//! signed, one with the wrong secret, and one that speaks plaintext to a TLS master are refused.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    ADMIN, SECRET, TestNode, backend, master_replication, node_config, slave_replication,
};
use myrelay::config::{NodeRole, ReplicationTls};
use myrelay::node;
use mysql_async::prelude::Queryable;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, and a function signing node certificates for 127.0.0.1 with it.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes `<name>.crt`, `<name>.key` (signed by this CA, for 127.0.0.1) and `<name>-ca.crt`
    /// (the CA the node trusts: this one, unless `trust` says otherwise) into `dir`.
    fn node_files(&self, dir: &Path, name: &str, trust: &Ca) -> ReplicationTls {
        let key = KeyPair::generate().expect("node key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("node params");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("node certificate");
        let files = ReplicationTls {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join(format!("{name}-ca.crt")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("key");
        std::fs::write(&files.ca, &trust.pem).expect("ca");
        files
    }
}

/// A replicating master whose channel serves TLS with `tls`.
async fn tls_master(tls: ReplicationTls) -> TestNode {
    let server = backend().await;
    let mut config = node_config("master", NodeRole::Master, server.addr());
    let mut replication = master_replication();
    replication.tls = Some(tls);
    config.replication = Some(replication);
    let node = node::start(config).await.expect("start master");
    TestNode { node, server }
}

/// A slave of `master` with `secret` and, if given, TLS files.
async fn slave(
    name: &str,
    master: &TestNode,
    secret: &str,
    tls: Option<ReplicationTls>,
) -> TestNode {
    let server = backend().await;
    let mut config = node_config(name, NodeRole::Slave, server.addr());
    config.master = Some(master.addr().to_string());
    let mut replication = slave_replication(
        master.node.replication_addr.expect("replication address"),
        secret,
    );
    replication.tls = tls;
    config.replication = Some(replication);
    let node = node::start(config).await.expect("start slave");
    TestNode { node, server }
}

/// Waits until the slave node reports its link up (`Ok`) or refused (`Err` with why).
async fn link_outcome(slave: &TestNode) -> Result<(), String> {
    let replica = slave.node.shared.replica.clone().expect("a replica");
    let mut changes = replica.status_changes();
    loop {
        let status = replica.status();
        if status.connected {
            return Ok(());
        }
        if let Some(why) = status.link_error {
            return Err(why);
        }
        tokio::time::timeout(Duration::from_secs(30), changes.changed())
            .await
            .expect("the slave reports its link's outcome")
            .expect("the slave runs");
    }
}

/// Rows of `tls.t` on a node's backend (None: the table is not there).
async fn rows(node: &TestNode) -> Option<i64> {
    node.direct()
        .await
        .query_first("SELECT COUNT(*) FROM tls.t")
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn only_a_slave_with_the_cluster_certificate_and_secret_replicates() {
    let dir = tempfile::tempdir().expect("dir");
    let cluster_ca = Ca::new("cluster CA");
    let other_ca = Ca::new("another CA");
    let master = tls_master(cluster_ca.node_files(dir.path(), "master", &cluster_ca)).await;

    let good = slave(
        "good",
        &master,
        SECRET,
        Some(cluster_ca.node_files(dir.path(), "good", &cluster_ca)),
    )
    .await;
    // Signed by another CA (which it also trusts): the master refuses its certificate, and it
    // would refuse the master's.
    let foreign = slave(
        "foreign",
        &master,
        SECRET,
        Some(other_ca.node_files(dir.path(), "foreign", &other_ca)),
    )
    .await;
    // Signed by another CA, but trusting the cluster's: the master still refuses it.
    let impostor = slave(
        "impostor",
        &master,
        SECRET,
        Some(other_ca.node_files(dir.path(), "impostor", &cluster_ca)),
    )
    .await;
    let wrong_secret = slave(
        "wrongsecret",
        &master,
        "not-the-cluster-secret",
        Some(cluster_ca.node_files(dir.path(), "wrongsecret", &cluster_ca)),
    )
    .await;
    let plaintext = slave("plaintext", &master, SECRET, None).await;

    assert_eq!(link_outcome(&good).await, Ok(()), "the good slave links");
    let mut conn = master.connect(ADMIN).await;
    conn.query_drop("CREATE DATABASE tls").await.expect("db");
    conn.query_drop("CREATE TABLE tls.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    conn.query_drop("INSERT INTO tls.t VALUES (1), (2), (3)")
        .await
        .expect("insert");
    let target = common::master_position(&master).await;
    let replica = good.node.shared.replica.clone().expect("a replica");
    assert!(
        replica.wait_applied(&target, Duration::from_secs(20)).await,
        "the good slave caught up"
    );
    assert_eq!(rows(&good).await, Some(3));
    for refused in [&foreign, &impostor, &wrong_secret, &plaintext] {
        let name = &refused.node.shared.config.name;
        let outcome = link_outcome(refused).await;
        assert!(outcome.is_err(), "{name} was let in");
        assert_eq!(rows(refused).await, None, "{name} received data");
    }
    // The master's view: only the good slave ever subscribed.
    let seen: Vec<String> = master
        .node
        .shared
        .master
        .as_ref()
        .expect("master")
        .slaves()
        .into_keys()
        .collect();
    assert_eq!(seen, vec!["good".to_string()]);
}
