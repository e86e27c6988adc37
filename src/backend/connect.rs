//! Opening connections to Redis as `REDIS_ADDRESS`, `REDIS_TLS_CA`,
//! `REDIS_TLS_CERT_FILE`/`REDIS_TLS_KEY_FILE` and `REDIS_TIMEOUT_MS` say: the redis crate's clients for the pool, the
//! probe and the invalidation links, and the database clients start in.

use std::io;
use std::time::Duration;

use super::raw::TlsRoots;
use crate::config::{Config, RedisMode};

/// The database REDIS_ADDRESS's path names (`redis://host/2`), 0 without
/// one (and always in cluster mode).
pub(super) fn default_db(config: &Config) -> i64 {
    use redis::IntoConnectionInfo;
    match config.redis_mode {
        RedisMode::Cluster => 0,
        RedisMode::Standalone | RedisMode::Sentinel => config
            .redis_url
            .as_str()
            .into_connection_info()
            .map_or(0, |info| info.redis_settings().db()),
    }
}

/// A connection whose connect, reads and writes are each bounded by
/// `timeout` (REDIS_TIMEOUT_MS): every connection the proxy opens.
pub(super) fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// Why a connection to `target` could not be opened, in words an operator
/// acts on (`/readyz`'s `error`): the io error alone (`Connection refused
/// (os error 111)`) names neither the address nor who refused. Standalone
/// only: in sentinel mode the failure may be a sentinel's, in cluster mode
/// any node's, and the error says which.
pub(super) fn connect_failure(err: &redis::RedisError, target: &super::Target) -> String {
    let super::Target::Single(client) = target else {
        return err.to_string();
    };
    let to = client.get_connection_info().addr();
    if err.is_connection_refusal() {
        format!("connection refused to {to}")
    } else if err.is_timeout() {
        format!("connecting to {to} timed out")
    } else if err.to_string().contains("CertificateRequired") {
        // A TLS Redis at its default `tls-auth-clients yes`: say which
        // settings answer it.
        format!(
            "cannot connect to {to}: {err} (Redis asks for a client certificate: REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE)"
        )
    } else {
        format!("cannot connect to {to}: {err}")
    }
}

/// A client for the Redis at `url` (TLS and the configured CA included),
/// speaking `protocol`: RESP2 for the pool, RESP3 for the invalidation
/// link's pushes.
pub(super) fn client(
    config: &Config,
    url: &url::Url,
    protocol: redis::ProtocolVersion,
) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = url.as_str().into_connection_info()?;
    let settings = info.redis_settings().clone().set_protocol(protocol);
    let info = info.set_redis_settings(settings);
    client_for(config, info)
}

/// A client for `info` as it stands (a sentinel's, say), with REDIS_TLS_CA
/// and the client certificate if `info` is `rediss://`.
pub(super) fn client_for(
    config: &Config,
    info: redis::ConnectionInfo,
) -> redis::RedisResult<redis::Client> {
    match certificates(config) {
        Some(certificates) if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) => {
            redis::Client::build_with_tls(info, certificates)
        }
        _ => redis::Client::open(info),
    }
}

/// What the redis crate's `rediss://` clients trust and present:
/// REDIS_TLS_CA and the client certificate, `None` when neither is set
/// (the system's CAs, no certificate). Every client the crate makes takes
/// these: the pool's, the probe's, the invalidation links', the cluster's
/// and the sentinels'.
pub(super) fn certificates(config: &Config) -> Option<redis::TlsCertificates> {
    if config.redis_tls_ca.is_none() && config.redis_tls_client.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls: config
            .redis_tls_client
            .as_ref()
            .map(|client| redis::ClientTlsConfig {
                client_cert: client.cert_pem.clone(),
                client_key: client.key_pem.clone(),
            }),
        root_cert: config.redis_tls_ca.clone(),
    })
}

/// Whom raw connections to the configured Redis trust: REDIS_TLS_CA's
/// certificates (else the system's) for `rediss://`, presenting
/// REDIS_TLS_CERT_FILE's certificate if set; nothing for plain `redis://`.
/// The forwarders' connections and the invalidation links.
pub(super) fn tls_roots(config: &Config) -> io::Result<TlsRoots> {
    let tls = config.redis_url.scheme() == "rediss";
    TlsRoots::new(
        tls,
        config.redis_tls_ca.as_deref(),
        config.redis_tls_client.as_ref(),
    )
}

/// A cluster client for the seed nodes (TLS and its CA included), each
/// node's connect and reads bounded by REDIS_TIMEOUT_MS, and few retries so
/// a failing cluster answers within a small multiple of it.
pub(super) fn cluster_client(config: &Config) -> redis::RedisResult<redis::cluster::ClusterClient> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(
        config.redis_nodes.iter().map(|url| url.as_str()),
    )
    .connection_timeout(config.redis_timeout)
    .response_timeout(config.redis_timeout)
    .retries(2)
    .min_retry_wait(10)
    .max_retry_wait(100);
    if config.redis_url.scheme() == "rediss" {
        builder = builder.tls(redis::TlsMode::Secure);
        if let Some(certificates) = certificates(config) {
            builder = builder.certs(certificates);
        }
    }
    builder.build()
}
