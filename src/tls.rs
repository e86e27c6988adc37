//! Certificates and keys from PEM files, loaded once at start-up: the
//! proxy's own (TLS_CERT_FILE and TLS_KEY_FILE, for both front ends) and
//! the one it presents to Redis (REDIS_TLS_CERT_FILE and
//! REDIS_TLS_KEY_FILE, for `rediss://` to a Redis that asks for client
//! certificates, as redis-server's default `tls-auth-clients yes` does).
//!
//! One TLS stack ships: rustls 0.23 (ring), the one the redis crate already
//! uses for `rediss://`, here for the RESP port's event loop and, through
//! tiny_http patch 9, for HTTPS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{RedisClientCert, TlsFiles};

/// The server's identity, in the forms the two front ends take it.
pub(crate) struct TlsIdentity {
    /// For the RESP event loop.
    pub config: Arc<rustls::ServerConfig>,
    /// For tiny_http, which builds its own `ServerConfig` from PEM.
    pub cert_pem: Vec<u8>,
    /// For tiny_http (never logged).
    pub key_pem: Vec<u8>,
}

/// Why the certificate or key cannot be used: names the variable, so a bad
/// path or file stops start-up with a message that says what to fix.
#[derive(Debug)]
pub struct TlsError {
    /// `TLS_CERT_FILE`, `TLS_KEY_FILE`, `REDIS_TLS_CERT_FILE` or
    /// `REDIS_TLS_KEY_FILE`.
    pub variable: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for TlsError {}

/// The variables naming a certificate chain and its key, for messages.
#[derive(Clone, Copy)]
struct Names {
    cert: &'static str,
    key: &'static str,
}

/// The proxy's own certificate, towards its clients.
const FRONT: Names = Names {
    cert: "TLS_CERT_FILE",
    key: "TLS_KEY_FILE",
};

/// The certificate the proxy presents to Redis.
const TO_REDIS: Names = Names {
    cert: "REDIS_TLS_CERT_FILE",
    key: "REDIS_TLS_KEY_FILE",
};

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError {
        variable,
        reason: format!("cannot read {}: {err}", path.display()),
    })
}

/// A chain and key, parsed from their PEM; the key never appears in an
/// error (only the file's name and what rustls says is wrong).
type Parsed = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn parse(
    cert_pem: &[u8],
    key_pem: &[u8],
    files: &TlsFiles,
    names: Names,
) -> Result<Parsed, TlsError> {
    let cert_error = |reason: String| TlsError {
        variable: names.cert,
        reason: format!("{}: {reason}", files.cert.display()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|err| cert_error(format!("not a PEM certificate chain ({err})")))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| TlsError {
        variable: names.key,
        reason: format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1; not encrypted): {err}",
            files.key.display()
        ),
    })?;
    Ok((chain, key))
}

/// The key in `files` does not go with the certificate (rustls's `err`).
fn mismatch(files: &TlsFiles, names: Names, err: rustls::Error) -> TlsError {
    TlsError {
        variable: names.key,
        reason: format!(
            "{} does not go with the certificate in {}: {err}",
            files.key.display(),
            files.cert.display()
        ),
    }
}

/// Reads and checks the certificate chain and key.
pub(crate) fn load(files: &TlsFiles) -> Result<TlsIdentity, TlsError> {
    let cert_pem = read(FRONT.cert, &files.cert)?;
    let key_pem = read(FRONT.key, &files.key)?;
    let (chain, key) = parse(&cert_pem, &key_pem, files, FRONT)?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| mismatch(files, FRONT, err))?;
    Ok(TlsIdentity {
        config: Arc::new(config),
        cert_pem,
        key_pem,
    })
}

/// REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE read and checked as
/// TLS_CERT_FILE and TLS_KEY_FILE are (a chain, a key, the two going
/// together): their PEM, certificate then key, for the configuration to
/// keep.
pub(crate) fn read_client_cert(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert_pem = read(TO_REDIS.cert, &files.cert)?;
    let key_pem = read(TO_REDIS.key, &files.key)?;
    client_config(rustls::RootCertStore::empty(), &cert_pem, &key_pem, files)?;
    Ok((cert_pem, key_pem))
}

/// The client side of `rediss://` on the proxy's own connections: trusting
/// `roots`, presenting `client`'s certificate if there is one.
pub(crate) fn redis_client_config(
    roots: rustls::RootCertStore,
    client: Option<&RedisClientCert>,
) -> Result<rustls::ClientConfig, TlsError> {
    match client {
        Some(client) => client_config(roots, &client.cert_pem, &client.key_pem, &client.files),
        None => Ok(builder()?
            .with_root_certificates(roots)
            .with_no_client_auth()),
    }
}

fn client_config(
    roots: rustls::RootCertStore,
    cert_pem: &[u8],
    key_pem: &[u8],
    files: &TlsFiles,
) -> Result<rustls::ClientConfig, TlsError> {
    let (chain, key) = parse(cert_pem, key_pem, files, TO_REDIS)?;
    builder()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|err| mismatch(files, TO_REDIS, err))
}

/// A client configuration's builder on ring, named rather than taken from
/// the process default: the configuration checks the files before
/// [`crate::Proxy::start`] installs that default.
fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError>
{
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError {
            variable: "REDIS_ADDRESS",
            reason: format!("no TLS protocol version to offer: {err}"),
        })
}
