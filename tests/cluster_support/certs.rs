//! Test certificates for the `cluster::tls` tests: a CA and the node and
//! client certificates it signs, made at test time and written as PEM
//! files (keys with mode 600).
//!
//! rcgen is built without a crypto library of its own (so that a build
//! without `cluster` compiles none for it): keys are Ed25519, made from
//! /dev/urandom and signed through rustls' aws-lc-rs provider, which the
//! `cluster` feature already brings.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RemoteKeyPair, SerialNumber,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::SignatureScheme;
use tokio_rustls::rustls::crypto::aws_lc_rs::sign::any_eddsa_type;
use tokio_rustls::rustls::sign::Signer;

/// The DER prefix of an Ed25519 private key in PKCS#8 v1 (RFC 8410): the
/// 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// An Ed25519 key that rcgen signs with through rustls.
struct Ed25519 {
    signer: Box<dyn Signer>,
    public: Vec<u8>,
}

impl RemoteKeyPair for Ed25519 {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer
            .sign(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

/// A fresh key: rcgen's handle on it and its PKCS#8 DER.
fn new_key() -> (KeyPair, Vec<u8>) {
    let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&random::<32>());
    let key = any_eddsa_type(&PrivatePkcs8KeyDer::from(pkcs8.clone())).unwrap();
    // The SubjectPublicKeyInfo of an Ed25519 key ends with the raw key.
    let spki = key.public_key().unwrap();
    let public = spki[spki.len() - 32..].to_vec();
    let signer = key.choose_scheme(&[SignatureScheme::ED25519]).unwrap();
    let pair = KeyPair::from_remote(Box::new(Ed25519 { signer, public })).unwrap();
    (pair, pkcs8)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn params(common_name: &str, names: &[&str], public: &[u8]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let mut serial = random::<16>();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    // Without a crypto feature rcgen cannot hash the key for its id.
    params.key_identifier_method = KeyIdMethod::PreSpecified(public[..20].to_vec());
    params
}

/// A certificate (PEM) with its private key (PKCS#8 PEM).
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>.key` (mode 600) into `dir`; returns
    /// their paths.
    pub(crate) fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = write_file(dir, &format!("{stem}.pem"), &self.cert_pem, 0o644);
        let key = write_file(dir, &format!("{stem}.key"), &self.key_pem, 0o600);
        (cert, key)
    }
}

/// A certificate authority that signs node and client certificates.
pub(crate) struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub(crate) fn new(common_name: &str) -> Ca {
        let (key, _) = new_key();
        let mut params = params(common_name, &[], key.public_key_raw());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub(crate) fn cert_pem(&self) -> String {
        pem("CERTIFICATE", self.cert.der())
    }

    /// Writes the CA certificate as `<stem>.pem` into `dir`.
    pub(crate) fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        write_file(dir, &format!("{stem}.pem"), &self.cert_pem(), 0o644)
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub(crate) fn node(&self, names: &[&str]) -> Issued {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub(crate) fn client(&self, name: &str) -> Issued {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let (key, pkcs8) = new_key();
        let mut params = params(names[0], names, key.public_key_raw());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &pkcs8),
        }
    }
}

/// Writes `contents` to `dir/name` with `mode`.
pub(crate) fn write_file(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}
