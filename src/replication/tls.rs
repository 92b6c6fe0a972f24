//! TLS on the replication channel (rustls), mutual: the master serves the cluster certificate
//! it was given and accepts only slaves whose client certificate the cluster CA signed; a slave
//! accepts only a master whose certificate the CA signed for the address it dials. The secret's
//! challenge-response still runs inside the TLS session, so a stolen certificate alone does not
//! let a node in, nor does the secret alone.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::ReplicationTls;
use crate::frontend::tls::{load_certs, load_key, provider};

/// The trust anchors of `files.ca`.
fn roots(files: &ReplicationTls) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for ca in load_certs(&files.ca)? {
        roots
            .add(ca)
            .map_err(|e| format!("{}: not a CA certificate: {e}", files.ca.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The master's side: its certificate, and the CA that must have signed each slave's.
pub fn acceptor(files: &ReplicationTls) -> Result<TlsAcceptor, String> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(files)?, provider())
        .build()
        .map_err(|e| format!("{}: {e}", files.ca.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| format!("{} / {}: {e}", files.cert.display(), files.key.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A slave's side: the CA the master's certificate must chain to, and its own certificate.
pub fn connector(files: &ReplicationTls) -> Result<TlsConnector, String> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots(files)?)
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| format!("{} / {}: {e}", files.cert.display(), files.key.display()))?;
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens TLS to the master at `addr` over `socket`; its certificate must name that IP address.
pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    socket: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    connector
        .connect(ServerName::IpAddress(addr.ip().into()), socket)
        .await
}
