//! The HTTP front end: a fixed pool of worker threads taking requests from
//! one `tiny_http` server, routing them, and answering through the service.
//!
//! tiny_http reads requests on its own per-connection threads and queues them
//! in arrival order; the workers pop that queue. So WORKERS bounds the
//! requests in service at once, and further requests wait their turn instead
//! of being refused.
//!
//! Flow control (vendor patch 5): a connection has at most one request queued
//! or in service; its next one is not queued until the answer is written. The
//! worker writes the answer only if the socket takes it at once; the rest is
//! written by a thread of its own, so a client that reads slowly (or never)
//! holds that thread and its own socket only: never a worker, a WORKERS
//! place or the cache lock.

mod accept;
pub mod cors;
mod host;
pub mod query;
pub mod response;
mod status;
mod typed;
mod typed_json;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_http::{Method, Request, Server, SslConfig};

use crate::metrics::{serve_on_this_thread, FrontEnd};
use crate::service::{Found, Service};
use crate::tls::TlsIdentity;
use cors::Cors;
use response::HttpResponse;

/// The running HTTP front end.
pub(crate) struct HttpServer {
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    /// Answers handed to connections and not yet written (or given up).
    unwritten: Arc<AtomicUsize>,
    /// A handle on the listening socket, to stop accepting at shutdown.
    listener: TcpListener,
    /// The server the workers take requests from, to wake them at shutdown.
    server: Arc<Server>,
    addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr` and starts `workers` threads serving it, over TLS when
    /// `tls` is given.
    /// Connections idle (or stalled mid-request, or not reading their
    /// response) for `idle_timeout` are closed.
    pub fn start(
        addr: SocketAddr,
        workers: usize,
        idle_timeout: Duration,
        tls: Option<&TlsIdentity>,
        cors: Cors,
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
        // HTTPS: tiny_http's rustls support (patch 9 moves it to the rustls
        // 0.23 the RESP port and `rediss://` use).
        let ssl = tls.map(|tls| SslConfig {
            certificate: tls.cert_pem.clone(),
            private_key: tls.key_pem.clone(),
        });
        let server = Server::from_listener(listener, ssl).map_err(io::Error::other)?;
        let server = Arc::new(server);
        service.watch_connections(FrontEnd::Http, server.open_connections());
        // Answers tiny_http writes itself to heads it refuses (vendor patch
        // 20) count as requests: no worker sees them.
        let refused_heads = server.head_errors();
        service
            .metrics()
            .watch_head_errors(move |status| refused_heads.answered(status));
        let stopping = Arc::new(AtomicBool::new(false));
        let unwritten = Arc::new(AtomicUsize::new(0));
        let cors = Arc::new(cors);
        let workers = (0..workers)
            .map(|i| {
                let server = Arc::clone(&server);
                let worker = Worker {
                    service: Arc::clone(&service),
                    stopping: Arc::clone(&stopping),
                    unwritten: Arc::clone(&unwritten),
                    cors: Arc::clone(&cors),
                };
                thread::Builder::new()
                    .name(format!("http-worker-{i}"))
                    .spawn(move || worker.work(&server))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            workers,
            stopping,
            unwritten,
            listener: handle,
            server,
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
        // One wake-up per worker, queued behind the requests already
        // received: each worker serves what is ahead of it, then takes one
        // and exits (a worker that instead takes the error the closed
        // listener queues exits on that, and a wake-up is left over).
        for _ in &self.workers {
            self.server.unblock();
        }
    }

    /// True once every worker has exited and every answer they gave has
    /// been written (or its client has gone).
    pub fn is_drained(&self) -> bool {
        self.workers.iter().all(JoinHandle::is_finished)
            && self.unwritten.load(Ordering::SeqCst) == 0
    }
}

/// What one worker thread needs.
struct Worker {
    service: Arc<Service>,
    stopping: Arc<AtomicBool>,
    unwritten: Arc<AtomicUsize>,
    cors: Arc<Cors>,
}

impl Worker {
    /// Takes the next request, answers it, repeats; once the server is
    /// draining, exits when it reaches the wake-up
    /// [`HttpServer::begin_shutdown`] queued behind the requests received
    /// until then. Blocks without a timeout: no clock read or wake-up per
    /// request or per idle interval.
    fn work(&self, server: &Server) {
        serve_on_this_thread(FrontEnd::Http);
        loop {
            match server.recv() {
                Ok(request) => self.serve(request),
                Err(err) if self.stopping.load(Ordering::SeqCst) => {
                    log::debug!("HTTP worker stops: {err}");
                    return;
                }
                Err(err) => log::warn!("HTTP listener error: {err}"),
            }
        }
    }

