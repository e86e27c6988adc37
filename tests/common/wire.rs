//! What tests of blocking commands and Pub/Sub poll at Redis (`INFO
//! clients`, `CLIENT LIST`), and the raw connection they use
//! ([`resp_wire::Wire`](super::resp_wire::Wire)).

use std::net::SocketAddr;

use super::info::{client_lines, info_number};
use super::{eventually, RedisServer};

pub use super::resp_wire::{show, Wire};

/// `field` of Redis's `INFO clients` (`blocked_clients`,
/// `connected_clients`, `pubsub_clients` where the version has it).
pub fn info_clients(redis: &RedisServer, field: &str) -> u64 {
    let info: String = redis.cmd(&["INFO", "clients"]);
    info_number(&info, field)
}

/// The lines of Redis's `CLIENT LIST` that satisfy `what`.
pub fn client_list(redis: &RedisServer, what: impl Fn(&str) -> bool) -> Vec<String> {
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    client_lines(&list, what)
}

/// Writes through the proxy's RESP port at `proxy` until the event loop's
/// own connection for `protocol` carries them: until it is open, forwarded
/// commands take the workers' path, on pooled connections (which the
/// caller may not want reused, or opened while Redis is busy).
pub fn loop_carries_writes(redis: &RedisServer, proxy: SocketAddr, protocol: u8) {
    let mut writer = Wire::open_with(proxy, protocol);
    let resp = format!("resp={protocol}");
    eventually("the event loop's connection to carry a SET", || {
        assert_eq!(writer.call_args(&["SET", "warm", "up"]), b"+OK\r\n");
        let on_loop = client_list(redis, |line| {
            line.contains("name=redis-proxy-loop ")
                && line.contains(" cmd=set ")
                && line.split_whitespace().any(|field| field == resp)
        });
        (!on_loop.is_empty()).then_some(())
    });
}
