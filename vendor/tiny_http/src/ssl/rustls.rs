use crate::connection::Connection;
use crate::util::refined_tcp_stream::Stream as RefinedStream;
use std::error::Error;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A wrapper around an owned Rustls connection and corresponding stream.
///
/// Uses an internal Mutex to permit disparate reader & writer threads to access the stream independently.
///
/// redis-proxy patch 9: the second field is a clone of the socket, made once,
/// that a reader waits on (`peek`) without holding the Mutex.
pub(crate) struct RustlsStream(
    Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, Connection>>>,
    Option<Arc<std::net::TcpStream>>,
);

impl RustlsStream {
    pub(crate) fn peer_addr(&mut self) -> std::io::Result<Option<SocketAddr>> {
        self.0
            .lock()
            .expect("Failed to lock SSL stream mutex")
            .sock
            .peer_addr()
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> std::io::Result<()> {
        self.0
            .lock()
            .expect("Failed to lock SSL stream mutex")
            .sock
            .shutdown(how)
    }
}

impl Clone for RustlsStream {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1.clone())
    }
}

impl Read for RustlsStream {
    // redis-proxy patch 9: rustls's `StreamOwned::read` blocks on the socket
    // with the Mutex held, so nothing could be written to the connection
    // while its thread waited for the next request (patch 5 reads it while
    // the previous response is still being sent). Plaintext already
    // decrypted is returned under the lock; otherwise the lock is let go
    // while a peek at the socket waits for bytes, then taken again to
    // decrypt them.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(waiter) = self.1.as_ref() else {
            return self.0.lock().expect("Failed to lock SSL stream mutex").read(buf);
        };
        loop {
            {
                let mut guard = self.0.lock().expect("Failed to lock SSL stream mutex");
                let stream = &mut *guard;
                if stream.conn.is_handshaking() {
                    return stream.read(buf);
                }
                match stream.conn.reader().read(buf) {
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    done => return done,
                }
            }
            if waiter.peek(&mut [0u8])? == 0 {
                return Ok(0);
            }
            let mut guard = self.0.lock().expect("Failed to lock SSL stream mutex");
            let stream = &mut *guard;
            if stream.conn.read_tls(&mut stream.sock)? == 0 {
                return Ok(0);
            }
            if let Err(err) = stream.conn.process_new_packets() {
                let _ = stream.conn.write_tls(&mut stream.sock);
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, err));
            }
        }
    }
}

impl RustlsStream {
    /// redis-proxy patch 9: encrypts `plaintext` and sends what the socket
    /// takes now (`MSG_DONTWAIT`), like patch 5's `send_now` for plain
    /// connections. Returns how much plaintext was taken, and whether all
    /// of it is on the wire; the rest is left for a blocking `write`/`flush`.
    #[cfg(unix)]
    pub(crate) fn send_without_blocking(&self, plaintext: &[u8]) -> (usize, bool) {
        let mut guard = self.0.lock().expect("Failed to lock SSL stream mutex");
        let stream = &mut *guard;
        let socket = match &stream.sock {
            Connection::Tcp(s) => s,
            #[allow(unreachable_patterns)]
            _ => return (0, false),
        };
        if stream.conn.is_handshaking() {
            return (0, false);
        }
        let taken = stream.conn.writer().write(plaintext).unwrap_or(0);
        let mut socket = DontWait(socket);
        while stream.conn.wants_write() {
            match stream.conn.write_tls(&mut socket) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        (taken, taken == plaintext.len() && !stream.conn.wants_write())
    }
}

/// redis-proxy patch 9: a socket written without blocking.
#[cfg(unix)]
struct DontWait<'a>(&'a std::net::TcpStream);

#[cfg(unix)]
impl Write for DontWait<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        socket2::SockRef::from(self.0).send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Write for RustlsStream {
    // redis-proxy patch 9: with no handshake done (a client speaking plain
    // HTTP to the HTTPS port, say), rustls's `StreamOwned::write` would
    // block reading the socket, under the Mutex, to finish the handshake
    // before it could send the error response; there is no one to send it
    // to, so fail the write and let the connection close.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stream = self.0.lock().expect("Failed to lock SSL stream mutex");
        if stream.conn.is_handshaking() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no TLS session to write to",
            ));
        }
        stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .expect("Failed to lock SSL stream mutex")
            .flush()
    }
}

pub(crate) struct RustlsContext(Arc<rustls::ServerConfig>);

impl RustlsContext {
    pub(crate) fn from_pem(
        certificates: Vec<u8>,
        private_key: Zeroizing<Vec<u8>>,
    ) -> Result<Self, Box<dyn Error + Send + Sync>> {
        // redis-proxy patch 9: rustls 0.23, whose pki-types parse PEM (no
        // rustls-pemfile), and errors instead of panics for a bad key.
        use rustls::pki_types::pem::PemObject;
        let certificate_chain: Vec<rustls::pki_types::CertificateDer<'static>> =
            rustls::pki_types::CertificateDer::pem_slice_iter(&certificates)
                .collect::<Result<_, _>>()?;

        if certificate_chain.is_empty() {
            return Err("Couldn't extract certificate chain from config.".into());
        }

        let private_key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&private_key)?;

        let tls_conf = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certificate_chain, private_key)?;

        Ok(Self(Arc::new(tls_conf)))
    }

    pub(crate) fn accept(
        &self,
        stream: Connection,
    ) -> Result<RustlsStream, Box<dyn Error + Send + Sync + 'static>> {
        let connection = rustls::ServerConnection::new(self.0.clone())?;
        // redis-proxy patch 9: the socket clone readers wait on.
        let waiter = match &stream {
            Connection::Tcp(s) => s.try_clone().ok().map(Arc::new),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        Ok(RustlsStream(
            Arc::new(Mutex::new(rustls::StreamOwned::new(connection, stream))),
            waiter,
        ))
    }
}

impl From<RustlsStream> for RefinedStream {
    fn from(stream: RustlsStream) -> Self {
        Self::Https(stream)
    }
}
