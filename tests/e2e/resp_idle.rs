//! Idle RESP connections as Redis treats them: `CLIENT_IDLE_TIMEOUT_SECS`
//! is off by default (0, as Redis's `timeout`), its clock restarts when a
//! reply is written (a blocking command that outlasted it is not cut off
//! after its reply), and TCP keepalive, on for every accepted client as
//! Redis's `tcp-keepalive`, is what finds a dead peer instead.
//! (`hostile::idle_resp_connections_are_closed`: a timeout that is set
//! still closes an idle connection.)

use std::net::SocketAddr;

use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, read_until_closed, InProcess, RedisServer};

/// The proxy's own `CLIENT LIST` line for the client named `name`, if it
/// is still open, asked on `observer`.
fn proxy_client(observer: &mut Wire, name: &str) -> Option<String> {
    let list = String::from_utf8(observer.call_args(&["CLIENT", "LIST"])).expect("text");
    let named = format!(" name={name} ");
    list.lines()
        .find(|line| line.contains(&named))
        .map(str::to_owned)
}

/// A connection that gave a protocol error and keeps its end open: the
/// proxy shuts its write side at once, and only the loop's sweep closes it,
/// `LINGER` (1 s) later. Its line leaving `CLIENT LIST` shows a sweep ran
/// after everything done before it.
fn lingering(addr: SocketAddr) -> Wire {
    let mut wire = Wire::connect(addr);
    assert_eq!(
        wire.call_args(&["CLIENT", "SETNAME", "lingerer"]),
        b"+OK\r\n"
    );
    wire.send(b"*1\r\n$x\r\n");
    let answer = read_until_closed(&mut wire.stream);
    assert!(
        show(&answer).starts_with("-ERR Protocol error"),
        "{}",
        show(&answer)
    );
    wire
}

#[test]
fn client_idle_timeout_0_keeps_an_idle_connection_through_the_sweep() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(
        &redis,
        &[("RESP_PORT", "auto"), ("CLIENT_IDLE_TIMEOUT_SECS", "0")],
    );
    let mut idle = Wire::connect(proxy.resp_addr());
    assert_eq!(idle.call_args(&["CLIENT", "SETNAME", "idler"]), b"+OK\r\n");
    let mut observer = Wire::connect(proxy.resp_addr());
    // A sweep after `idle` went quiet: with a timeout of 0 read as "0 s",
    // it would close `idle` (idle >= 0) with the lingerer.
    let _lingerer = lingering(proxy.resp_addr());
    eventually("the sweep to close the lingering connection", || {
        proxy_client(&mut observer, "lingerer")
            .is_none()
            .then_some(())
    });
    assert!(
        proxy_client(&mut observer, "idler").is_some(),
        "idler closed"
    );
    assert_eq!(idle.call_args(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_blpop_longer_than_the_idle_timeout_is_not_cut_off_after_its_reply() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(
        &redis,
        &[("RESP_PORT", "auto"), ("CLIENT_IDLE_TIMEOUT_SECS", "2")],
    );
    let mut blocked = Wire::connect(proxy.resp_addr());
    assert_eq!(
        blocked.call_args(&["CLIENT", "SETNAME", "blocker"]),
        b"+OK\r\n"
    );
    // Redis's own timeout ends it, 3 s on: longer than the proxy's 2 s.
    assert_eq!(
        show(&blocked.call_args(&["BLPOP", "nothing-here", "3"])),
        show(b"*-1\r\n")
    );
    // The next sweep sees the client's idle clock restarted by the reply
    // (its `CLIENT LIST` idle back to 0) and keeps it; before, its clock
    // ran from the BLPOP and that sweep closed it.
    let mut observer = Wire::connect(proxy.resp_addr());
    let line = eventually("a sweep after the reply", || {
        match proxy_client(&mut observer, "blocker") {
            Some(line) if line.contains(" idle=0 ") => Some(Some(line)),
            Some(_) => None,
            None => Some(None),
        }
    });
    assert!(line.is_some(), "closed after its reply");
    assert_eq!(blocked.call_args(&["PING"]), b"+PONG\r\n");
}

/// The kernel's `/proc/net/tcp` line of the proxy's end of the connection
/// from the local port `client` to the proxy's `port`: (timer kind, when
/// it expires, in USER_HZ ticks).
fn server_timer(port: u16, client: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let (local, remote) = (format!(":{port:04X}"), format!(":{client:04X}"));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ours = fields.get(1)?.ends_with(&local) && fields.get(2)?.ends_with(&remote);
        let (kind, when) = fields.get(5)?.split_once(':')?;
        ours.then(|| {
            let kind = u32::from_str_radix(kind, 16).expect("timer kind");
            (kind, u64::from_str_radix(when, 16).expect("timer"))
        })
    })
}

#[test]
fn accepted_resp_sockets_have_tcp_keepalive_as_redis_tcp_keepalive_300() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut client = Wire::connect(proxy.resp_addr());
    assert_eq!(client.call_args(&["PING"]), b"+PONG\r\n");
    let (port, local) = (
        proxy.resp_addr().port(),
        client.stream.local_addr().expect("local address").port(),
    );
    // Timer kind 2 on an established socket is its keepalive timer (1 and
    // 4, retransmission and window probes, pass once the PONG is acked;
    // 0 is no timer: no keepalive).
    let (kind, when) = eventually("the proxy's socket to settle", || {
        server_timer(port, local).filter(|(kind, _)| matches!(kind, 0 | 2))
    });
    assert_eq!(kind, 2, "no keepalive timer on the proxy's socket");
    // Armed for 300 s of silence (USER_HZ is 100): not the kernel's
    // default 2 hours.
    assert!((200 * 100..=300 * 100).contains(&when), "{when} ticks");
}
