//! The HTTP front end: a fixed pool of worker threads taking requests from
//! one `tiny_http` server, routing them, and answering through the service.
//!
//! tiny_http reads requests on its own per-connection threads and queues them
//! in arrival order; the workers pop that queue. So MAX_CLIENTS bounds the
//! requests in service at once, and further requests wait their turn instead
//! of being refused.

pub mod query;
pub mod response;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_http::{Method, Request, Server};

use crate::service::Service;
use response::HttpResponse;

/// How often an idle worker checks whether the server is draining.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// The running HTTP front end.
pub struct HttpServer {
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    /// A handle on the listening socket, to stop accepting at shutdown.
    listener: TcpListener,
    addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr` and starts `workers` threads serving it.
    /// Connections idle (or stalled mid-request, or not reading their
    /// response) for `idle_timeout` are closed.
    pub fn start(
        addr: SocketAddr,
        workers: usize,
        idle_timeout: Duration,
        service: Arc<Service>,
    ) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        // Accepted sockets inherit these timeouts from the listener (Linux),
        // so every connection tiny_http reads gets them without a patch.
        // tiny_http answers a read timeout with 408 and closes.
        let socket = socket2::SockRef::from(&listener);
        socket.set_read_timeout(Some(idle_timeout))?;
        socket.set_write_timeout(Some(idle_timeout))?;
        let addr = listener.local_addr()?;
        let handle = listener.try_clone()?;
        let server = Server::from_listener(listener, None).map_err(io::Error::other)?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|i| {
                let server = Arc::clone(&server);
                let service = Arc::clone(&service);
                let stopping = Arc::clone(&stopping);
                thread::Builder::new()
                    .name(format!("http-worker-{i}"))
                    .spawn(move || work(&server, &service, &stopping))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            workers,
            stopping,
            listener: handle,
            addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; the workers finish the requests already
    /// received, then exit. See [`HttpServer::is_drained`].
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Shutting the listening socket down makes the blocked accept fail
        // and further connections be refused.
        if let Err(err) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Both) {
            log::warn!("could not close the HTTP listener: {err}");
        }
    }

    /// True once every worker has exited.
    pub fn is_drained(&self) -> bool {
        self.workers.iter().all(JoinHandle::is_finished)
    }
}

/// One worker: take the next request, answer it, repeat; once the server is
/// draining, exit as soon as no request is waiting.
fn work(server: &Server, service: &Service, stopping: &AtomicBool) {
    loop {
        match server.recv_timeout(DRAIN_POLL) {
            Ok(Some(request)) => serve(request, service),
            Ok(None) if stopping.load(Ordering::SeqCst) => return,
            Ok(None) => {}
            Err(err) if stopping.load(Ordering::SeqCst) => {
                log::debug!("HTTP listener closed: {err}");
            }
            Err(err) => log::warn!("HTTP listener error: {err}"),
        }
    }
}

fn serve(request: Request, service: &Service) {
    let started = Instant::now();
    let metrics = service.metrics();
    metrics.in_flight(1);
    let response = route(&request, service);
    let status = response.status_code().0;
    if log::log_enabled!(log::Level::Debug) {
        let cache = response
            .headers()
            .iter()
            .find(|h| h.field.equiv("X-Cache"))
            .map_or("-", |h| h.value.as_str());
        log::debug!(
            "{} {} {} {} {:?}",
            request.method(),
            request.url(),
            status,
            cache,
            started.elapsed()
        );
    }
    // Counted before the answer is written, so a client that has read its
    // answer always finds it counted (a scrape right after sees it).
    metrics.in_flight(-1);
    metrics.http_request(status, started.elapsed());
    if let Err(err) = request.respond(response) {
        log::debug!("HTTP response not delivered: {err}");
    }
}

fn route(request: &Request, service: &Service) -> HttpResponse {
    let url = request.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let readable = matches!(request.method(), Method::Get | Method::Head);
    match path {
        "/proxy" if readable => proxy(request, query, service),
        "/healthz" if readable => response::json(200, &json!({ "status": "ok" })),
        "/readyz" if readable => ready(service),
        "/metrics" if readable => response::build(
            200,
            b"text/plain; version=0.0.4; charset=utf-8",
            service.metrics().render().into(),
        ),
        "/proxy" | "/healthz" | "/readyz" | "/metrics" => {
            response::method_not_allowed(b"GET, HEAD")
        }
        _ => response::error(404, "no such path; use GET /proxy?key=K", None),
    }
}

fn proxy(request: &Request, query: &str, service: &Service) -> HttpResponse {
    if request.body_length().is_some_and(|len| len > 0) {
        return response::error(413, "GET /proxy takes no request body", None);
    }
    let key = match query::find_key(query) {
        Ok(key) => key,
        Err(query::KeyError::TooLong) => {
            return response::error(414, &query::KeyError::TooLong.message(), None)
        }
        Err(err) => return response::error(400, &err.message(), None),
    };
    let _place = service.admit();
    match service.get(&key) {
        Ok(Some(found)) => response::value(&key, found, wants_json(request)),
        Ok(None) => response::absent(&key),
        Err(err) => response::backend_error(&key, &err),
    }
}

fn ready(service: &Service) -> HttpResponse {
    match service.backend().ping() {
        Ok(()) => response::json(200, &json!({ "status": "ready", "backend": "up" })),
        Err(err) => response::json(
            503,
            &json!({ "status": "not ready", "backend": "down", "error": err.to_string() }),
        ),
    }
}

/// True when the `Accept` header names `application/json` (any case; no
/// allocation, since curl and browsers send an Accept header every time).
fn wants_json(request: &Request) -> bool {
    const JSON: &[u8] = b"application/json";
    request.headers().iter().any(|header| {
        header.field.equiv("Accept")
            && header
                .value
                .as_bytes()
                .windows(JSON.len())
                .any(|w| w.eq_ignore_ascii_case(JSON))
    })
}
