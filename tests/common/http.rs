//! A small HTTP/1.1 client over raw sockets, so tests control every byte
//! (keep-alive, HEAD, duplicate parameters).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, PATIENCE};

/// Percent-encodes every byte that is not unreserved.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// `X-Cache` is `HIT`.
    pub fn is_hit(&self) -> bool {
        self.header("x-cache") == Some("HIT")
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    try_request(addr, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
}

pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut client = HttpConnection::new(stream);
    let mut all = vec![("Connection", "close")];
    all.extend_from_slice(headers);
    client.send(method, path, &all)?;
    client.read_reply(method == "HEAD")
}

/// A keep-alive HTTP/1.1 connection.
pub struct HttpConnection {
    reader: BufReader<TcpStream>,
}

impl HttpConnection {
    pub fn new(stream: TcpStream) -> HttpConnection {
        HttpConnection {
            reader: BufReader::new(stream),
        }
    }

    pub fn connect(addr: SocketAddr) -> HttpConnection {
        HttpConnection::new(connect(addr))
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.reader.get_mut().write_all(head.as_bytes())
    }

    pub fn read_reply(&mut self, head_only: bool) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
            }
        }
        let mut body = Vec::new();
        // A 304 (or 204, or 1xx) has no body whatever its Content-Length
        // says (RFC 9112 section 6.3).
        if !head_only && !matches!(status, 100..=199 | 204 | 304) {
            if let Some(len) = headers.get("content-length") {
                let len: usize = len.parse().map_err(std::io::Error::other)?;
                body.resize(len, 0);
                self.reader.read_exact(&mut body)?;
            } else if headers.contains_key("transfer-encoding") {
                return Err(std::io::Error::other("response is chunked"));
            } else {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Writes raw bytes on this connection.
    pub fn reader_send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send raw request");
    }

    /// A GET on this connection, kept alive.
    pub fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[]).expect("send request");
        self.read_reply(false).expect("read reply")
    }
}
