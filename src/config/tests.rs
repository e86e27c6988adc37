//! Configuration: defaults, every bad value named, and the README's table
//! kept true to `VARIABLES`.

use super::*;
use std::collections::HashMap;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults() {
    let cfg = config(&[]).expect("defaults are valid");
    assert_eq!(cfg.redis_url.as_str(), "redis://127.0.0.1:6379");
    assert_eq!(cfg.cache_expiry, Duration::from_secs(60));
    assert_eq!(cfg.cache_capacity.get(), 10_000);
    assert_eq!(cfg.cache_max_bytes, 256 << 20);
    assert_eq!(cfg.http_addr, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(cfg.max_clients.get(), 16);
    // Redis's default maxclients: an application with more connections
    // than 1024 works through the proxy as at Redis.
    assert_eq!(cfg.max_connections.get(), 10_000);
    assert_eq!(cfg.redis_timeout, Duration::from_millis(1000));
    assert_eq!(cfg.tracking_max_bytes, 64 << 20);
    // Never, as Redis's `timeout` (a client pointed at the proxy unchanged
    // must not be closed when idle); 0 is that, set or not.
    assert_eq!(cfg.client_idle_timeout, Duration::ZERO);
    let off = config(&[("CLIENT_IDLE_TIMEOUT_SECS", "0")]).expect("0: never");
    assert_eq!(off.client_idle_timeout, Duration::ZERO);
    let cfg = config(&[("TRACKING_TABLE_MAX_BYTES", " 1048576 ")]).expect("valid");
    assert_eq!(cfg.tracking_max_bytes, 1 << 20);
    assert!(cfg.deprecations.is_empty());
}

#[test]
fn max_clients_still_sets_the_workers_with_a_deprecation_warning() {
    let old = config(&[("MAX_CLIENTS", "4")]).expect("the old name");
    assert_eq!(old.max_clients.get(), 4);
    assert_eq!(
        old.deprecations,
        ["MAX_CLIENTS is deprecated: it is now called WORKERS"]
    );
    let both = config(&[("MAX_CLIENTS", "4"), ("WORKERS", "6")]).expect("both names");
    assert_eq!(both.max_clients.get(), 6);
    assert_eq!(
        both.deprecations,
        ["MAX_CLIENTS is ignored: WORKERS, its new name, is set too"]
    );
    let new = config(&[("WORKERS", "6")]).expect("the new name");
    assert_eq!((new.max_clients.get(), new.deprecations.len()), (6, 0));
}

#[test]
fn accepts_fractional_expiry_and_redis_urls() {
    let cfg = config(&[
        ("GLOBAL_CACHE_EXPIRY", "0.25"),
        ("REDIS_ADDRESS", "redis://user:secret@cache.internal:6390/2"),
    ])
    .expect("valid");
    assert_eq!(cfg.cache_expiry, Duration::from_millis(250));
    assert_eq!(cfg.redis_url.port(), Some(6390));
    assert!(!cfg.describe().contains("secret"));
    assert!(cfg.describe().contains("***"));
}

#[test]
fn rejects_bad_values_naming_the_variable() {
    for (name, value) in [
        ("GLOBAL_CACHE_EXPIRY", "0"),
        ("GLOBAL_CACHE_EXPIRY", "-1"),
        ("GLOBAL_CACHE_EXPIRY", "NaN"),
        ("GLOBAL_CACHE_EXPIRY", "inf"),
        ("GLOBAL_CACHE_EXPIRY", "1e300"),
        ("CACHE_CAPACITY", "0"),
        ("CACHE_CAPACITY", "ten"),
        ("CACHE_MAX_BYTES", "65535"),
        ("CACHE_MAX_BYTES", "1099511627777"),
        ("CACHE_MAX_BYTES", "256mb"),
        ("PROXY_PORT", "65536"),
        ("PROXY_HOST", "not an ip"),
        ("WORKERS", "0"),
        ("WORKERS", "5000"),
        ("MAX_CLIENTS", "0"),
        ("MAX_KEY_BYTES", "0"),
        ("INVALIDATION", "sometimes"),
        ("STALE_IF_ERROR_SECS", "-1"),
        ("METRICS_OPEN", "maybe"),
        ("INVALIDATION_PREFIXES", "a,,b"),
        ("INVALIDATION_PREFIXES", "user:,user:1"),
        ("INVALIDATION_PREFIXES", "a,b,a"),
        ("MAX_KEY_BYTES", "1048577"),
        ("RESP_MAX_REQUEST_BYTES", "2097151"),
        ("RESP_MAX_REQUEST_BYTES", "536870913"),
        ("RESP_MAX_REQUEST_BYTES", "64mb"),
        ("RESP_MAX_REPLY_BYTES", "2097151"),
        ("RESP_MAX_REPLY_BYTES", "4294967297"),
        ("REDIS_TIMEOUT_MS", "0"),
        ("REDIS_ADDRESS", "localhost"),
        ("REDIS_ADDRESS", "http://localhost:6379"),
        ("REDIS_TLS_CA", "/nonexistent/ca.pem"),
        ("REDIS_ADDRESS", "redis://localhost:6379/notadb"),
        ("REDIS_ADDRESS", ":6379"),
        ("REDIS_ADDRESS", "127.0.0.1:0"),
        ("REDIS_ADDRESS", "redis://localhost:0/1"),
    ] {
        let err = config(&[(name, value)]).expect_err(value);
        assert_eq!(err.variable, name, "{value}");
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn the_readme_table_lists_every_variable_with_its_default() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    for var in VARIABLES {
        let row = rows
            .iter()
            .find(|row| row.starts_with(&format!("| `{}` |", var.name)))
            .unwrap_or_else(|| panic!("README's configuration table lacks {}", var.name));
        let default = if var.default.is_empty() {
            "| (empty) |".to_owned()
        } else {
            format!("| `{}` |", var.default)
        };
        assert!(
            row.ends_with(&default),
            "README: {} should default to {default}",
            var.name
        );
    }
    // And nothing the code does not read (RUST_LOG is env_logger's).
    let section = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let name = row
            .trim_start_matches("| `")
            .split('`')
            .next()
            .unwrap_or_default();
        assert!(
            name == "RUST_LOG" || VARIABLES.iter().any(|v| v.name == name),
            "README documents {name}, which the code does not read"
        );
    }
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let help = help_text();
    for var in VARIABLES {
        assert!(help.contains(var.name) && help.contains(var.default));
    }
}

#[test]
fn redis_modes_take_their_addresses_and_name_what_is_missing() {
    let cluster = config(&[
        ("REDIS_MODE", "cluster"),
        ("REDIS_ADDRESS", "10.0.0.1:7000, redis://10.0.0.2:7001"),
    ])
    .expect("a cluster's seeds");
    assert_eq!(cluster.redis_nodes.len(), 2);
    assert_eq!(cluster.redis_url.port(), Some(7000));
    let named = |pairs: &[(&str, &str)]| config(pairs).err().map(|err| err.variable);
    assert_eq!(named(&[("REDIS_MODE", "swarm")]), Some("REDIS_MODE"));
    assert_eq!(
        named(&[("REDIS_ADDRESS", "a:1,b:2")]),
        Some("REDIS_ADDRESS"),
        "standalone takes one address"
    );
    assert_eq!(
        named(&[("REDIS_MODE", "cluster"), ("REDIS_ADDRESS", "a:1/3")]),
        Some("REDIS_ADDRESS"),
        "a cluster has db 0 only"
    );
    assert_eq!(
        named(&[("REDIS_MODE", "sentinel"), ("REDIS_ADDRESS", "s:26379")]),
        Some("REDIS_SENTINEL_MASTER")
    );
    let sentinel = config(&[
        ("REDIS_MODE", "sentinel"),
        ("REDIS_ADDRESS", "s1:26379,s2:26379"),
        ("REDIS_SENTINEL_MASTER", "mymaster"),
        ("REDIS_SENTINEL_PASSWORD", "hidden"),
    ])
    .expect("sentinels");
    assert_eq!(
        sentinel.sentinel.map(|s| s.master),
        Some("mymaster".to_owned())
    );
    assert_eq!(
        named(&[("TRACKING_TABLE_MAX_KEYS", "0")]),
        Some("TRACKING_TABLE_MAX_KEYS")
    );
    for bad in ["0", "1023", "1099511627777", "64MiB", "-1"] {
        assert_eq!(
            named(&[("TRACKING_TABLE_MAX_BYTES", bad)]),
            Some("TRACKING_TABLE_MAX_BYTES"),
            "{bad}"
        );
    }
}

#[test]
fn durations_under_a_millisecond_are_refused_naming_the_variable() {
    let durations = [
        "GLOBAL_CACHE_EXPIRY",
        "HTTP_IDLE_TIMEOUT_SECS",
        "CLIENT_IDLE_TIMEOUT_SECS",
        "SHUTDOWN_TIMEOUT_SECS",
        "STALE_IF_ERROR_SECS",
    ];
    for name in durations {
        // Each of these passed a "> 0" check and became 0 (or 1 ns).
        for value in ["0.0000000001", "1e-10", "0.000999"] {
            let err = config(&[(name, value)]).expect_err(value);
            assert_eq!(err.variable, name, "{value}");
            let message = err.to_string();
            assert!(
                message.contains(name) && message.contains("1 ms"),
                "{message}"
            );
        }
        let cfg = config(&[(name, "0.001")]).expect("1 ms is the least");
        let set = match name {
            "GLOBAL_CACHE_EXPIRY" => cfg.cache_expiry,
            "HTTP_IDLE_TIMEOUT_SECS" => cfg.http_idle_timeout,
            "CLIENT_IDLE_TIMEOUT_SECS" => cfg.client_idle_timeout,
            "SHUTDOWN_TIMEOUT_SECS" => cfg.shutdown_timeout,
            _ => cfg.stale_if_error,
        };
        assert_eq!(set, Duration::from_millis(1), "{name}");
    }
    // STALE_IF_ERROR_SECS's own 0 (never) still stands.
    assert_eq!(
        config(&[("STALE_IF_ERROR_SECS", "0")])
            .expect("0")
            .stale_if_error,
        Duration::ZERO
    );
}

#[test]
fn sentinel_settings_outside_sentinel_mode_are_warned_about() {
    let cfg = config(&[("REDIS_SENTINEL_MASTER", "mymaster")]).expect("valid");
    assert_eq!(
        cfg.deprecations,
        ["REDIS_SENTINEL_MASTER is ignored: REDIS_MODE is standalone, not sentinel"]
    );
    let cfg = config(&[
        ("REDIS_MODE", "sentinel"),
        ("REDIS_SENTINEL_MASTER", "mymaster"),
        ("REDIS_SENTINEL_PASSWORD", "pw"),
    ])
    .expect("valid");
    assert!(cfg.deprecations.is_empty(), "{:?}", cfg.deprecations);
}

#[test]
fn the_reported_version_is_redis_s_own_or_a_version_of_three_numbers() {
    let reported = |value: &str| config(&[("RESP_REPORTED_VERSION", value)]);
    assert_eq!(config(&[]).expect("defaults").reported_version, None);
    for own in ["redis", " REDIS "] {
        assert_eq!(reported(own).expect(own).reported_version, None);
    }
    for fixed in ["7.4.0", "6.2.14", "255.255.255"] {
        let cfg = reported(fixed).expect(fixed);
        assert_eq!(cfg.reported_version.as_deref(), Some(fixed));
    }
    for bad in [
        "",
        "7.4",
        "7.4.0.1",
        "v7.4.0",
        "7.4.x",
        "7..0",
        "7.4.0-rc1",
        "123456.0.0",
    ] {
        let err = reported(bad).expect_err(bad);
        assert_eq!(err.variable, "RESP_REPORTED_VERSION", "{bad}");
        assert!(err.to_string().contains("MAJOR.MINOR.PATCH"), "{err}");
    }
}

#[test]
fn forward_timeout_is_off_by_default_and_validated_like_redis_timeout() {
    // Off: a forwarded command waits as long as Redis takes, as with
    // Redis's own clients (REDIS_TIMEOUT_MS no longer bounds it).
    assert_eq!(config(&[]).expect("defaults").forward_timeout, None);
    let off = config(&[("FORWARD_TIMEOUT_MS", "0")]).expect("0: no timeout");
    assert_eq!(off.forward_timeout, None);
    let set =
        config(&[("FORWARD_TIMEOUT_MS", " 250 "), ("REDIS_TIMEOUT_MS", "40")]).expect("valid");
    assert_eq!(set.forward_timeout, Some(Duration::from_millis(250)));
    assert_eq!(set.redis_timeout, Duration::from_millis(40));
    let most = config(&[("FORWARD_TIMEOUT_MS", "3600000")]).expect("an hour");
    assert_eq!(most.forward_timeout, Some(Duration::from_secs(3600)));
    for value in ["-1", "3600001", "1.5", "1s", "ten", ""] {
        let err = config(&[("FORWARD_TIMEOUT_MS", value)]).expect_err(value);
        assert_eq!(err.variable, "FORWARD_TIMEOUT_MS", "{value}");
        assert!(err.to_string().contains("0 (no timeout)"), "{err}");
    }
}

/// TLS towards Redis: the client certificate both or neither, and all three
/// settings for `rediss://` only; a file that cannot be read, or a CA file
/// with no certificate in it, refused at start naming its variable.
#[test]
fn tls_to_redis_settings_that_cannot_work_are_refused_naming_the_variable() {
    let rediss = ("REDIS_ADDRESS", "rediss://localhost:6380");
    let plain = ("REDIS_ADDRESS", "redis://localhost:6379");
    let no_cert =
        std::env::temp_dir().join(format!("redis-proxy-no-cert-{}.pem", std::process::id()));
    std::fs::write(
        &no_cert,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write a PEM file without a certificate");
    let no_cert = no_cert.to_string_lossy().into_owned();
    let cert = ("REDIS_TLS_CERT_FILE", "/nonexistent/client.pem");
    let key = ("REDIS_TLS_KEY_FILE", "/nonexistent/client.key");
    for (pairs, named) in [
        (vec![rediss, cert], "REDIS_TLS_KEY_FILE"),
        (vec![rediss, key], "REDIS_TLS_CERT_FILE"),
        (vec![rediss, cert, key], "REDIS_TLS_CERT_FILE"),
        (vec![plain, cert, key], "REDIS_TLS_CERT_FILE"),
        (
            vec![plain, ("REDIS_TLS_CA", "/nonexistent/ca.pem")],
            "REDIS_TLS_CA",
        ),
        (
            vec![rediss, ("REDIS_TLS_CA", "/nonexistent/ca.pem")],
            "REDIS_TLS_CA",
        ),
        (
            vec![rediss, ("REDIS_TLS_CA", no_cert.as_str())],
            "REDIS_TLS_CA",
        ),
    ] {
        let err = config(&pairs).expect_err(named);
        assert_eq!(err.variable, named, "{pairs:?}: {err}");
    }
    let _ = std::fs::remove_file(&no_cert);
}
