//! Browsers (issue 23): CORS for pages on other origins, in a real headless
//! Chromium, and the proxy's own page opened with credentials in its URL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::browser::chromium;
use crate::common::{refused_start, request, InProcess, RedisServer};

/// A tiny HTTP server on loopback that answers every request with one
/// page: the "other origin" a browser loads before calling the proxy.
struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Serves `html` on `addr` (loopback) until dropped.
    fn start_at(addr: SocketAddr, html: String) -> PageServer {
        let listener = TcpListener::bind(addr).expect("bind the page's port again");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    serve_page(stream, html.as_bytes());
                }
            }
        });
        PageServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// Reads one request head, answers with the page, closes.
fn serve_page(mut stream: TcpStream, html: &[u8]) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        html.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.write_all(html);
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A page that reads `/proxy?key=greeting` from the proxy at `proxy` with
/// the password (so the browser sends a preflight first), and writes what
/// happened into `#out`.
fn calling_page(proxy: SocketAddr) -> String {
    format!(
        r#"<!doctype html><html><body><div id="out">pending</div><script>
fetch("http://{proxy}/proxy?key=greeting", {{ headers: {{ "Authorization": "Bearer pw", "Accept": "application/json" }} }})
  .then((r) => r.json().then((b) => {{
    document.getElementById("out").textContent =
      "read " + r.status + " " + b.value + " cache=" + r.headers.get("X-Cache");
  }}))
  .catch((e) => {{ document.getElementById("out").textContent = "refused " + e; }});
</script></body></html>"#
    )
}

