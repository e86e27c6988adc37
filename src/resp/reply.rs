//! Writing replies, in RESP2 or RESP3 as the connection has chosen.
//!
//! Replies are appended to one output buffer per connection and flushed once
//! per batch of pipelined requests. Hand-written rather than built as
//! `redis-protocol` frames: a reply here is a handful of bytes appended in
//! place, with no intermediate value to allocate.

/// The protocol version a connection speaks; `HELLO` switches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The default.
    Resp2,
    /// After `HELLO 3`.
    Resp3,
}

/// An output buffer that knows which protocol to write.
pub struct Replies {
    /// The encoded bytes not yet written to the socket.
    pub buf: Vec<u8>,
    /// The connection's protocol.
    pub protocol: Protocol,
}

impl Replies {
    /// An empty buffer speaking RESP2.
    pub fn new() -> Replies {
        Replies {
            buf: Vec::with_capacity(16 * 1024),
            protocol: Protocol::Resp2,
        }
    }

    /// `+text`
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// `-message`; newlines in it are replaced so the reply stays one line.
    pub fn error(&mut self, message: &str) {
        self.error_bytes(message.as_bytes());
    }

    /// An error of any bytes (a protocol error naming the byte it found,
    /// which Redis sends raw); a `\r` or `\n` becomes a space, as Redis
    /// makes it.
    pub fn error_bytes(&mut self, message: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(
            message
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `:n`
    pub fn integer(&mut self, n: i64) {
        self.line(b':', itoa::Buffer::new().format(n).as_bytes());
    }

    /// A bulk string.
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.bulk_header(bytes.len());
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The header of a bulk string whose `len` bytes and `\r\n` the caller
    /// writes itself (to send a large value without copying it here).
    pub fn bulk_header(&mut self, len: usize) {
        self.line(b'$', itoa::Buffer::new().format(len).as_bytes());
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The header of an array of `len` elements.
    pub fn array(&mut self, len: usize) {
        self.line(b'*', itoa::Buffer::new().format(len).as_bytes());
    }

    /// The header of an out-of-band message: `>len` in RESP3, an array in
    /// RESP2 (Pub/Sub messages).
    pub fn push(&mut self, len: usize) {
        match self.protocol {
            Protocol::Resp2 => self.array(len),
            Protocol::Resp3 => self.line(b'>', itoa::Buffer::new().format(len).as_bytes()),
        }
    }

    /// The header of a map of `len` pairs: `%len` in RESP3, an array of
    /// `2 * len` elements in RESP2.
    pub fn map(&mut self, len: usize) {
        match self.protocol {
            Protocol::Resp2 => self.array(2 * len),
            Protocol::Resp3 => self.line(b'%', itoa::Buffer::new().format(len).as_bytes()),
        }
    }

    /// The header of a set of `len` elements (Redis's `addReplySetLen`):
    /// `~len` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        match self.protocol {
            Protocol::Resp2 => self.array(len),
            Protocol::Resp3 => self.line(b'~', itoa::Buffer::new().format(len).as_bytes()),
        }
    }

    fn line(&mut self, tag: u8, body: &[u8]) {
        self.buf.push(tag);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }
}

impl Default for Replies {
    fn default() -> Self {
        Replies::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_both_protocols() {
        let mut r = Replies::new();
        r.simple("OK");
        r.error("ERR bad\r\nthing");
        r.integer(-7);
        r.bulk(b"hi");
        r.null();
        r.map(1);
        assert_eq!(
            r.buf,
            b"+OK\r\n-ERR bad  thing\r\n:-7\r\n$2\r\nhi\r\n$-1\r\n*2\r\n"
        );
        let mut r = Replies::new();
        r.protocol = Protocol::Resp3;
        r.null();
        r.map(2);
        assert_eq!(r.buf, b"_\r\n%2\r\n");
    }
}
