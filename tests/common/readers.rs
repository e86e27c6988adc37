//! Eight threads reading keys through the proxy while a test changes what
//! is behind it (a failover, a resharding), collecting every answer that is
//! neither a right value nor a JSON 503/504.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// The readers, until [`Readers::finish`].
pub struct Readers {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Vec<String>>>,
}

/// Reads keys `key(0..keys)` over HTTP at `addr`; a 200 must satisfy
/// `allowed(i, body)`.
pub fn spawn(
    addr: SocketAddr,
    keys: usize,
    key: fn(usize) -> String,
    allowed: fn(usize, &[u8]) -> bool,
) -> Readers {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..8)
        .map(|t| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut wrong = Vec::new();
                let mut i = t % keys;
                while !stop.load(Ordering::SeqCst) {
                    i = (i + 7) % keys;
                    let path = format!("/proxy?key={}", key(i));
                    let reply = super::http::request(addr, "GET", &path, &[]);
                    let fine = match reply.status {
                        200 => allowed(i, &reply.body),
                        503 | 504 => reply.json()["error"].is_string(),
                        _ => false,
                    };
                    if !fine {
                        wrong.push(format!("{} -> {} {}", key(i), reply.status, reply.text()));
                    }
                }
                wrong
            })
        })
        .collect();
    Readers { stop, threads }
}

impl Readers {
    /// Stops the readers and fails the test if any answer was wrong.
    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let wrong: Vec<String> = self
            .threads
            .into_iter()
            .flat_map(|reader| reader.join().expect("reader"))
            .collect();
        assert!(wrong.is_empty(), "wrong answers: {wrong:?}");
    }
}
