//! TLS towards clients: the certificate and key from TLS_CERT_FILE and
//! TLS_KEY_FILE, loaded once at start-up for both front ends.
//!
//! One TLS stack ships: rustls 0.23 (ring), the one the redis crate already
//! uses for `rediss://`, here for the RESP port's event loop and, through
//! tiny_http patch 9, for HTTPS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

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
    /// `TLS_CERT_FILE` or `TLS_KEY_FILE`.
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

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError {
        variable,
        reason: format!("cannot read {}: {err}", path.display()),
    })
}

/// Reads and checks the certificate chain and key.
pub(crate) fn load(files: &TlsFiles) -> Result<TlsIdentity, TlsError> {
    let cert_pem = read("TLS_CERT_FILE", &files.cert)?;
    let key_pem = read("TLS_KEY_FILE", &files.key)?;
    let cert_error = |reason: String| TlsError {
        variable: "TLS_CERT_FILE",
        reason: format!("{}: {reason}", files.cert.display()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|err| cert_error(format!("not a PEM certificate chain ({err})")))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError {
        variable: "TLS_KEY_FILE",
        reason: format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1; not encrypted): {err}",
            files.key.display()
        ),
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| TlsError {
            variable: "TLS_KEY_FILE",
            reason: format!(
                "{} does not go with the certificate in {}: {err}",
                files.key.display(),
                files.cert.display()
            ),
        })?;
    Ok(TlsIdentity {
        config: Arc::new(config),
        cert_pem,
        key_pem,
    })
}