    fn serve(&self, request: Request) {
        let started = Instant::now();
        let in_flight = self.service.request_started();
        let mut response = if let Some(problem) = host::problem(&request) {
            response::error(400, problem, None)
        } else {
            match self.cors.preflight(&request) {
                Some(preflight) => preflight,
                None => route(&request, &self.service, started),
            }
        };
        self.cors.decorate(&request, &mut response);
        let status = response.status;
        if log::log_enabled!(log::Level::Debug) {
            log::debug!(
                "{} {} {} {} {:?}",
                request.method(),
                request.url(),
                status,
                response.header("X-Cache").unwrap_or("-"),
                started.elapsed()
            );
        }
        // Counted before the answer is written, so a client that has read its
        // answer always finds it counted (a scrape right after sees it).
        drop(in_flight);
        self.service.http_answered(status, started.elapsed());
        // Never waits on the client's socket: what it cannot take now is
        // written by a thread of its own (vendor patch 5), so this worker is
        // free however slowly the client reads. While draining, the answer
        // says `Connection: close`, and the drain waits until it is out.
        let close = self.stopping.load(Ordering::SeqCst);
        self.unwritten.fetch_add(1, Ordering::SeqCst);
        let unwritten = Arc::clone(&self.unwritten);
        request.respond_without_blocking(response.into_tiny(), close, move || {
            unwritten.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Answers `request`, which a worker took up at `started`.
fn route(request: &Request, service: &Service, started: Instant) -> HttpResponse {
    let url = query::origin_form(request.url());
    let (path, query) = query::split_target(&url);
    let readable = matches!(request.method(), Method::Get | Method::Head);
    // With PROXY_PASSWORD set, these need it (/metrics unless METRICS_OPEN);
    // health, readiness and unknown paths are answered without it.
    // "/proxy" first: patterns are compared in order, and most requests are.
    let guarded = match path {
        "/proxy" | "/" | "/stats" => true,
        "/metrics" => !service.metrics_open(),
        _ => false,
    };
    if readable && guarded {
        if let Some(refusal) = refused(request, service) {
            return refusal;
        }
    }
    match path {
        "/proxy" if readable => proxy(request, query, service, started),
        "/" if readable => response::build(200, b"text/html; charset=utf-8", PAGE.as_bytes()),
        "/stats" if readable => status::stats(service),
        "/healthz" if readable => response::json(200, &json!({ "status": "ok" })),
        "/readyz" if readable => status::ready(service),
        "/metrics" if readable => status::metrics(service),
        _ if served(path) => response::method_not_allowed(b"GET, HEAD"),
        _ => response::error(
            404,
            "no such path; use GET /proxy?key=K (or / in a browser)",
            None,
        ),
    }
}

/// Whether the proxy serves the path of the request target `target`.
fn serves_target(target: &str) -> bool {
    served(query::split_target(&query::origin_form(target)).0)
}

/// Whether the proxy serves `path` (other methods than GET and HEAD there
/// are 405, and a CORS preflight 204; elsewhere 404).
fn served(path: &str) -> bool {
    matches!(
        path,
        "/proxy" | "/" | "/stats" | "/healthz" | "/readyz" | "/metrics"
    )
}

/// The page for browsers: a key lookup and live figures, self-contained (no
/// external assets), served at `/`.
const PAGE: &str = include_str!("page.html");

/// With PROXY_PASSWORD set, the 401 for a request that does not give it
/// (`Authorization: Bearer <password>`, or Basic with it as the password);
/// None when the request may go on.
fn refused(request: &Request, service: &Service) -> Option<HttpResponse> {
    if !service.requires_password() {
        return None;
    }
    let given = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    let message = match given.and_then(password_of) {
        Some(password) if service.check_password(&password, "http") => return None,
        Some(_) => "wrong password",
        None => "authentication required: Authorization: Bearer <password>, or Basic",
    };
    Some(response::unauthorized(message))
}

/// The password an `Authorization` header gives: a Bearer token, or the
/// password part of Basic credentials (any user name).
fn password_of(header: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let (scheme, credentials) = header.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.as_bytes().to_vec());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

fn proxy(request: &Request, query: &str, service: &Service, started: Instant) -> HttpResponse {
    if request.body_length().is_some_and(|len| len > 0) {
        return response::error(413, "GET /proxy takes no request body", None);
    }
    let max = service.max_key_bytes();
    let key = match query::find_key(query, max) {
        Ok(key) => key,
        Err(err @ query::KeyError::TooLong) => {
            return response::error(414, &err.message(max), None)
        }
        Err(err) => return response::error(400, &err.message(max), None),
    };
    // A hit is served without a WORKERS place: it never touches Redis, and
    // HTTP already has just that many workers. Only a miss queues for one.
    let found = match service.cached_with(&key, started, response::Held::take) {
        Some(found) => found,
        None => {
            let _place = service.admit();
            // A key the reply cache knows holds another type skips the GET
            // Redis would refuse with WRONGTYPE (issue #22).
            if let Some(typed) = typed::known_other_type(&key, service, started) {
                return typed::answer(request, &key, service, Some(typed));
            }
            match service.get(&key) {
                Ok(Some(found)) => found.map(response::Held::from),
                Ok(None) => return response::absent(&key),
                // Another type than string: its JSON (issue #22).
                Err(err) if typed::is_wrong_type(&err) => {
                    return typed::answer(request, &key, service, None)
                }
                Err(err) => return response::backend_error(&key, &err),
            }
        }
    };
    answer_found(request, &key, found)
}

/// The answer about a string value found for `key`: raw or JSON as
/// `Accept` asks, or 304 when `If-None-Match` matches its tag. Inlined, so
/// a hit runs the same code as when this was the end of [`proxy`].
#[inline(always)]
fn answer_found(
    request: &Request,
    key: &[u8],
    found: Found<impl response::Payload>,
) -> HttpResponse {
    let as_json = wants_json(request);
    let tag = response::ETag::of(&found, as_json);
    match if_none_match(request) {
        Some(header) if response::none_match(&header, tag.as_str()) => {
            response::not_modified(key, &found, as_json, &tag)
        }
        _ => response::value(key, found, as_json, &tag),
    }
}

/// Every `If-None-Match` header's value, joined as one list (no allocation
/// when there is none, which is most requests).
fn if_none_match(request: &Request) -> Option<String> {
    let mut joined: Option<String> = None;
    for header in request.headers() {
        if header.field.equiv("If-None-Match") {
            match &mut joined {
                Some(list) => {
                    list.push(',');
                    list.push_str(header.value.as_str());
                }
                None => joined = Some(header.value.as_str().to_owned()),
            }
        }
    }
    joined
}

/// True when `Accept` prefers `application/json` to the raw bytes (media
/// ranges parsed, `q` weighed: [`accept::prefers_json`]; no allocation,
/// since curl and browsers send an Accept header every time).
fn wants_json(request: &Request) -> bool {
    let values = request
        .headers()
        .iter()
        .filter(|header| header.field.equiv("Accept"))
        .map(|header| header.value.as_str());
    accept::prefers_json(values)
}
