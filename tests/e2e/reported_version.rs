//! What the proxy tells RESP clients about the Redis behind it
//! (docs/forwarding.md, "The version reported" and "Whose figures"):
//! `HELLO` and `INFO` report the backing Redis's own version, or the one
//! RESP_REPORTED_VERSION fixes; `INFO memory` passes on Redis's
//! `maxmemory`, `maxmemory_human` and `maxmemory_policy`, as Redis writes
//! them. Compared with what the real redis-server says, never with a
//! version written here.

use std::process::{Command, Stdio};

use crate::common::{
    cluster::Cluster, eventually, proxy_binary, Endpoints, InProcess, RedisServer, TempDir,
};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

fn client(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to the proxy's RESP port")
}

/// `INFO <section>` through the proxy.
fn info(proxy: &Endpoints, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query(&mut client(&proxy.resp_url()))
        .expect("INFO through the proxy")
}

/// The value of `name:` in an INFO text, if there.
fn field(info: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(|value| value.trim().to_owned())
}

/// The `version` and `proxy` fields of `HELLO 3` through the proxy.
fn hello(proxy: &Endpoints) -> (String, String) {
    let reply: redis::Value = redis::cmd("HELLO")
        .arg(3)
        .query(&mut client(&proxy.resp_url()))
        .expect("HELLO 3 through the proxy");
    let redis::Value::Map(pairs) = reply else {
        panic!("HELLO 3 gave no map: {reply:?}");
    };
    let text = |value: &redis::Value| match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("not a bulk string: {other:?}"),
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| text(key) == name)
            .map(|(_, value)| text(value))
            .unwrap_or_else(|| panic!("HELLO 3 lacks {name}: {pairs:?}"))
    };
    (get("version"), get("proxy"))
}

/// Redis's own `redis_version`, from its own INFO.
fn redis_version(redis: &RedisServer) -> String {
    let info: String = redis.cmd(&["INFO", "server"]);
    field(&info, "redis_version").expect("Redis's redis_version")
}

#[test]
fn hello_and_info_report_the_backing_redis_s_own_version() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let theirs = redis_version(&redis);
    // Read when the link came up, before it showed as up.
    assert_eq!(hello(&proxy), (theirs.clone(), "redis-proxy".to_owned()));
    for section in ["server", "default", "all"] {
        let ours = info(&proxy, section);
        assert_eq!(
            field(&ours, "redis_version"),
            Some(theirs.clone()),
            "{ours}"
        );
        let own = field(&ours, "redis_proxy_version");
        assert_eq!(own.as_deref(), Some(env!("CARGO_PKG_VERSION")), "{ours}");
    }
}

#[test]
fn resp_reported_version_fixes_the_version_reported() {
    let redis = RedisServer::start();
    // Newer than Redis (redis-py's cache in front of a 7.0), and older.
    for fixed in ["7.4.0", "6.2.14"] {
        let proxy = InProcess::start(&redis, &[RESP, ("RESP_REPORTED_VERSION", fixed)]);
        assert_eq!(hello(&proxy), (fixed.to_owned(), "redis-proxy".to_owned()));
        let ours = info(&proxy, "server");
        assert_eq!(field(&ours, "redis_version").as_deref(), Some(fixed));
        assert!(ours.contains("\r\nredis_proxy_version:"), "{ours}");
    }
}

#[test]
fn before_redis_answers_the_oldest_supported_version_then_redis_s_own() {
    let mut redis = RedisServer::start();
    let theirs = redis_version(&redis);
    redis.stop();
    let proxy = InProcess::start_at(&redis.url(), &[RESP]);
    assert_eq!(hello(&proxy).0, "7.0.0");
    assert_eq!(
        field(&info(&proxy, "server"), "redis_version").as_deref(),
        Some("7.0.0")
    );
    redis.restart();
    eventually("Redis's own version once the link is up", || {
        (hello(&proxy).0 == theirs).then_some(())
    });
    assert_eq!(
        field(&info(&proxy, "server"), "redis_version"),
        Some(theirs)
    );
}

#[test]
fn without_the_link_the_first_forwarded_command_reads_redis_s_version() {
    let redis = RedisServer::start();
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]);
    let theirs = redis_version(&redis);
    let proxy = InProcess::start(&redis, &[RESP, ("INVALIDATION", "off")]);
    // Nothing has read it yet.
    assert_eq!(hello(&proxy).0, "7.0.0");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut client(&proxy.resp_url()))
        .expect("SET through the proxy");
    // Read on the worker after its reply.
    eventually("Redis's version without the link", || {
        (hello(&proxy).0 == theirs).then_some(())
    });
    let ours = info(&proxy, "memory");
    let policy = field(&ours, "maxmemory_policy");
    assert_eq!(policy.as_deref(), Some("volatile-ttl"), "{ours}");
}

