//! A RESP connection's byte stream: the socket itself, or TLS over it.
//!
//! Both are non-blocking and read and written the same way, so the
//! connection's state machine and its flow control do not know which one
//! they drive. TLS is rustls's `ServerConnection` driven by hand (no
//! `StreamOwned`, which would block): bytes from the socket go in with
//! `read_tls`, plaintext comes out of its reader, replies go in through its
//! writer and out with `write_tls` as far as the socket takes them.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;

/// How much encrypted output rustls may hold for one connection that does
/// not read: beyond it, writes report `WouldBlock` like a full socket.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// The socket, or TLS over it.
pub enum Transport {
    /// Plaintext RESP.
    Plain(TcpStream),
    /// TLS, as redis-server's `tls-port` speaks it.
    Tls(Box<TlsStream>),
}

/// rustls's state for one connection, and its socket.
pub struct TlsStream {
    tls: rustls::ServerConnection,
    socket: TcpStream,
}

impl Transport {
    /// Wraps an accepted socket; with a TLS configuration the handshake
    /// starts with the client's first bytes.
    pub fn new(
        socket: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> Result<Transport, rustls::Error> {
        Ok(match tls {
            None => Transport::Plain(socket),
            Some(config) => {
                let mut tls = rustls::ServerConnection::new(Arc::clone(config))?;
                tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                Transport::Tls(Box::new(TlsStream { tls, socket }))
            }
        })
    }

    /// The socket, for registering with the poll.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(stream) => &mut stream.socket,
        }
    }

    /// Whether it is plain TCP (a short read then means the socket is
    /// empty; TLS may hold decrypted bytes back).
    pub fn is_plain(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Reads plaintext: `Ok(0)` when the client has finished, `WouldBlock`
    /// when nothing is there yet. A client that does not speak TLS on a
    /// TLS port gets an error here (and an alert), so it is closed.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stream = match self {
            Transport::Plain(socket) => return socket.read(buf),
            Transport::Tls(stream) => stream,
        };
        loop {
            match stream.tls.reader().read(buf) {
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                done => return done,
            }
            if stream.tls.read_tls(&mut stream.socket)? == 0 {
                return Ok(0);
            }
            if let Err(err) = stream.tls.process_new_packets() {
                let _ = stream.flush();
                return Err(io::Error::new(ErrorKind::InvalidData, err));
            }
            // Handshake messages, as far as the socket takes them now; the
            // rest goes out with the next write.
            match stream.flush() {
                Err(err) if err.kind() != ErrorKind::WouldBlock => return Err(err),
                _ => {}
            }
        }
    }

    /// Writes plaintext, as much as fits; `WouldBlock` when nothing does.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stream = match self {
            Transport::Plain(socket) => return socket.write(buf),
            Transport::Tls(stream) => stream,
        };
        stream.flush()?;
        let n = stream.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        match stream.flush() {
            Err(err) if err.kind() != ErrorKind::WouldBlock => Err(err),
            _ => Ok(n),
        }
    }

    /// Sends what TLS still holds; `WouldBlock` if the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(stream) => stream.flush(),
        }
    }

    /// True while TLS holds output the socket has not taken.
    pub fn has_pending(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(stream) => stream.tls.wants_write(),
        }
    }

    /// Ends the write side (TLS says `close_notify` first, best effort).
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls(stream) = self {
            stream.tls.send_close_notify();
            let _ = stream.flush();
        }
        let _ = self.socket().shutdown(Shutdown::Write);
    }
}

impl TlsStream {
    fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.socket)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

/// What a client beyond MAX_CONNECTIONS is told before the close: Redis's
/// own words for its `maxclients`.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// Turns away a plain-TCP client beyond MAX_CONNECTIONS: Redis's error,
/// then the close. A fresh socket takes those few bytes at once. The write
/// side is shut right after them, so the client reads the error and then
/// the end, and what it already sent is read and dropped (what one read
/// takes): closing with it unread would make the close a reset, which a
/// client may report instead of the error. (Over TLS the words would need
/// a handshake first, a connection's worth of state and time.)
pub fn turn_away(mut stream: mio::net::TcpStream, chunk: &mut [u8]) {
    use std::io::{Read, Write};
    let _ = stream.write(MAX_CLIENTS_REACHED);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.read(chunk);
}
