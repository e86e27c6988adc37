//! A RESP client that leaves is closed, and what it held is let go, however
//! its leaving reaches the proxy: its last bytes and its close (FIN or RST)
//! in one wake-up of the loop (the proxy is stopped with SIGSTOP while they
//! arrive, so they wait in its socket together), or a close behind more
//! input than a blocked client's connection keeps (`INPUT_KEEP`, 64 KiB),
//! which the loop no longer reads. Before, the first was never closed (a
//! short read was taken to mean the socket was empty, and with
//! edge-triggered polling no event came for the close queued behind it):
//! its descriptor and `MAX_CONNECTIONS` place leaked, and a blocked one's
//! `BLPOP` stayed at Redis, popping the next element for a client that was
//! gone; the second was never seen leaving at all.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::sentinel::redis_pid;
use crate::common::wire::{client_list, info_clients, show, Wire};
use crate::common::{eventually, read_until_closed, Proxy, RedisServer};

/// /proc/net/tcp's state of a connection neither end has closed.
const ESTABLISHED: u8 = 0x01;
/// /proc/net/tcp's state of an end that has read (been sent) the other's FIN.
const CLOSE_WAIT: u8 = 0x08;

const CONNECTIONS: &str = "redis_proxy_connections{protocol=\"resp\"}";

/// How a client leaves.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// `close()`: a FIN.
    Fin,
    /// `close()` with `SO_LINGER` 0: an RST.
    Rst,
}

/// Redis and the real proxy (a process of its own, to stop) in front.
fn start() -> (RedisServer, Proxy) {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    (redis, proxy)
}

/// A process of the test's (the proxy, Redis) stopped (SIGSTOP, every
/// thread of it seen stopped in /proc), continued (SIGCONT) when dropped.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        signal(pid, "STOP");
        let stopped = Stopped(pid);
        eventually("every thread of the process stopped", || {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
            tasks
                .filter_map(Result::ok)
                .all(|task| {
                    let stat =
                        std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                    // The state follows the parenthesised name.
                    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
                    matches!(state, Some("T" | "t"))
                })
                .then_some(())
        });
        stopped
    }
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// The kernel's state of the proxy's end of `client`'s connection (as in
/// /proc/net/tcp: [`ESTABLISHED`], [`CLOSE_WAIT`] once the client's FIN is
/// in), or None once it is gone from the table (reset, or closed).
fn proxy_side_state(proxy_port: u16, client_port: u16) -> Option<u8> {
    tcp_entry(proxy_port, client_port).map(|(state, _)| state)
}

/// The state and the bytes not yet read of the local end of a loopback
/// connection from port `local` to port `remote`, from /proc/net/tcp.
fn tcp_entry(local: u16, remote: u16) -> Option<(u8, u64)> {
    let hex = |port: u16| format!(":{port:04X}");
    let (local, remote) = (hex(local), hex(remote));
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields.get(1)?.ends_with(&local) || !fields.get(2)?.ends_with(&remote) {
                return None;
            }
            let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            let (_, unread) = fields.get(4)?.split_once(':')?;
            Some((state, u64::from_str_radix(unread, 16).ok()?))
        })
}

/// Sends `bytes` on `stream` and leaves as `leave` says; returns once the
/// proxy's kernel holds both (the proxy itself may be stopped).
fn send_and_leave(stream: TcpStream, proxy: SocketAddr, bytes: &[u8], leave: Leave) {
    use std::io::Write;
    let client_port = stream.local_addr().expect("local address").port();
    let mut stream = stream;
    stream.write_all(bytes).expect("send");
    if let Leave::Rst = leave {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
    }
    drop(stream);
    eventually(&format!("the proxy's kernel to hold the {leave:?}"), || {
        let state = proxy_side_state(proxy.port(), client_port);
        match leave {
            // CLOSE_WAIT (or, the proxy running, closing or closed).
            Leave::Fin => (state != Some(ESTABLISHED)).then_some(()),
            Leave::Rst => state.is_none().then_some(()),
        }
    });
}

/// Waits until Redis counts `n` blocked clients.
fn wait_blocked(redis: &RedisServer, n: u64) {
    eventually(&format!("{n} blocked clients at Redis"), || {
        (info_clients(redis, "blocked_clients") == n).then_some(())
    });
}

