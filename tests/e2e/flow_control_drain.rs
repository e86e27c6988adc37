//! Flow control's other half: a connection held back at the output
//! high-water mark (4 MiB of unsent replies) goes on once its client reads.
//! Its remaining requests are already in the proxy's input, so no event
//! says they are there: the loop must run them when the output drains.
//! Each test pipelines, in one write, far more replies than the mark and
//! reads them all; a stall fails as the read timeout (`PATIENCE`), nothing
//! else is timed. The stall depended on one write taking all the output
//! (a large enough client window), so each test runs several rounds.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::common::certs::{make_certificates, tls_client};
use crate::common::resp_wire::{reply_end, Wire};
use crate::common::{connect, resp_command, InProcess, RedisServer, TempDir};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// Sends `request` `count` times in one write on each of `connections`
/// connections, `rounds` times each, and checks every reply is `expected`.
fn pipeline_rounds(
    proxy: &InProcess,
    request: &[&str],
    expected: &[u8],
    (connections, rounds, count): (usize, usize, usize),
) {
    let args: Vec<&[u8]> = request.iter().map(|arg| arg.as_bytes()).collect();
    let pipeline = resp_command(&args).repeat(count);
    for connection in 0..connections {
        let mut client = Wire::connect(proxy.resp.expect("RESP port"));
        for round in 0..rounds {
            client.send(&pipeline);
            for i in 0..count {
                let reply = client.reply();
                assert!(
                    reply == expected,
                    "connection {connection} round {round} reply {i}: {} bytes, not the value",
                    reply.len()
                );
            }
        }
    }
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut reply = format!("${}\r\n", value.len()).into_bytes();
    reply.extend_from_slice(value);
    reply.extend_from_slice(b"\r\n");
    reply
}

/// Cache hits, answered on the loop: 60 GETs of 200 KB (12 MB) stopped
/// at about 21 replies until the client sent something more.
#[test]
fn a_pipeline_of_large_cache_hits_past_the_high_water_mark_is_answered_whole() {
    let redis = RedisServer::start();
    let value = vec![b'v'; 200_000];
    redis.set("big", &value);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    assert_eq!(client.call_args(&["GET", "big"]), bulk(&value));
    pipeline_rounds(&proxy, &["GET", "big"], &bulk(&value), (4, 3, 60));
}

/// A client that half-closes after its pipeline (`redis-cli < file`,
/// a script's `shutdown(SHUT_WR)`): the proxy answers all it sent, then
/// closes. The requests held back at the mark were dropped with the close.
#[test]
fn a_pipeline_past_the_high_water_mark_then_the_clients_end_is_answered_whole() {
    let redis = RedisServer::start();
    let value = vec![b'v'; 200_000];
    redis.set("big", &value);
    let proxy = InProcess::start(&redis, &[RESP]);
    let pipeline = resp_command(&[b"GET", b"big"]).repeat(60);
    for connection in 0..4 {
        let mut client = Wire::connect(proxy.resp.expect("RESP port"));
        assert_eq!(client.call_args(&["GET", "big"]), bulk(&value));
        client.send(&pipeline);
        client.stream.shutdown(Shutdown::Write).expect("half-close");
        for i in 0..60 {
            let reply = client.reply();
            assert!(
                reply == bulk(&value),
                "connection {connection} reply {i}: {} bytes, not the value",
                reply.len()
            );
        }
    }
}

/// Forwarded replies (GETRANGE with the reply cache off): batches of 128
/// requests whose replies (128 × 33 KB) are just over the mark, so the
/// loop stops after each batch; the next batch went out only when the
/// client sent more.
#[test]
fn a_pipeline_of_large_forwarded_replies_past_the_high_water_mark_is_answered_whole() {
    let redis = RedisServer::start();
    let value = vec![b'v'; 33_000];
    redis.set("big", &value);
    let proxy = InProcess::start(&redis, &[RESP, ("CACHE_COMMANDS", "none")]);
    pipeline_rounds(
        &proxy,
        &["GETRANGE", "big", "0", "-1"],
        &bulk(&value),
        (4, 3, 384),
    );
}

/// Over TLS (the transport reads until it would block, never marking a
/// short read drained): cache hits as above.
#[test]
fn a_pipeline_of_large_cache_hits_over_tls_is_answered_whole() {
    let dir = TempDir::new("drain-tls");
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let redis = RedisServer::start();
    let value = vec![b'v'; 200_000];
    redis.set("big", &value);
    let (cert, key) = (file("server.pem"), file("server.key"));
    let proxy = InProcess::start_at(
        &redis.url(),
        &[RESP, ("TLS_CERT_FILE", &cert), ("TLS_KEY_FILE", &key)],
    );
    let config = tls_client(&file("ca.pem"));
    let get = resp_command(&[b"GET", b"big"]);
    let expected = bulk(&value);
    for connection in 0..4 {
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = rustls::ClientConnection::new(Arc::clone(&config), name).expect("TLS");
        let socket = connect(proxy.resp.expect("RESP port"));
        let mut stream = rustls::StreamOwned::new(tls, socket);
        let mut buf = Vec::new();
        for (round, count) in [1, 60, 60, 60].into_iter().enumerate() {
            stream.write_all(&get.repeat(count)).expect("send");
            stream.flush().expect("send");
            for i in 0..count {
                let end = loop {
                    if let Some(end) = reply_end(&buf, 0) {
                        break end;
                    }
                    let mut chunk = [0u8; 64 * 1024];
                    let n = stream.read(&mut chunk).expect("a reply");
                    assert!(n > 0, "closed mid-reply");
                    buf.extend_from_slice(&chunk[..n]);
                };
                let reply: Vec<u8> = buf.drain(..end).collect();
                assert!(
                    reply == expected,
                    "connection {connection} round {round} reply {i}: {} bytes, not the value",
                    reply.len()
                );
            }
        }
    }
}
