//! Regression test for vendor/tiny_http patch 1: keep-alive connections that
//! arrive together each get a thread, so none waits for another to close.

use std::net::TcpStream;

use crate::common::{eventually, HttpConnection, Proxy, RedisServer, PATIENCE};

#[test]
fn fifty_keep_alive_connections_opened_at_once_are_all_answered() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = Proxy::start(&redis, &[]);
    // Open all fifty before any request, as a burst of browsers would.
    let mut conns: Vec<HttpConnection> = (0..50)
        .map(|_| {
            let stream = TcpStream::connect(proxy.addr).expect("connect");
            stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
            HttpConnection::new(stream)
        })
        .collect();
    for conn in &mut conns {
        conn.send("GET", "/proxy?key=k", &[]).expect("send");
    }
    // All fifty are answered while every connection stays open (keep-alive)
    // and unread: a connection with no thread would never be read.
    eventually("all fifty requests to be answered", || {
        (proxy.reads() >= 50.0).then_some(())
    });
    for (i, conn) in conns.iter_mut().enumerate() {
        let reply = conn
            .read_reply(false)
            .unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        assert_eq!(reply.body, b"v");
    }
    // And each can go on being used.
    for conn in &mut conns {
        assert_eq!(conn.get("/proxy?key=k").body, b"v");
    }
    // A burst of connections is ordinary load: nothing in it is an error.
    assert_eq!(proxy.warnings(), Vec::<String>::new(), "{}", proxy.log());
}

/// Issue #20: an idle HTTP worker blocks until a request comes or the drain
/// wakes it, instead of waking every 50 ms to look at the drain flag (a
/// timed wait that also read the clock on every request). Counted from
/// /proc: the workers' voluntary context switches while nothing is asked.
#[test]
fn idle_http_workers_are_not_woken() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = Proxy::start(&redis, &[("WORKERS", "4")]);
    let mut conn = HttpConnection::connect(proxy.addr);
    assert_eq!(conn.get("/proxy?key=k").body, b"v");
    // The worker that answered goes back to wait once the answer is out.
    eventually("every worker to wait for a request", || {
        worker_states(proxy.pid())
            .iter()
            .all(|state| state.starts_with('S'))
            .then_some(())
    });
    let before = worker_switches(proxy.pid());
    assert_eq!(before.len(), 4, "{before:?}");
    // Nothing to poll for: what is checked is that nothing happens. The
    // timed wait woke each worker about 6 times in this while.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(worker_switches(proxy.pid()), before);
}

/// Each `http-worker-N` thread's voluntary context switches so far.
fn worker_switches(pid: u32) -> Vec<(String, u64)> {
    worker_status(pid, "voluntary_ctxt_switches:")
        .into_iter()
        .map(|(name, n)| (name, n.parse().expect("a count")))
        .collect()
}

/// Each `http-worker-N` thread's state (`S (sleeping)`, `R (running)`).
fn worker_states(pid: u32) -> Vec<String> {
    worker_status(pid, "State:")
        .into_iter()
        .map(|(_, state)| state)
        .collect()
}

/// Each `http-worker-N` thread's name and its `field` in /proc, by name.
fn worker_status(pid: u32, field: &str) -> Vec<(String, String)> {
    let mut workers = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc") {
        let path = task.expect("task").path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !name.starts_with("http-worker") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .expect(field);
        workers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    workers.sort();
    workers
}
