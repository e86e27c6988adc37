//! A raw RESP connection that reads whole replies as the exact bytes the
//! server sent (RESP2 and RESP3 types, nested, attributes included), so a
//! test can put the proxy's bytes beside redis-server's.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, resp_command};

/// A client connection speaking raw RESP.
pub struct RespConn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RespConn {
    /// Connects to `addr` (reads bounded by `PATIENCE`).
    pub fn open(addr: SocketAddr) -> RespConn {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        RespConn { stream, reader }
    }

    /// Sends one command, its words as a RESP array of bulk strings.
    pub fn send(&mut self, words: &[&str]) {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.send_raw(&resp_command(&args));
    }

    /// Sends bytes as they are (several commands at once: a pipeline).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next whole reply, byte for byte.
    pub fn reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        read_reply(&mut self.reader, &mut out);
        out
    }

    /// Sends one command and returns its reply as text (lossy UTF-8), for
    /// assertions that read better as strings.
    pub fn call(&mut self, words: &[&str]) -> String {
        self.send(words);
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    /// Whatever the server sends until it closes the connection (see
    /// [`super::read_until_closed`]), bytes already buffered first.
    pub fn until_closed(&mut self) -> Vec<u8> {
        let mut out = self.reader.buffer().to_vec();
        self.reader.consume(out.len());
        out.extend(super::read_until_closed(&mut self.stream));
        out
    }

    /// Closes both directions now.
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Appends one whole reply read from `reader` to `out`.
pub fn read_reply(reader: &mut impl BufRead, out: &mut Vec<u8>) {
    let start = out.len();
    let n = reader.read_until(b'\n', out).expect("read a reply");
    assert!(
        n >= 3 && out.ends_with(b"\r\n"),
        "the server closed or sent a broken line: {:?}",
        String::from_utf8_lossy(&out[start..])
    );
    let line = &out[start..out.len() - 2];
    let tag = line[0];
    let number = || -> i64 {
        std::str::from_utf8(&line[1..])
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("a length after {:?}", tag as char))
    };
    match tag {
        // Bulk string, bulk error, verbatim string: a length, then data.
        b'$' | b'!' | b'=' => {
            let len = number();
            if len >= 0 {
                let mut data = vec![0; len as usize + 2];
                reader.read_exact(&mut data).expect("bulk data");
                out.extend_from_slice(&data);
            }
        }
        // Array, set, push: that many replies; map, attribute: twice that.
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = number();
            let count = if matches!(tag, b'%' | b'|') {
                2 * count
            } else {
                count
            };
            for _ in 0..count.max(0) {
                read_reply(reader, out);
            }
            // An attribute annotates the reply that follows it.
            if tag == b'|' {
                read_reply(reader, out);
            }
        }
        // Simple string, error, integer, null, double, boolean, big number.
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
        other => panic!("not a RESP reply type: {:?}", other as char),
    }
}
