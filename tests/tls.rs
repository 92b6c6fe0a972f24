//! TLS on the client port: the stock `mariadb` client connects with `--ssl` and verifies the
//! node's certificate, a user marked `require_tls` cannot log in without it, and plain clients
//! still work.

mod common;

use common::{ADMIN, mariadb_cli};
use myrelay::config::NodeRole;

#[tokio::test]
async fn tls_clients_connect_and_required_tls_is_enforced() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = common::self_signed_tls(dir.path());
    let cert_file = tls.cert.clone();
    let server = common::backend().await;
    let mut config = common::node_config("m", NodeRole::Master, server.addr());
    config.tls = Some(tls);
    config.users.insert(
        "secure".into(),
        common::tls_only_user("secure", "securepass"),
    );
    let node = myrelay::node::start(config).await.expect("node");
    let ca = format!("--ssl-ca={}", cert_file.display());
    // Over TLS, verifying the node's certificate: the client reports the cipher in use.
    let out = mariadb_cli(
        node.addr,
        "secure",
        "securepass",
        &[&ca, "--ssl-verify-server-cert"],
        "status\nSELECT 40 + 2;\n",
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Cipher in use is"), "{stdout}");
    assert!(stdout.contains("42"), "{stdout}");
    // Without TLS, the user that requires it is refused with 1045 and the reason.
    let out = mariadb_cli(
        node.addr,
        "secure",
        "securepass",
        &["--skip-ssl"],
        "SELECT 1;",
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1045") && stderr.contains("TLS"),
        "{stderr}"
    );
    // Plain connections still work for other users.
    let out = mariadb_cli(
        node.addr,
        ADMIN.0,
        ADMIN.1,
        &["--skip-ssl", "--batch"],
        "SELECT 7;",
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n7\n");
    drop(server);
}
