//! A RESP connection that keeps replies as the exact bytes sent, one whole
//! frame at a time, so a test can compare what the proxy sends with what
//! Redis sends byte for byte (RESP2 and RESP3: pushes, maps, nulls). And
//! the figures of Redis's `INFO clients` a test polls.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, resp_command, RedisServer};

/// A raw RESP connection to the proxy or to Redis.
pub struct Wire {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Wire {
    /// Connects to `addr` (reads bounded by `PATIENCE`).
    pub fn open(addr: SocketAddr) -> Wire {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        Wire { stream, reader }
    }

    /// Connects and switches to RESP `protocol` (2 stays as it is; 3 sends
    /// `HELLO 3`, whose reply, the proxy's own, is read and dropped).
    pub fn open_with(addr: SocketAddr, protocol: u8) -> Wire {
        let mut wire = Wire::open(addr);
        if protocol == 3 {
            let hello = wire.call(&["HELLO", "3"]);
            assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
        }
        wire
    }

    /// Sends one command, without reading its reply.
    pub fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.stream
            .write_all(&resp_command(&args))
            .expect("send a command");
    }

    /// The next whole frame, as sent.
    pub fn frame(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        read_frame(&mut self.reader, &mut out);
        out
    }

    /// Sends one command and returns its reply, as sent.
    pub fn call(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        self.frame()
    }
}

/// Appends the next whole frame of `reader` to `out`, byte for byte.
fn read_frame(reader: &mut impl BufRead, out: &mut Vec<u8>) {
    let start = out.len();
    let read = reader.read_until(b'\n', out).expect("read a frame");
    assert!(read > 0, "the connection closed before a whole frame");
    let line = String::from_utf8_lossy(&out[start + 1..out.len() - 2]).into_owned();
    let count = || -> i64 { line.parse().expect("a length") };
    match out[start] {
        b'$' | b'=' | b'!' if count() >= 0 => {
            let mut body = vec![0u8; count() as usize + 2];
            reader.read_exact(&mut body).expect("a bulk string");
            out.extend_from_slice(&body);
        }
        b'*' | b'>' | b'~' => (0..count().max(0)).for_each(|_| read_frame(reader, out)),
        b'%' | b'|' => (0..2 * count().max(0)).for_each(|_| read_frame(reader, out)),
        _ => {}
    }
}

/// Bytes for a failure message: RESP as text, CRLFs shown.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\\r\\n")
}

/// `field` of Redis's `INFO clients` (`blocked_clients`,
/// `connected_clients`, `pubsub_clients` where the version has it).
pub fn info_clients(redis: &RedisServer, field: &str) -> u64 {
    let info: String = redis.cmd(&["INFO", "clients"]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in INFO clients: {info}"))
}

/// The lines of Redis's `CLIENT LIST` that satisfy `what`.
pub fn client_list(redis: &RedisServer, what: impl Fn(&str) -> bool) -> Vec<String> {
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    list.lines()
        .filter(|line| what(line))
        .map(str::to_owned)
        .collect()
}
