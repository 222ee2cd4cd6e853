//! TLS for cluster sessions: loading PEM certificates and keys into the
//! rustls configurations that ractor_cluster's TLS transport takes.
//!
//! This module owns the crate's PEM parsing and rustls configuration (the
//! node's handshakes run in `listener.rs`). It builds the node's
//! acceptor (`procward node --tls-cert/--tls-key/--tls-client-ca`) and the
//! client's [`ClientTls`]. Both sides speak TLS 1.3 only and use rustls'
//! aws-lc-rs provider, named explicitly: nothing depends on a
//! process-wide default provider being installed, so no "no process-level
//! CryptoProvider" panic can happen whatever else the process links.
//!
//! # Caveats
//!
//! Certificates are read once, when the node starts or the [`ClientTls`]
//! is built: replacing the files later changes nothing until a restart.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::error::{RemoteError, RemoteErrorKind};
use super::private_file::read_private_file;

/// How a [`ClusterClient`](super::ClusterClient) secures its sessions with
/// nodes that run with `--tls-cert`/`--tls-key`: which CA signs the
/// nodes' certificates, the certificate this client presents when nodes
/// require one (`--tls-client-ca`), and the name checked against the
/// node's certificate.
///
/// Every file is read when the `ClientTls` is built, so a missing or
/// unparsable file fails there, not at `connect`. Give it to the client
/// with [`ClientOptions::tls`](super::ClientOptions::tls).
///
/// # Examples
///
/// ```no_run
/// use procward::cluster::{ClientOptions, ClientTls};
///
/// # fn main() -> Result<(), procward::cluster::RemoteError> {
/// let tls = ClientTls::new("/etc/procward/ca.pem")?
///     .identity("/etc/procward/client.pem", "/etc/procward/client.key")?;
/// let options = ClientOptions::new("secret cookie").tls(tls);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    has_identity: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("trusted_cas", &self.roots.len())
            .field("server_name", &self.server_name)
            .field("has_identity", &self.has_identity)
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CA certificates in the PEM file `ca_file` to sign node
    /// certificates, and presents no certificate of its own.
    ///
    /// Fails with [`RemoteErrorKind::InvalidRequest`], naming the file, if
    /// it cannot be read or holds no usable certificate.
    pub fn new(ca_file: impl AsRef<Path>) -> Result<Self, RemoteError> {
        let roots = Arc::new(read_roots(ca_file.as_ref(), "CA file")?);
        let config = client_builder(&roots)?.with_no_client_auth();
        Ok(ClientTls {
            roots,
            config: Arc::new(config),
            server_name: None,
            has_identity: false,
        })
    }

    /// Presents the certificate chain in `cert_file` (PEM, the client's
    /// own certificate first) with the private key in `key_file`, for
    /// nodes that require client certificates (mutual TLS).
    ///
    /// Fails with [`RemoteErrorKind::InvalidRequest`], naming the file, if
    /// a file cannot be read or parsed, if the key file is owned by another
    /// user or readable or writable by group or others (`chmod 600` it),
    /// or if the key does not
    /// belong to the certificate.
    pub fn identity(
        mut self,
        cert_file: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Result<Self, RemoteError> {
        let (cert_file, key_file) = (cert_file.as_ref(), key_file.as_ref());
        let certs = read_certs(cert_file, "certificate file")?;
        let key = read_key(key_file)?;
        let config = client_builder(&self.roots)?
            .with_client_auth_cert(certs, key)
            .map_err(|err| {
                invalid(format!(
                    "TLS key file `{}` does not fit certificate file `{}`: {err}",
                    key_file.display(),
                    cert_file.display()
                ))
            })?;
        self.config = Arc::new(config);
        self.has_identity = true;
        Ok(self)
    }

    /// Checks node certificates against `name` (a DNS name or an IP
    /// address) instead of the host part of the address given to
    /// [`connect`](super::ClusterClient::connect). Use it when nodes are
    /// reached by an address their certificates do not name.
    ///
    /// Fails with [`RemoteErrorKind::InvalidRequest`] if `name` is neither.
    pub fn server_name(mut self, name: &str) -> Result<Self, RemoteError> {
        let parsed = ServerName::try_from(name.to_owned())
            .map_err(|err| invalid(format!("`{name}` is not a TLS server name: {err}")))?;
        self.server_name = Some(parsed);
        Ok(self)
    }

    /// Whether this client presents a certificate of its own.
    pub fn has_identity(&self) -> bool {
        self.has_identity
    }

    pub(crate) fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }

    /// The name to check the certificate of the node at `address`
    /// (`host:port`) against: the override, or else the host.
    pub(crate) fn server_name_for(&self, address: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = host_of(address);
        ServerName::try_from(host.to_owned()).map_err(|err| {
            format!(
                "`{host}` is not a TLS server name ({err}); set one with ClientTls::server_name"
            )
        })
    }
}

