//! What tests of blocking commands and Pub/Sub poll at Redis (`INFO
//! clients`, `CLIENT LIST`), and the raw connection they use
//! ([`resp_wire::Wire`](super::resp_wire::Wire)).

use super::RedisServer;

pub use super::resp_wire::{show, Wire};

/// `field` of Redis's `INFO clients` (`blocked_clients`,
/// `connected_clients`, `pubsub_clients` where the version has it).
pub fn info_clients(redis: &RedisServer, field: &str) -> u64 {
    let info: String = redis.cmd(&["INFO", "clients"]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in INFO clients: {info}"))
}

/// The lines of Redis's `CLIENT LIST` that satisfy `what`.
pub fn client_list(redis: &RedisServer, what: impl Fn(&str) -> bool) -> Vec<String> {
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    list.lines()
        .filter(|line| what(line))
        .map(str::to_owned)
        .collect()
}
