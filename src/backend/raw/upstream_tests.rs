//! The event loop's connection on a real socket: a batch whose replies pass
//! the bound is refused alone, the rest of them dropped as they come
//! without being held, and the next batches' replies are taken exactly.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

use super::*;

/// An [`Upstream`] on one end of a loopback socket (no handshake), allowed
/// `max_reply` bytes per batch, and the other end, playing Redis.
fn pair(max_reply: usize) -> (Upstream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    client.set_nonblocking(true).expect("nonblocking");
    let upstream = Upstream::with_socket(mio::net::TcpStream::from_std(client), max_reply, 0);
    (upstream, server)
}

/// Drives `upstream` as the event loop does (read what came, take, compact)
/// until the batches of `counts` replies are all taken; returns what each
/// was given (a refused one: "refused" and the replies before the bound),
/// and the most the connection held between reads.
fn drive(upstream: &mut Upstream, counts: &[usize]) -> (Vec<String>, usize) {
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(upstream.source(), Token(0), Interest::READABLE)
        .expect("register");
    let mut events = Events::with_capacity(4);
    let mut chunk = vec![0; 16 * 1024];
    let (mut taken, mut most) = (Vec::new(), 0);
    while taken.len() < counts.len() {
        let empty = upstream.read(&mut chunk).expect("read");
        while let Some(&count) = counts.get(taken.len()) {
            let text = match upstream.take(count).expect("RESP") {
                None => break,
                Some(Taken::Replies(replies, _)) => String::from_utf8_lossy(replies).into_owned(),
                Some(Taken::TooLarge(answered)) => {
                    format!("refused {}", String::from_utf8_lossy(answered))
                }
            };
            taken.push(text);
        }
        upstream.compact().expect("RESP");
        most = most.max(upstream.input.capacity());
        if empty && taken.len() < counts.len() {
            poll.poll(&mut events, Some(Duration::from_secs(20)))
                .expect("poll");
            assert!(!events.is_empty(), "no reply came: {taken:?}");
        }
    }
    (taken, most)
}

#[test]
fn a_batch_past_the_bound_is_refused_alone_and_the_next_get_theirs() {
    let (mut upstream, mut redis) = pair(64 * 1024);
    let writer = std::thread::spawn(move || {
        // Batch 1: a reply, then a bulk of 8 MiB, then one more.
        let mut replies = b"+OK\r\n$8388608\r\n".to_vec();
        replies.resize(replies.len() + 8 * 1024 * 1024, b'v');
        replies.extend_from_slice(b"\r\n:3\r\n");
        // Batch 2: its exact replies.
        replies.extend_from_slice(b":7\r\n$2\r\nhi\r\n");
        // Batch 3: an array of 100,000 small elements, nested (RESP3).
        replies.extend_from_slice(b"*100000\r\n");
        for _ in 0..100_000 {
            replies.extend_from_slice(b"%1\r\n+k\r\n,1.5\r\n");
        }
        // Batch 4: and after it, again exact.
        replies.extend_from_slice(b"-ERR x\r\n_\r\n");
        redis.write_all(&replies).expect("write");
        redis
    });
    let (taken, most) = drive(&mut upstream, &[3, 2, 1, 2]);
    let expected = [
        "refused +OK\r\n",
        ":7\r\n$2\r\nhi\r\n",
        "refused ",
        "-ERR x\r\n_\r\n",
    ];
    assert_eq!(taken, expected);
    assert!(most <= 2 * READ_BUDGET, "held {most} bytes");
    assert!(!upstream.has_unclaimed());
    drop(writer.join().expect("writer"));
}

#[test]
fn bytes_that_are_not_resp_in_a_refused_reply_still_fail_the_connection() {
    let (mut upstream, mut redis) = pair(1024);
    let mut replies = b"*2\r\n$2000\r\n".to_vec();
    replies.resize(replies.len() + 2000, b'v');
    replies.extend_from_slice(b"\r\n?what\r\n");
    redis.write_all(&replies).expect("write");
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(upstream.source(), Token(0), Interest::READABLE)
        .expect("register");
    let (mut events, mut chunk) = (Events::with_capacity(4), vec![0; 16 * 1024]);
    let mut refused = false;
    let failed = loop {
        poll.poll(&mut events, Some(Duration::from_secs(20)))
            .expect("poll");
        assert!(!events.is_empty(), "no reply came");
        upstream.read(&mut chunk).expect("read");
        if !refused {
            match upstream.take(1) {
                Ok(Some(Taken::TooLarge(b""))) => refused = true,
                Ok(None) => continue,
                other => panic!("{other:?}"),
            }
        }
        if let Err(err) = upstream.compact() {
            break err;
        }
    };
    assert!(
        failed.to_string().contains("unknown reply type"),
        "{failed}"
    );
}