/// The acceptor of a node that presents `cert_file` with `key_file` and,
/// with `client_ca`, admits only clients whose certificate that CA signed.
///
/// Errors are [`RemoteErrorKind::InvalidRequest`] naming the file.
pub(crate) fn node_acceptor(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, RemoteError> {
    let certs = read_certs(cert_file, "TLS certificate file")?;
    let key = read_key(key_file)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| internal("cannot configure TLS", err))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let roots = Arc::new(read_roots(ca_file, "client CA file")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|err| {
                    invalid(format!(
                        "client CA file `{}` is not usable: {err}",
                        ca_file.display()
                    ))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|err| {
        invalid(format!(
            "TLS key file `{}` does not fit certificate file `{}`: {err}",
            key_file.display(),
            cert_file.display()
        ))
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An acceptor that completes no handshake: for the listener that
/// ractor_cluster always starts, which a node moves to a loopback port
/// and does not use (every session comes through the node's own
/// listener, see `listener.rs`). A peer that finds that port gets a TLS
/// alert, whatever it sends.
pub(crate) fn refusing_acceptor() -> Result<TlsAcceptor, RemoteError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| internal("cannot configure TLS", err))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(NoCertificate));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Resolves no certificate, so every handshake aborts.
#[derive(Debug)]
struct NoCertificate;

impl ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// The one crypto provider of the crate; aws-lc-rs is what ractor_cluster's
/// rustls is built with.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn client_builder(
    roots: &Arc<RootCertStore>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, RemoteError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| internal("cannot configure TLS", err))?
        .with_root_certificates(roots.clone()))
}

fn invalid(message: String) -> RemoteError {
    RemoteError::new(RemoteErrorKind::InvalidRequest, message)
}

fn internal(what: &str, err: impl fmt::Display) -> RemoteError {
    RemoteError::new(RemoteErrorKind::Internal, format!("{what}: {err}"))
}

/// Every certificate of a PEM file, in order; at least one.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, RemoteError> {
    let refuse = |why: String| invalid(format!("{what} `{}` {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| refuse(format!("cannot be read as PEM: {err}")))?;
    if certs.is_empty() {
        return Err(refuse("holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

fn read_roots(path: &Path, what: &str) -> Result<RootCertStore, RemoteError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, what)? {
        roots.add(cert).map_err(|err| {
            invalid(format!(
                "{what} `{}` holds an unusable CA certificate: {err}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file that only
/// its owner may read.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, RemoteError> {
    let pem = read_private_file(path, "TLS key file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| {
        invalid(format!(
            "TLS key file `{}` holds no usable PEM private key: {err}",
            path.display()
        ))
    })
}

/// The host part of `host:port` or `[v6]:port` (what `connect` takes).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port_and_brackets() {
        assert_eq!(host_of("10.0.0.5:7400"), "10.0.0.5");
        assert_eq!(host_of("build-1.example:7400"), "build-1.example");
        assert_eq!(host_of("[::1]:7400"), "::1");
        assert_eq!(host_of("build-1"), "build-1");
        assert_eq!(host_of("[fe80::1%eth0]:7400"), "fe80::1%eth0");
    }

    #[test]
    fn ip_addresses_are_server_names() {
        let name = ServerName::try_from(host_of("127.0.0.1:7400").to_owned()).unwrap();
        assert!(matches!(name, ServerName::IpAddress(_)));
        let name = ServerName::try_from(host_of("[::1]:7400").to_owned()).unwrap();
        assert!(matches!(name, ServerName::IpAddress(_)));
    }

    #[test]
    fn missing_files_are_named() {
        let missing = std::env::temp_dir().join("procward-no-such-ca.pem");
        let err = ClientTls::new(&missing).unwrap_err();
        assert_eq!(err.kind, RemoteErrorKind::InvalidRequest);
        assert!(err.message.contains("procward-no-such-ca.pem"), "{err}");
    }
}
