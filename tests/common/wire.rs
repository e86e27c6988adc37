//! What tests of blocking commands and Pub/Sub poll at Redis (`INFO
//! clients`, `CLIENT LIST`), and the raw connection they use
//! ([`resp_wire::Wire`](super::resp_wire::Wire)).

use super::info::{client_lines, info_number};
use super::RedisServer;

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