/// What `#out` says after Chromium ran the page at `url`.
fn outcome(url: &str) -> String {
    let out = chromium(url, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = dom.find("<div id=\"out\">").expect("#out") + "<div id=\"out\">".len();
    let end = start + dom[start..].find("</div>").expect("end of #out");
    dom[start..end].to_owned()
}

#[test]
fn a_page_on_a_listed_origin_reads_answers_and_one_on_another_cannot() {
    let redis = RedisServer::start();
    redis.set("greeting", "hello across origins");
    // The page's server is started first, to know its origin; the proxy's
    // port is only known once it runs, so the page is served from a second
    // server made once the proxy is up.
    let origin_holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin_addr = origin_holder.local_addr().expect("address");
    drop(origin_holder);
    let origin = format!("http://{origin_addr}");
    let listed = InProcess::start(
        &redis,
        &[
            ("PROXY_PASSWORD", "pw"),
            (
                "CORS_ALLOW_ORIGINS",
                &format!("https://elsewhere.test, {origin}"),
            ),
        ],
    );
    let page = PageServer::start_at(origin_addr, calling_page(listed.addr));
    let said = outcome(&page.url());
    assert!(said.starts_with("read 200 hello across origins"), "{said}");
    drop(page);

    // A proxy that lists other origins only: the browser refuses the page.
    let unlisted = InProcess::start(
        &redis,
        &[
            ("PROXY_PASSWORD", "pw"),
            ("CORS_ALLOW_ORIGINS", "https://elsewhere.test"),
        ],
    );
    let page = PageServer::start_at(origin_addr, calling_page(unlisted.addr));
    let said = outcome(&page.url());
    assert!(said.starts_with("refused TypeError"), "{said}");
}

#[test]
fn cors_headers_go_to_listed_origins_only() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let origin = "http://app.example.test:3000";
    let proxy = InProcess::start(&redis, &[("CORS_ALLOW_ORIGINS", origin)]);
    // The preflight: 204, the methods and headers allowed, no password asked.
    let preflight = request(
        proxy.addr,
        "OPTIONS",
        "/proxy?key=k",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization, if-none-match",
            ),
        ],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(origin)
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Authorization, If-None-Match")
    );
    assert_eq!(preflight.header("vary"), Some("Origin"));
    // RFC 9110 section 8.6: a 204 carries no Content-Length (tiny_http
    // patch 15).
    assert_eq!(preflight.header("content-length"), None);
    // A read from the origin: allowed, and marked as depending on Origin.
    let read = request(proxy.addr, "GET", "/proxy?key=k", &[("Origin", origin)]);
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), Some(origin));
    // (Reply keeps the last of repeated headers: Vary: Accept comes first.)
    assert_eq!(read.header("vary"), Some("Origin"));
    // Any other origin, or none: no CORS header; its preflight is a 405.
    for headers in [vec![("Origin", "http://evil.test")], vec![]] {
        let read = request(proxy.addr, "GET", "/proxy?key=k", &headers);
        assert_eq!(read.header("access-control-allow-origin"), None);
    }
    let refused = request(
        proxy.addr,
        "OPTIONS",
        "/proxy?key=k",
        &[
            ("Origin", "http://evil.test"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // `*`: any origin, by name of none.
    let any = InProcess::start(&redis, &[("CORS_ALLOW_ORIGINS", "*")]);
    let read = request(any.addr, "GET", "/healthz", &[("Origin", "http://x.test")]);
    assert_eq!(read.header("access-control-allow-origin"), Some("*"));
    // Unset: nothing, as before.
    let off = InProcess::start(&redis, &[]);
    let read = request(off.addr, "GET", "/healthz", &[("Origin", origin)]);
    assert_eq!(read.header("access-control-allow-origin"), None);
}

#[test]
fn an_invalid_cors_origin_stops_start_up_naming_the_variable() {
    for bad in ["example.com", "https://example.com/app", "*,https://a.test"] {
        let stderr = refused_start(&[("CORS_ALLOW_ORIGINS", bad), ("PROXY_PORT", "0")]);
        assert!(stderr.contains("CORS_ALLOW_ORIGINS"), "{bad}: {stderr}");
    }
}

#[test]
fn the_page_opened_with_credentials_in_its_url_looks_a_key_up() {
    let redis = RedisServer::start();
    redis.set("greeting", "hello with a password");
    let proxy = InProcess::start(&redis, &[("PROXY_PASSWORD", "s3cret")]);
    let url = format!("http://anyone:s3cret@{}/?key=greeting", proxy.addr);
    let out = chromium(&url, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("id=\"value\">hello with a password<"),
        "the lookup never finished: {dom}"
    );
    assert!(
        !dom.contains("id=\"hit_ratio\">…<"),
        "figures never filled in: {dom}"
    );
}

/// Status and every header line (lower-case names, repeats kept) of the
/// answer to `method path` with `headers`, on a connection closed after it.
fn every_header(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = crate::common::connect(addr);
    stream.write_all(head.as_bytes()).expect("send");
    let received = crate::common::read_until_closed(&mut stream);
    let text = String::from_utf8_lossy(&received);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let found = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, found)
}

fn values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn with_listed_origins_every_answer_varies_by_origin_and_unknown_paths_are_404() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let origin = "http://app.example.test:3000";
    let proxy = InProcess::start(&redis, &[("CORS_ALLOW_ORIGINS", origin)]);
    // The same URL with the listed origin, another, or none: each answer
    // says it depends on Origin, so a shared cache keeps them apart.
    let origins = [
        vec![("Origin", origin)],
        vec![("Origin", "http://evil.test")],
        vec![],
    ];
    for path in [
        "/proxy?key=k",
        "/proxy?key=absent",
        "/healthz",
        "/no-such-path",
    ] {
        for headers in &origins {
            let (status, answer) = every_header(proxy.addr, "GET", path, headers);
            assert!(
                values(&answer, "vary").contains(&"Origin"),
                "GET {path} {headers:?}: {status} {answer:?}"
            );
            let allowed = values(&answer, "access-control-allow-origin");
            let listed = headers.first().is_some_and(|(_, o)| *o == origin);
            assert_eq!(allowed, if listed { vec![origin] } else { vec![] });
        }
    }
    // Said once on a preflight, and on a refused one.
    let preflight = [("Origin", origin), ("Access-Control-Request-Method", "GET")];
    let (status, answer) = every_header(proxy.addr, "OPTIONS", "/proxy?key=k", &preflight);
    assert_eq!((status, values(&answer, "vary")), (204, vec!["Origin"]));
    let refused = [
        ("Origin", "http://evil.test"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let (status, answer) = every_header(proxy.addr, "OPTIONS", "/proxy?key=k", &refused);
    assert_eq!((status, values(&answer, "vary")), (405, vec!["Origin"]));
    // A preflight to a path the proxy does not serve is the 404 a request
    // there gets, not a 204 inviting the page to send it.
    for path in ["/no-such-path", "/proxy/extra"] {
        let (status, _) = every_header(proxy.addr, "OPTIONS", path, &preflight);
        assert_eq!(status, 404, "{path}");
    }
    // `*`: the same header on every answer, with an Origin or without, so
    // nothing varies by it.
    let any = InProcess::start(&redis, &[("CORS_ALLOW_ORIGINS", "*")]);
    for headers in &origins {
        let (_, answer) = every_header(any.addr, "GET", "/proxy?key=k", headers);
        assert_eq!(
            values(&answer, "access-control-allow-origin"),
            vec!["*"],
            "{headers:?}"
        );
        assert!(!values(&answer, "vary").contains(&"Origin"), "{headers:?}");
    }
    // Unset: no CORS header, no Vary: Origin.
    let off = InProcess::start(&redis, &[]);
    let (_, answer) = every_header(off.addr, "GET", "/proxy?key=k", &[("Origin", origin)]);
    assert!(
        values(&answer, "vary").iter().all(|v| *v != "Origin"),
        "{answer:?}"
    );
    assert!(values(&answer, "access-control-allow-origin").is_empty());
}
