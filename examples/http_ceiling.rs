//! The HTTP ceiling for `make bench`: tiny_http (our patched copy) with the
//! proxy's worker pool, answering every request with a fixed body built by
//! the proxy's own response code. No cache, no lock, no Redis: whatever this
//! serves per second is the most any tiny_http server can on this machine,
//! and the CPU it spends per request is the library's own cost, which the
//! bench's CPU-per-request row compares the proxy's hits with.
//!
//! Environment: PORT (default 8090), WORKERS (16), BODY_SIZE (100 bytes).

use std::sync::Arc;
use std::thread;

use redis_proxy::http::response;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port = env_or("PORT", 8090);
    let workers = env_or("WORKERS", 16);
    // One body for the life of the process, borrowed by every response.
    let body: &'static [u8] = Vec::leak(vec![b'x'; env_or("BODY_SIZE", 100)]);
    let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port as u16))?);
    eprintln!(
        "http_ceiling on 127.0.0.1:{port}, {workers} workers, {} byte body",
        body.len()
    );
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let reply = response::build(200, b"text/plain; charset=utf-8", body)
                        .with_header(b"X-Cache", b"HIT");
                    // Written as the proxy writes them.
                    request.respond_without_blocking(reply.into_tiny(), false, || {});
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}
