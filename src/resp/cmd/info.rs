//! `INFO [section ...]`: the proxy's own figures, under the names monitoring
//! tools (`redis-cli --stat`, redis-py's `info()`) read, each given its
//! honest proxy meaning: `used_memory` is the proxy's resident memory,
//! `blocked_clients` requests waiting for a MAX_CLIENTS place, the keyspace
//! the entries the cache holds.

use std::fmt::Write as _;

use super::connection::REDIS_VERSION;
use super::{Context, Outcome, Spec};

/// `INFO [section ...]`.
pub const INFO: Spec = Spec {
    name: "info",
    arity: -1,
    flags: &[],
    keys: (0, 0, 0),
};

/// Every section, in the order `INFO` lists them; all are in the default set.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "stats",
    "invalidation",
    "keyspace",
];

pub fn info(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let wanted = |section: &str| {
        args.is_empty()
            || args.iter().any(|arg| {
                arg.eq_ignore_ascii_case(section.as_bytes())
                    || [&b"default"[..], b"all", b"everything"]
                        .iter()
                        .any(|all| arg.eq_ignore_ascii_case(all))
            })
    };
    let mut text = String::with_capacity(1024);
    for section in SECTIONS.iter().filter(|s| wanted(s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(&mut text, section, context);
    }
    context.replies.bulk(text.as_bytes());
    Outcome::Ok
}

fn write_section(out: &mut String, section: &str, context: &Context<'_>) {
    let service = context.service;
    let metrics = service.metrics();
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_proxy_version:{}\r\nredis_mode:standalone\r\nprocess_id:{}\r\nuptime_in_seconds:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            metrics.uptime().as_secs(),
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\n",
            context.peers.live,
            metrics.requests_queued().max(0),
        ),
        "memory" => {
            let rss = crate::metrics::resident_bytes();
            write!(
                out,
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n",
                human(rss)
            )
        }
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nevicted_keys:{}\r\nexpired_keys:{}\r\nrequests_in_flight:{}\r\nrequests_queued:{}\r\n",
            metrics.resp_connections(),
            metrics.resp_commands(),
            metrics.ops_per_sec(),
            metrics.hits(),
            metrics.misses(),
            metrics.evictions(),
            metrics.expirations(),
            metrics.requests_in_flight(),
            metrics.requests_queued(),
        ),
        "invalidation" => write!(
            out,
            "# Invalidation\r\ninvalidation_mode:{}\r\ninvalidation_link:{}\r\ninvalidations:{}\r\n",
            service.invalidation_mode(),
            service.link_state().name(),
            metrics.invalidations(),
        ),
        _ => {
            out.push_str("# Keyspace\r\n");
            let keys = metrics.entries();
            if keys > 0 {
                // Every entry expires (GLOBAL_CACHE_EXPIRY).
                let _ = write!(out, "db0:keys={keys},expires={keys},avg_ttl=0\r\n");
            }
            Ok(())
        }
    };
}

/// Bytes as Redis writes them for humans: `1.50M`.
fn human(bytes: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}