/// Waits until the proxy counts `n` RESP connections.
fn wait_connections(proxy: &Proxy, n: f64) {
    eventually(&format!("{n} RESP connections at the proxy"), || {
        (proxy.metric(CONNECTIONS) == n).then_some(())
    });
}

/// A list left alone by any blocked client: an element pushed now stays.
fn push_stays(redis: &RedisServer, list: &str) {
    assert_eq!(redis.cmd::<i64>(&["RPUSH", list, "job"]), 1);
    assert_eq!(
        redis.cmd::<i64>(&["LLEN", list]),
        1,
        "{list} popped for a gone client"
    );
}

#[test]
fn a_client_whose_partial_request_and_close_come_in_one_wake_up_is_closed() {
    let (_redis, proxy) = start();
    for leave in [Leave::Fin, Leave::Rst] {
        let clients: Vec<Wire> = (0..5).map(|_| Wire::connect(proxy.resp_addr())).collect();
        wait_connections(&proxy, 5.0);
        let stopped = Stopped::new(proxy.pid());
        for client in clients {
            send_and_leave(
                client.stream,
                proxy.resp_addr(),
                b"*2\r\n$3\r\nGET\r\n$1\r\nk",
                leave,
            );
        }
        drop(stopped);
        wait_connections(&proxy, 0.0);
    }
}

#[test]
fn a_pipeline_and_a_half_close_in_one_wake_up_are_answered_then_closed() {
    let (_redis, proxy) = start();
    let mut wire = Wire::connect(proxy.resp_addr());
    wait_connections(&proxy, 1.0);
    let stopped = Stopped::new(proxy.pid());
    wire.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n");
    let client_port = wire.stream.local_addr().expect("local address").port();
    wire.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    eventually("the proxy's kernel to hold the FIN", || {
        (proxy_side_state(proxy.resp_addr().port(), client_port) != Some(ESTABLISHED)).then_some(())
    });
    drop(stopped);
    let rest = read_until_closed(&mut wire.stream);
    assert_eq!(show(&rest), show(b"+OK\r\n$1\r\nv\r\n+PONG\r\n"));
    wait_connections(&proxy, 0.0);
}

#[test]
fn a_blocked_client_whose_last_bytes_and_close_come_in_one_wake_up_lets_its_blpop_go() {
    let (redis, proxy) = start();
    for leave in [Leave::Fin, Leave::Rst] {
        let list = format!("jobs-{leave:?}");
        let mut blocked = Wire::connect(proxy.resp_addr());
        blocked.send_args(&["BLPOP", &list, "0"]);
        wait_blocked(&redis, 1);
        let stopped = Stopped::new(proxy.pid());
        send_and_leave(
            blocked.stream,
            proxy.resp_addr(),
            b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI",
            leave,
        );
        drop(stopped);
        wait_blocked(&redis, 0);
        push_stays(&redis, &list);
        wait_connections(&proxy, 0.0);
    }
}

#[test]
fn a_subscriber_whose_last_bytes_and_close_come_in_one_wake_up_is_unsubscribed() {
    let (redis, proxy) = start();
    for leave in [Leave::Fin, Leave::Rst] {
        let channel = format!("news-{leave:?}");
        let mut subscriber = Wire::connect(proxy.resp_addr());
        let confirmed = subscriber.call_args(&["SUBSCRIBE", &channel]);
        assert!(
            show(&confirmed).contains("subscribe"),
            "{}",
            show(&confirmed)
        );
        let stopped = Stopped::new(proxy.pid());
        send_and_leave(
            subscriber.stream,
            proxy.resp_addr(),
            b"*1\r\n$4\r\nPI",
            leave,
        );
        drop(stopped);
        eventually(&format!("{channel} to have no subscriber at Redis"), || {
            let (_, numsub): (String, i64) = redis.cmd(&["PUBSUB", "NUMSUB", &channel]);
            (numsub == 0).then_some(())
        });
        wait_connections(&proxy, 0.0);
    }
}

