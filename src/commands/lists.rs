//! Commands the proxy knows by name, where Redis's `COMMAND` reply does
//! not say enough: each list written once, for the table, the forwarder
//! and the RESP front end alike.

use super::keys::{self, KeyRef, NoKeys};

/// A key finder of the proxy's own: request `argv`'s keys into `out`.
pub(super) type Finder = fn(&[&[u8]], &mut Vec<KeyRef>) -> Result<(), NoKeys>;

/// The proxy's own key finder for the command named `name` (lower case),
/// used where its key specs cannot find every key: SORT and SORT_RO
/// (`STORE`), MIGRATE (`KEYS`). A command with one has key positions that
/// depend on more than its argument count.
pub(super) fn own_finder(name: &str) -> Option<Finder> {
    match name {
        "sort" | "sort_ro" => Some(keys::sort),
        "migrate" => Some(keys::migrate),
        _ => None,
    }
}

/// The commands that block only when their arguments say so (XREAD and
/// XREADGROUP, with `BLOCK`: see [`asks_to_block`]): the one class that
/// a name alone does not tell. A list, not a function, so a caller on the
/// hot path compares names inline.
pub const BLOCK_BY_ARGUMENTS: [&str; 2] = ["xread", "xreadgroup"];

/// Whether XREAD or XREADGROUP request `argv` (the name first) asks to
/// block: `BLOCK` among its options, before `STREAMS`.
pub fn asks_to_block(argv: &[&[u8]]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|arg| !arg.eq_ignore_ascii_case(b"streams"))
        .any(|arg| arg.eq_ignore_ascii_case(b"block"))
}

/// Commands refused whatever Redis's ACL says: they change, stop, stall or
/// watch the server itself rather than work on data, or would act on a
/// connection the proxy shares between clients (issue #21). Names as the
/// table keys them; docs/forwarding.md gives each one's reason. BGSAVE,
/// BGREWRITEAOF, LASTSAVE, SCRIPT/FUNCTION KILL and the like are forwarded:
/// they work in the background or on data, and Redis's ACL for the proxy's
/// user decides.
pub const REFUSED: &[&str] = &[
    // Stops or stalls the server.
    "shutdown",
    "save",
    "debug",
    "client|pause",
    "client|unpause",
    // Every command of every client, on a connection of its own.
    "monitor",
    // Turns the connection it is sent on into a Lua debugging session:
    // every later command on it, another client's on a shared connection
    // included, would be read as a debugger command (SYNC also stalls
    // the server for the session).
    "script|debug",
    // Replication and failover.
    "sync",
    "psync",
    "replconf",
    "replicaof",
    "slaveof",
    "failover",
    // The server's configuration, users and modules.
    "config|set",
    "config|rewrite",
    "config|resetstat",
    "module|load",
    "module|loadex",
    "module|unload",
    "acl|setuser",
    "acl|deluser",
    "acl|load",
    "acl|save",
    "slowlog|reset",
    "latency|reset",
    "pfdebug",
    "pfselftest",
    // The cluster's shape.
    "cluster|addslots",
    "cluster|addslotsrange",
    "cluster|delslots",
    "cluster|delslotsrange",
    "cluster|failover",
    "cluster|forget",
    "cluster|meet",
    "cluster|reset",
    "cluster|setslot",
    "cluster|replicate",
    "cluster|saveconfig",
    "cluster|bumpepoch",
    "cluster|set-config-epoch",
    "cluster|flushslots",
];

/// Commands about the client's own connection, which a proxy sharing
/// Redis connections must answer or emulate itself.
pub const CONNECTION_STATE: &[&str] = &[
    "select",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "hello",
    "auth",
    "client",
    "reset",
    "quit",
    "readonly",
    "readwrite",
    "asking",
];

/// Reads never cached: their replies depend on time, chance or server
/// state, not only on their keys' contents (issue #22), besides any
/// command Redis tips `nondeterministic_output`.
pub const NEVER_CACHED: &[&str] = &[
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "object",
    "randomkey",
    "srandmember",
    "hrandfield",
    "zrandmember",
    "scan",
    "sscan",
    "hscan",
    "zscan",
    "dbsize",
    "time",
    "keys",
    "eval_ro",
    "evalsha_ro",
    "fcall_ro",
    "touch",
    "lastsave",
    "memory",
    "debug",
    // BY and GET read keys named by the sorted values: not its keys.
    "sort_ro",
];

/// Subscribing and unsubscribing: the connection's mode changes.
pub(super) const SUBSCRIBING: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
];
