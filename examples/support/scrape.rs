//! Reading one figure off a running proxy's /metrics, for the examples that
//! measure it from outside (soak, staleness).

use std::io::{Read, Write};
use std::net::TcpStream;

/// The value of the un-labelled series `name` on the proxy at `http`.
pub fn metric(http: &str, name: &str) -> std::io::Result<u64> {
    let mut stream = TcpStream::connect(http)?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no {name} in /metrics")))
}