#[test]
fn a_client_in_multi_whose_last_bytes_and_close_come_in_one_wake_up_lets_its_connection_go() {
    let (redis, proxy) = start();
    let in_multi =
        |redis: &RedisServer| client_list(redis, |line| line.contains(" flags=x ")).len();
    for leave in [Leave::Fin, Leave::Rst] {
        let mut client = Wire::connect(proxy.resp_addr());
        assert_eq!(client.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(client.call_args(&["SET", "k", "v"]), b"+QUEUED\r\n");
        assert_eq!(in_multi(&redis), 1, "the transaction's connection at Redis");
        let stopped = Stopped::new(proxy.pid());
        send_and_leave(client.stream, proxy.resp_addr(), b"*1\r\n$4\r\nEX", leave);
        drop(stopped);
        eventually(&format!("no transaction left at Redis ({leave:?})"), || {
            (in_multi(&redis) == 0).then_some(())
        });
        wait_connections(&proxy, 0.0);
        assert_eq!(redis.cmd::<Option<String>>(&["GET", "k"]), None);
    }
}

#[test]
fn a_blocked_client_that_pipelined_past_what_is_kept_and_left_lets_its_blpop_go() {
    let (redis, proxy) = start();
    // 100,000 bytes of PINGs behind the BLPOP: past the 64 KiB a blocked
    // client's connection keeps, so the loop stops reading it before its
    // close (no stop needed: this happens every time).
    let pings = b"*1\r\n$4\r\nPING\r\n".repeat(100_000 / 14);
    for leave in [Leave::Fin, Leave::Rst] {
        let list = format!("queue-{leave:?}");
        let mut blocked = Wire::connect(proxy.resp_addr());
        blocked.send_args(&["BLPOP", &list, "0"]);
        wait_blocked(&redis, 1);
        send_and_leave(blocked.stream, proxy.resp_addr(), &pings, leave);
        wait_blocked(&redis, 0);
        push_stays(&redis, &list);
        wait_connections(&proxy, 0.0);
    }
}

/// The same for the loop's own connection to Redis: Redis answers the
/// last batch and closes the connection (`CLIENT KILL` here) while the
/// proxy is stopped, so the reply and the end come in one wake-up. The end
/// is read with the reply, so the next batch goes on a new connection
/// rather than fail on the closed one.
#[test]
fn redis_closing_the_loops_connection_behind_its_last_reply_fails_no_later_request() {
    let (redis, proxy) = start();
    let mut client = Wire::connect(proxy.resp_addr());
    let link = eventually("the loop's connection to Redis", || {
        assert_eq!(client.call_args(&["SET", "a", "1"]), b"+OK\r\n");
        client_list(&redis, |line| line.contains(" name=redis-proxy-loop ")).pop()
    });
    let field = |name: &str| {
        link.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .expect("a CLIENT LIST field")
            .to_owned()
    };
    let id = field("id=");
    let addr = field("addr=");
    let (_, port) = addr.rsplit_once(':').expect("host:port");
    let link_port: u16 = port.parse().expect("a port");
    // The SET waits in Redis's socket, then runs once the proxy is stopped.
    let redis_stopped = Stopped::new(redis_pid(&redis));
    client.send_args(&["SET", "k", "v"]);
    eventually("the SET in Redis's socket", || {
        tcp_entry(redis.port(), link_port)
            .is_some_and(|(_, unread)| unread > 0)
            .then_some(())
    });
    let proxy_stopped = Stopped::new(proxy.pid());
    drop(redis_stopped);
    eventually("the SET run", || {
        (redis.cmd::<Option<String>>(&["GET", "k"]).as_deref() == Some("v")).then_some(())
    });
    assert_eq!(redis.cmd::<i64>(&["CLIENT", "KILL", "ID", &id]), 1);
    eventually(
        "the proxy's kernel to hold the reply and Redis's FIN",
        || {
            let entry = tcp_entry(link_port, redis.port());
            // `+OK` unread: its 5 bytes, and the FIN's sequence number.
            (entry == Some((CLOSE_WAIT, 6))).then_some(())
        },
    );
    drop(proxy_stopped);
    assert_eq!(show(&client.reply()), show(b"+OK\r\n"));
    assert_eq!(
        show(&client.call_args(&["SET", "k2", "v2"])),
        show(b"+OK\r\n")
    );
}
