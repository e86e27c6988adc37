//! RESP over a raw socket, reply by reply: a framer of its own (not the
//! proxy's, which is under test), so a test can send the same bytes to the
//! proxy and to redis-server and compare the replies byte for byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, resp_command};

/// The index just past the whole RESP2/RESP3 reply that starts at
/// `buf[at]`, or `None` while it is incomplete. Panics on bytes that are
/// not RESP (a test failure, with the bytes shown).
pub fn reply_end(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[at + 1..line_end]).expect("a RESP header line");
    let next = line_end + 2;
    let count = || -> i64 {
        head.parse()
            .unwrap_or_else(|_| panic!("a length: {head:?}"))
    };
    match buf[at] {
        b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => Some(next),
        b'$' | b'=' | b'!' => match count() {
            n if n < 0 => Some(next),
            n => {
                let end = next + n as usize + 2;
                (buf.len() >= end).then_some(end)
            }
        },
        kind @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n = count();
            if n < 0 {
                return Some(next);
            }
            let items = if matches!(kind, b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut end = next;
            for _ in 0..items {
                end = reply_end(buf, end)?;
            }
            // An attribute precedes the reply it describes.
            if kind == b'|' {
                end = reply_end(buf, end)?;
            }
            Some(end)
        }
        other => panic!("not RESP at byte {at} ({other:#x}): {}", show(&buf[at..])),
    }
}

/// Bytes as a test failure shows them: printable, CRLF as `\r\n`.
pub fn show(bytes: &[u8]) -> String {
    let text: String = bytes.escape_ascii().to_string();
    match text.len() {
        0..=600 => text,
        len => format!("{}... ({len} characters)", &text[..600]),
    }
}

/// Splits a command line into words: spaces separate them, and a word in
/// double quotes keeps its spaces (for Lua scripts).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').expect("a closing quote"),
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        out.push(word.to_owned());
        rest = after.trim_start();
    }
    out
}

/// A command line (see [`words`]) as a client sends it.
pub fn encode_line(line: &str) -> Vec<u8> {
    let words = words(line);
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    resp_command(&args)
}

/// A raw RESP connection that reads whole replies, as sent.
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Connects to `addr` (reads bounded by `PATIENCE`).
    pub fn connect(addr: SocketAddr) -> Wire {
        Wire {
            stream: connect(addr),
            buf: Vec::new(),
        }
    }

    /// [`Wire::connect`], then RESP `protocol` (2 stays as it is; 3 sends
    /// `HELLO 3`, whose reply, the proxy's own, is read and dropped).
    pub fn open_with(addr: SocketAddr, protocol: u8) -> Wire {
        let mut wire = Wire::connect(addr);
        if protocol == 3 {
            let hello = wire.call_args(&["HELLO", "3"]);
            assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
        }
        wire
    }

    /// Sends one command given as its arguments, without reading.
    pub fn send_args(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.send(&resp_command(&args));
    }

    /// Sends one command given as its arguments and reads its reply.
    pub fn call_args(&mut self, args: &[&str]) -> Vec<u8> {
        self.send_args(args);
        self.reply()
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to the server");
    }

    /// The next whole reply.
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = reply_end(&self.buf, 0) {
                return self.buf.drain(..end).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("a reply");
            assert!(n > 0, "closed mid-reply: {}", show(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next `n` whole replies.
    pub fn replies(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.reply()).collect()
    }

    /// Sends one command line (see [`words`]) and reads its reply.
    pub fn call(&mut self, line: &str) -> Vec<u8> {
        self.send(&encode_line(line));
        self.reply()
    }

    /// [`Wire::call`], the reply as text.
    pub fn call_text(&mut self, line: &str) -> String {
        String::from_utf8_lossy(&self.call(line)).into_owned()
    }
}
