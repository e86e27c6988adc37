//! The lines of an HTTP request head: each ends with CRLF, no header line
//! starts with whitespace (obs-fold), every header name is a token, no
//! header value holds a control byte but HTAB, the request line none at
//! all. Anything else is one 400
//! with a JSON body naming the problem, then the connection closes: never a
//! hang until the idle timeout, and nothing after such a head is read as a
//! request (vendor/tiny_http patches 17-19, 21, 23). A few empty lines before
//! the request line are ignored (patch 22).

use crate::common::HttpConnection;
use crate::http_framing::{one_answer, setup, SMUGGLED};

/// Each head in `heads` gets one 400 whose error mentions `problem`, and
/// the connection is closed (`one_answer` waits for the close, bounded).
fn refused(proxy: &crate::common::Endpoints, heads: &[Vec<u8>], problem: &str) {
    for raw in heads {
        let (status, json) = one_answer(proxy, raw);
        let error = json["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{:?}: {json}", String::from_utf8_lossy(raw));
        assert!(
            error.contains(problem),
            "{:?}: {error}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// `head` (without its final CRLF) followed by a second request the proxy
/// would answer if it took the first head's `Content-Length` for a body
/// length or the head's end for another place than the front end does.
fn with_smuggled(head: &str) -> Vec<u8> {
    format!("{head}Content-Length: {}\r\n\r\n{SMUGGLED}", SMUGGLED.len()).into_bytes()
}

#[test]
fn tiny_http_patch_17_a_bare_lf_or_cr_is_400_and_closes() {
    let (_redis, proxy) = setup();
    let heads = [
        // What `printf 'GET /healthz HTTP/1.1\nHost: x\n\n' | nc` sends.
        b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\n\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n".to_vec(),
        with_smuggled("GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\n"),
    ];
    refused(&proxy, &heads, "bare LF");
    assert_eq!(proxy.reads(), 0.0);
    // CRLF heads are served, the connection kept.
    let mut conn = HttpConnection::connect(proxy.addr);
    assert_eq!(conn.get("/proxy?key=k").status, 200);
    assert_eq!(conn.get("/healthz").status, 200);
}

#[test]
fn tiny_http_patch_18_obs_fold_is_400_and_closes() {
    let (_redis, proxy) = setup();
    let heads = [
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n".to_vec(),
        // A folded line that reads as a header once unfolded is not one.
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Connection: close\r\n\r\n".to_vec(),
        // Whitespace before the first header (RFC 9112 section 2.2).
        b"GET /proxy?key=k HTTP/1.1\r\n Host: x\r\n\r\n".to_vec(),
        // Unfolded, the length is part of X-A's value: no body.
        with_smuggled("GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\r\n "),
    ];
    refused(&proxy, &heads, "obs-fold");
    assert_eq!(proxy.reads(), 0.0);
}

#[test]
fn tiny_http_patch_19_a_header_name_that_is_not_a_token_is_400_and_closes() {
    let (_redis, proxy) = setup();
    let heads = [
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost\t: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX(A): v\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX\x01A: v\r\n\r\n".to_vec(),
    ];
    refused(&proxy, &heads, "header name");
    assert_eq!(proxy.reads(), 0.0);
    // Names made of any token characters, an empty value, and a colon in a
    // value are served, the connection kept.
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX_A.b~1!#$%&'*+-^`|: v\r\nX-Empty:\r\n\
          X-Colon: a: b\r\n\r\n",
    );
    let reply = conn.read_reply(false).expect("a reply");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
    assert_eq!(conn.get("/healthz").status, 200);
}

#[test]
fn tiny_http_patch_21_a_control_byte_in_a_header_value_is_400_and_closes() {
    let (_redis, proxy) = setup();
    let heads = [
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\0\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\0\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n".to_vec(),
        // Where a C parser's value ends, a length this one would take.
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\0Content-Length: 1\r\n\r\nG".to_vec(),
        with_smuggled("GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: \0\r\n"),
    ];
    refused(&proxy, &heads, "control byte");
    assert_eq!(proxy.reads(), 0.0);
    // HTAB and SP inside a value, and every visible byte, are served.
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(
        b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-A: a\tb c\r\nX-B: !~\"(),/:;<=>?@[\\]{}\r\n\r\n",
    );
    let reply = conn.read_reply(false).expect("a reply");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
    assert_eq!(conn.get("/healthz").status, 200);
}

/// A GET of `k` with a Host, as a client sends it.
const GET_K: &[u8] = b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn tiny_http_patch_22_a_few_empty_lines_before_the_request_line_are_ignored() {
    let (_redis, proxy) = setup();
    // Up to four, on a fresh connection.
    for empty in 1..=4 {
        let mut conn = HttpConnection::connect(proxy.addr);
        conn.reader_send_raw(&[&b"\r\n".repeat(empty), GET_K].concat());
        let reply = conn.read_reply(false).expect("a reply");
        assert_eq!(
            (reply.status, reply.body.as_slice()),
            (200, &b"v"[..]),
            "{empty}"
        );
    }
    // The stray CRLF some clients send after a body, on a kept-alive
    // connection; and pipelined requests each after an empty line.
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(
        &[
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab\r\n",
            GET_K,
            b"\r\n",
            GET_K,
        ]
        .concat(),
    );
    let answers: Vec<u16> = (0..3)
        .map(|_| conn.read_reply(false).expect("a reply").status)
        .collect();
    assert_eq!(answers, [413, 200, 200]);
    assert_eq!(conn.get("/healthz").status, 200);
    // More is a 400 that closes, as is a bare LF (patch 17).
    let (status, json) = one_answer(&proxy, &[&b"\r\n".repeat(5), GET_K].concat());
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("empty lines"),
        "{json}"
    );
    refused(&proxy, &[[b"\n", GET_K].concat()], "bare LF");
}

#[test]
fn tiny_http_patch_23_a_control_byte_in_the_request_line_is_400_and_closes() {
    let (_redis, proxy) = setup();
    let heads = [
        b"GET /proxy?key=k\0 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=a\tb HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET\t/proxy?key=k HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k\x7f HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /proxy?key=k HTTP/1.1\x1b\r\nHost: x\r\n\r\n".to_vec(),
    ];
    refused(&proxy, &heads, "control byte");
    assert_eq!(proxy.reads(), 0.0);
    // The same key bytes, percent-encoded, are a key like any other.
    let mut conn = HttpConnection::connect(proxy.addr);
    assert_eq!(conn.get("/proxy?key=k%01").status, 404);
    assert_eq!(conn.get("/proxy?key=k").status, 200);
}
