//! `INFO [section ...]`: the proxy's own figures, under the names monitoring
//! tools (`redis-cli --stat`, redis-py's `info()`) read, each given its
//! honest proxy meaning: `used_memory` is the proxy's resident memory
//! (`cache_bytes` and `cache_max_bytes` what the cache's entries take and
//! CACHE_MAX_BYTES),
//! `blocked_clients` requests waiting for a WORKERS place, the keyspace
//! the entries the cache holds. Plus what client libraries read when they
//! connect (`redis_version`, `redis_mode`, `arch_bits`, `os`, `tcp_port`,
//! ioredis's `loading`, `role`, `cluster_enabled`), as the server the
//! clients see: a standalone master that loads nothing. Which figures are
//! whose: docs/forwarding.md.

use std::sync::OnceLock;

use std::fmt::Write as _;

use super::{Context, Outcome, Spec, COMMANDS};
use crate::metrics::{CommandFigures, Metrics};

/// `INFO [section ...]`.
pub const INFO: Spec = Spec {
    name: "info",
    arity: -1,
    flags: &[],
    keys: (0, 0, 0),
};

/// Every section, in the order `INFO` lists them (Redis 7.0's order).
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "invalidation",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Sections left out of `INFO` and `INFO default`, as Redis leaves them
/// out: asked for by name, or with `all` or `everything`.
const NOT_DEFAULT: &[&str] = &["commandstats"];