/// Redis's `maxmemory`, `maxmemory_human` and `maxmemory_policy` lines.
fn max_memory_lines(info: &str) -> Vec<String> {
    ["maxmemory", "maxmemory_human", "maxmemory_policy"]
        .iter()
        .filter_map(|name| field(info, name).map(|value| format!("{name}:{value}")))
        .collect()
}

#[test]
fn info_memory_passes_on_redis_s_maxmemory_and_its_policy() {
    let mut redis = RedisServer::start();
    // A queue library warns about any policy but noeviction (BullMQ reads
    // `maxmemory_policy` from INFO at start).
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "100mb"]);
    let theirs: String = redis.cmd(&["INFO", "memory"]);
    let expected = max_memory_lines(&theirs);
    assert_eq!(
        expected,
        [
            "maxmemory:104857600",
            "maxmemory_human:100.00M",
            "maxmemory_policy:allkeys-lru"
        ]
    );
    let proxy = InProcess::start(&redis, &[RESP]);
    for section in ["memory", "default", "all", "everything"] {
        let ours = info(&proxy, section);
        assert_eq!(max_memory_lines(&ours), expected, "INFO {section}: {ours}");
        // The proxy's own figures stay beside them.
        assert!(field(&ours, "cache_max_bytes").is_some(), "{ours}");
    }
    // The policy in front of another Redis process with its defaults:
    // read again when the link comes back up.
    redis.restart();
    let theirs: String = redis.cmd(&["INFO", "memory"]);
    let expected = max_memory_lines(&theirs);
    assert_eq!(expected[2], "maxmemory_policy:noeviction");
    eventually("the restarted Redis's settings", || {
        (max_memory_lines(&info(&proxy, "memory")) == expected).then_some(())
    });
}

#[test]
fn without_config_get_the_maxmemory_lines_are_left_out() {
    let redis = RedisServer::start();
    // The least the proxy needs (the README's ACL): no `+config|get`.
    let address = redis.acl_user("plain", "pw", RedisServer::PROXY_ACL);
    let proxy = InProcess::start_at(&address, &[RESP]);
    proxy.wait_for_settled_link();
    let ours = info(&proxy, "memory");
    assert_eq!(max_memory_lines(&ours), Vec::<String>::new(), "{ours}");
    assert!(field(&ours, "used_memory").is_some(), "{ours}");
    // `HELLO`, which any user may run, still gives Redis's version.
    assert_eq!(hello(&proxy).0, redis_version(&redis));
    // Refused once as the link came up: Redis's ACL LOG says so.
    let log: Vec<redis::Value> = redis.cmd(&["ACL", "LOG"]);
    let said = format!("{log:?}");
    assert!(said.contains("config|get"), "{said}");
}

#[test]
fn in_a_cluster_a_node_s_version_and_settings() {
    let cluster = Cluster::start();
    for node in &cluster.nodes {
        let _: () = node.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    }
    let proxy = InProcess::start_at(&cluster.seeds(), &[RESP, ("REDIS_MODE", "cluster")]);
    proxy.wait_for_link("up");
    assert_eq!(hello(&proxy).0, redis_version(&cluster.nodes[0]));
    let ours = info(&proxy, "memory");
    let policy = field(&ours, "maxmemory_policy");
    assert_eq!(policy.as_deref(), Some("allkeys-lru"), "{ours}");
    // One database, as a cluster node has.
    let refused = redis::cmd("SELECT")
        .arg(1)
        .query::<()>(&mut client(&proxy.resp_url()))
        .expect_err("SELECT 1 in a cluster");
    assert!(
        refused.to_string().contains("not allowed in cluster mode"),
        "{refused}"
    );
}

#[test]
fn a_bad_reported_version_stops_start_up_naming_it() {
    for value in ["7.4", "latest", "7.4.0-rc1"] {
        let dir = TempDir::new("reported-version");
        let child = Command::new(proxy_binary())
            .env_clear()
            .envs([
                ("RESP_REPORTED_VERSION", value),
                ("PROXY_PORT", "0"),
                ("RESP_PORT", "0"),
                ("REDIS_ADDRESS", "127.0.0.1:1"),
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the proxy binary");
        // One that took the value would serve until killed: the test fails.
        let (exited, output) = crate::common::proxy::exit_or_kill(child);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(exited, "RESP_REPORTED_VERSION={value}: started ({stderr})");
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("RESP_REPORTED_VERSION") && stderr.contains(value),
            "{value}: {stderr}"
        );
    }
}
