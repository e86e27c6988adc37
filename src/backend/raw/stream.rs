//! The socket under a raw connection: plain TCP, or TLS for `rediss://`
//! (rustls, the stack the redis crate and the front ends use).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::config::RedisClientCert;

/// Whom a `rediss://` connection trusts: REDIS_TLS_CA's certificates, or
/// the system's; and the client certificate it presents, if
/// REDIS_TLS_CERT_FILE is set. Built once; cheap to share.
#[derive(Clone, Default)]
pub struct TlsRoots(Option<Arc<rustls::ClientConfig>>);

impl TlsRoots {
    /// The client configuration for `rediss://`, or nothing for plain
    /// `redis://` (where it is never needed).
    pub fn new(
        tls: bool,
        ca_pem: Option<&[u8]>,
        client: Option<&RedisClientCert>,
    ) -> io::Result<TlsRoots> {
        if !tls {
            return Ok(TlsRoots(None));
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|err| io::Error::other(err.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|err| io::Error::other(err.to_string()))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let config = crate::tls::redis_client_config(roots, client)
            .map_err(|err| io::Error::other(err.to_string()))?;
        Ok(TlsRoots(Some(Arc::new(config))))
    }

    /// Whether connections speak TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.0.is_some()
    }
}

/// A connected socket.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// A TCP connection to `host:port`, its connect, reads and writes
    /// bounded by `timeout`, with Nagle off (requests go out whole).
    pub fn tcp(host: &str, port: u16, timeout: Duration) -> io::Result<Stream> {
        Ok(Stream::Tcp(connect(host, port, timeout)?))
    }

    /// The same, speaking TLS to a server named `host`.
    pub fn tls(host: &str, port: u16, timeout: Duration, roots: &TlsRoots) -> io::Result<Stream> {
        let config = roots
            .0
            .clone()
            .ok_or_else(|| io::Error::other("no TLS settings for a rediss:// address"))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|err| io::Error::other(format!("{host}: {err}")))?;
        let session = rustls::ClientConnection::new(config, name)
            .map_err(|err| io::Error::other(err.to_string()))?;
        let tcp = connect(host, port, timeout)?;
        Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(
            session, tcp,
        ))))
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp_ref(&self) -> &TcpStream {
        match self {
            Stream::Tcp(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::other(format!("{host}:{port} resolves to no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(timeout))?;
                tcp.set_write_timeout(Some(timeout))?;
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}
