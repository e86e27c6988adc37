//! TLS towards Redis: REDIS_TLS_CA, and the client certificate
//! REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE. All three are read and
//! checked here, so a file that cannot work stops start-up with exit code 2
//! naming its variable instead of failing every connection later, and all
//! three are refused with a plain `redis://` address: set, they say TLS was
//! meant (a `rediss://` written without its `s` would send the password in
//! the clear), and ignored they would hide that.

use std::fmt;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::parse::{parse_tls, Raw};
use super::{ConfigError, TlsFiles};

/// The client certificate the proxy presents to Redis on every `rediss://`
/// connection it opens (pool, probe, invalidation links, forwarded
/// commands, cluster nodes, sentinels), read at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisClientCert {
    /// REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE, for messages.
    pub files: TlsFiles,
    /// The PEM certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The PEM private key: never logged (`Debug` shows `***`).
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for RedisClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClientCert")
            .field("files", &self.files)
            .field("key_pem", &"***")
            .finish_non_exhaustive()
    }
}

/// Refused with a plain `redis://` address (see the module's comment).
fn tls_only(raw: &Raw, tls: bool) -> Result<(), ConfigError> {
    if tls {
        return Ok(());
    }
    Err(raw.error(
        "empty with a plain redis:// REDIS_ADDRESS (it is for rediss://: is REDIS_ADDRESS meant to be rediss://?)",
    ))
}

/// REDIS_TLS_CA: a PEM file holding at least one CA certificate, for
/// `rediss://` (`tls`) only. A file of PEM without a certificate (a
/// private key, say) is refused: taken, it trusted nothing, and every
/// connection failed with `UnknownIssuer`.
pub(super) fn read_ca(raw: Raw, tls: bool) -> Result<Option<Vec<u8>>, ConfigError> {
    let path = raw.value.trim();
    if path.is_empty() {
        return Ok(None);
    }
    tls_only(&raw, tls)?;
    let pem = std::fs::read(path)
        .map_err(|err| raw.error(&format!("a readable PEM file of CA certificates ({err})")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let added = cert
            .map_err(|err| err.to_string())
            .and_then(|cert| roots.add(cert).map_err(|err| err.to_string()));
        if let Err(err) = added {
            return Err(raw.error(&format!("a PEM file of CA certificates ({err})")));
        }
    }
    if roots.is_empty() {
        return Err(raw.error("a PEM file of CA certificates (it holds none)"));
    }
    Ok(Some(pem))
}

/// REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: both or neither, for
/// `rediss://` (`tls`) only, read and checked as TLS_CERT_FILE and
/// TLS_KEY_FILE are (see `tls::read_client_cert`).
pub(super) fn read_client_cert(
    cert: Raw,
    key: Raw,
    tls: bool,
) -> Result<Option<RedisClientCert>, ConfigError> {
    let (cert_path, key_path) = (cert.value.clone(), key.value.clone());
    let Some(files) = parse_tls(cert, key)? else {
        return Ok(None);
    };
    tls_only(
        &Raw {
            name: "REDIS_TLS_CERT_FILE",
            value: cert_path.clone(),
        },
        tls,
    )?;
    let (cert_pem, key_pem) = crate::tls::read_client_cert(&files).map_err(|err| {
        let (value, expected) = match err.variable {
            "REDIS_TLS_KEY_FILE" => (
                key_path,
                "the PEM private key of REDIS_TLS_CERT_FILE's certificate",
            ),
            _ => (cert_path, "a PEM certificate chain, leaf first"),
        };
        ConfigError {
            variable: err.variable,
            value,
            expected: format!("{expected} ({})", err.reason),
        }
    })?;
    Ok(Some(RedisClientCert {
        files,
        cert_pem,
        key_pem,
    }))
}