pub fn info(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let is = |arg: &[u8], name: &str| arg.eq_ignore_ascii_case(name.as_bytes());
    let wanted = |section: &str| {
        let default = !NOT_DEFAULT.contains(&section);
        (args.is_empty() && default)
            || args.iter().any(|arg| {
                is(arg, section)
                    || is(arg, "all")
                    || is(arg, "everything")
                    || (default && is(arg, "default"))
            })
    };
    let mut text = String::with_capacity(2048);
    for section in SECTIONS.iter().filter(|s| wanted(s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(&mut text, section, context);
    }
    super::clients::verbatim(context.replies, &text);
    Outcome::Ok
}

fn write_section(out: &mut String, section: &str, context: &Context<'_>) {
    let service = context.service;
    let metrics = service.metrics();
    let tracking = metrics.client_tracking();
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => {
            let uptime = metrics.uptime().as_secs();
            let port = context
                .peers
                .clients
                .local_addr(context.session.id)
                .map_or(0, |addr| addr.port());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_micros());
            let version = service.reported_version();
            write!(
                out,
                "# Server\r\nredis_version:{version}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:{}\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{port}\r\nserver_time_usec:{now}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nexecutable:{}\r\nconfig_file:\r\nredis_proxy_version:{}\r\n",
                os(),
                usize::BITS,
                std::process::id(),
                run_id(),
                uptime / 86_400,
                executable(),
                env!("CARGO_PKG_VERSION"),
            )
        }
        // The proxy loads and saves nothing (ioredis waits while `loading`).
        "persistence" => out.write_str("# Persistence\r\nloading:0\r\nasync_loading:0\r\n"),
        // To its clients the proxy is a master: it takes their writes.
        "replication" => out.write_str(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n",
        ),
        // Clients see one server, whatever REDIS_MODE: the proxy routes.
        "cluster" => out.write_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\n",
            context.peers.live,
            metrics.max_connections(),
            metrics.requests_queued().max(0),
            metrics.tracking_clients(),
        ),
        "memory" => {
            let rss = crate::metrics::resident_bytes();
            let [bytes, max_bytes] = metrics.cache_bytes();
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n",
                human(rss),
            );
            // Redis's own, as read when the link came up: they describe the
            // server that stores the data (queue libraries check the
            // policy). Left out, never made up, while unknown.
            if let Some(redis) = service.redis_max_memory() {
                let _ = write!(
                    out,
                    "maxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n",
                    redis.bytes,
                    human(redis.bytes),
                    redis.policy,
                );
            }
            write!(
                out,
                "cache_bytes:{bytes}\r\ncache_bytes_human:{}\r\ncache_max_bytes:{max_bytes}\r\ncache_max_bytes_human:{}\r\n",
                human(bytes),
                human(max_bytes),
            )
        }
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\nrejected_connections:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nevicted_keys:{}\r\nexpired_keys:{}\r\ntracking_total_keys:{}\r\ntracking_total_prefixes:{}\r\ntotal_error_replies:{}\r\nrequests_in_flight:{}\r\nrequests_queued:{}\r\n",
            metrics.resp_connections(),
            metrics.resp_commands(),
            metrics.ops_per_sec(),
            metrics.resp_rejections(),
            metrics.hits(),
            metrics.misses(),
            metrics.evictions(),
            metrics.expirations(),
            tracking[0],
            tracking[2],
            metrics.error_figures().0,
            metrics.requests_in_flight(),
            metrics.requests_queued(),
        ),
        "invalidation" => write!(
            out,
            "# Invalidation\r\ninvalidation_mode:{}\r\ninvalidation_link:{}\r\ninvalidations:{}\r\ntracking_table_bytes:{}\r\ntracking_changes_processed:{}\r\n",
            service.invalidation_mode(),
            service.link_state().name(),
            metrics.invalidations(),
            tracking[1],
            metrics.client_tracking_changes(),
        ),
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            write_commandstats(out, metrics);
            Ok(())
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (code, count) in metrics.error_figures().1 {
                let _ = write!(out, "errorstat_{code}:count={count}\r\n");
            }
            Ok(())
        }
        _ => {
            out.push_str("# Keyspace\r\n");
            // Every entry expires (GLOBAL_CACHE_EXPIRY); the cache keeps
            // each database's keys apart.
            for (db, keys) in service.entries_by_db() {
                let _ = write!(out, "db{db}:keys={keys},expires={keys},avg_ttl=0\r\n");
            }
            Ok(())
        }
    };
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`
/// for each command used so far, as Redis 7.0 writes them.
fn write_commandstats(out: &mut String, metrics: &Metrics) {
    let own = COMMANDS.iter().map(|(spec, _)| spec.name);
    for (name, figures) in metrics.commandstats(own) {
        write_command(out, &name, &figures);
    }
}

/// One `cmdstat_` line, for a command used (run or rejected) at least once.
fn write_command(out: &mut String, name: &str, figures: &CommandFigures) {
    if figures.calls == 0 && figures.rejected == 0 {
        return;
    }
    let per_call = if figures.calls == 0 {
        0.0
    } else {
        figures.usec as f64 / figures.calls as f64
    };
    let _ = write!(
        out,
        "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
        figures.calls, figures.usec, figures.rejected, figures.failed
    );
}

/// The system, as `uname -srm` says it (Redis's `os`), read once.
fn os() -> &'static str {
    static OS: OnceLock<String> = OnceLock::new();
    OS.get_or_init(|| {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .ok()
        };
        match (
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
        ) {
            (Some(kind), Some(release)) => {
                format!("{kind} {release} {}", std::env::consts::ARCH)
            }
            _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    })
}

/// This process's random 40-hex-digit name, as Redis's `run_id`: another
/// after every start, so a client can tell a restart.
fn run_id() -> &'static str {
    static RUN_ID: OnceLock<String> = OnceLock::new();
    RUN_ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new();
        let mut id = String::with_capacity(40);
        for part in 0..3u64 {
            let mut hasher = random.build_hasher();
            hasher.write_u64(part);
            hasher.write_u32(std::process::id());
            let _ = write!(id, "{:016x}", hasher.finish());
        }
        id.truncate(40);
        id
    })
}

/// The running binary's path (Redis's `executable`), read once.
fn executable() -> &'static str {
    static EXECUTABLE: OnceLock<String> = OnceLock::new();
    EXECUTABLE.get_or_init(|| {
        std::env::current_exe()
            .map(|path| path.display().to_string())
            .unwrap_or_default()
    })
}

/// Bytes as Redis's `bytesToHuman` writes them: `0B`, `1023B`, `1.50K`,
/// `1.00M`, `2.00G`, `1.00T`, `1.00P`, and plain bytes again from 1024 P.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    for (power, unit) in (1..).zip(UNITS) {
        if bytes < 1u64 << (10 * (power + 1)) {
            return format!("{:.2}{unit}", bytes as f64 / (1u64 << (10 * power)) as f64);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn bytes_are_written_as_redis_writes_them_for_humans() {
        for (bytes, text) in [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.00K"),
            (1536, "1.50K"),
            ((1 << 20) - 1, "1024.00K"),
            (1 << 20, "1.00M"),
            (100 << 20, "100.00M"),
            (3 << 30, "3.00G"),
            (1 << 40, "1.00T"),
            (5 << 50, "5.00P"),
            (1 << 60, "1152921504606846976B"),
            (u64::MAX, "18446744073709551615B"),
        ] {
            assert_eq!(human(bytes), text, "{bytes}");
        }
    }
}
