//! RESP `INFO` (issue 23): `maxclients`, `tracking_clients`,
//! `tracking_total_keys`, `total_error_replies`, `commandstats` and
//! `errorstats`, compared line by line with what redis-server 7.0 answers
//! to the same commands.

use crate::common::info::info_value;
use crate::common::{InProcess, RedisServer};

/// The same commands against a server: a tracking client reads `k` twice,
/// a GET with no key (an arity error), an unknown command; then `INFO`
/// with `args`, from a second connection.
fn run_and_info(url: &str, args: &[&str]) -> (String, String) {
    let client = redis::Client::open(url).expect("a client");
    let mut tracking = client.get_connection().expect("connect");
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .exec(&mut tracking)
        .expect("CLIENT TRACKING ON");
    for _ in 0..2 {
        let _: Option<String> = redis::cmd("GET")
            .arg("k")
            .query(&mut tracking)
            .expect("GET");
    }
    let mut other = client.get_connection().expect("connect");
    assert!(redis::cmd("GET").exec(&mut other).is_err());
    assert!(redis::cmd("NOSUCHCOMMAND").exec(&mut other).is_err());
    let mut info = |args: &[&str]| -> String {
        let mut cmd = redis::cmd("INFO");
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query(&mut other).expect("INFO")
    };
    (info(args), info(&[]))
}

/// The `key=value` keys of a line such as `cmdstat_get:calls=2,usec=...`.
fn keys_of(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .collect()
}

#[test]
fn info_reports_clients_tracking_commands_and_errors_as_redis_does() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    // RESP_FORWARD=off: the proxy answers the unknown command itself, as
    // the error counts below expect (forwarded, Redis would answer it, and
    // the proxy's errorstats do not count Redis's error replies yet).
    let proxy = InProcess::start(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("MAX_CONNECTIONS", "321"),
            ("RESP_FORWARD", "off"),
        ],
    );
    // The reference: a redis-server of its own, with the same commands.
    let reference = RedisServer::start();
    reference.set("k", "v");
    let (theirs, theirs_default) = run_and_info(&reference.url(), &["everything"]);
    let (ours, ours_default) = run_and_info(&proxy.resp_url(), &["everything"]);

    assert_eq!(info_value(&ours, "maxclients"), Some("321"));
    assert_eq!(info_value(&ours, "tracking_clients"), Some("1"));
    assert_eq!(info_value(&ours, "tracking_total_keys"), Some("1"));
    assert_eq!(info_value(&theirs, "tracking_total_keys"), Some("1"));
    // The arity error and the unknown command, under ERR. (Redis 7.0 has
    // more: it refuses the CLIENT SETINFO the redis crate sends.)
    assert_eq!(
        info_value(&ours, "total_error_replies"),
        Some("2"),
        "{ours}"
    );
    assert_eq!(
        info_value(&ours, "errorstat_ERR"),
        Some("count=2"),
        "{ours}"
    );
    let count = info_value(&theirs, "errorstat_ERR").expect("Redis's errorstat_ERR");
    assert!(count
        .strip_prefix("count=")
        .is_some_and(|n| n.parse::<u64>().is_ok()));
    assert!(info_value(&theirs, "total_error_replies").is_some());
    // GET: two calls, one rejected (arity), none failed; same fields, in
    // the same order, as Redis writes them.
    let get = info_value(&ours, "cmdstat_get").expect("cmdstat_get");
    let reference_get = info_value(&theirs, "cmdstat_get").expect("Redis's cmdstat_get");
    assert_eq!(keys_of(get), keys_of(reference_get));
    assert!(get.starts_with("calls=2,usec="), "{get}");
    assert!(get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    let per_call = get
        .split(',')
        .find_map(|p| p.strip_prefix("usec_per_call="))
        .expect("usec_per_call");
    assert_eq!(per_call.split('.').nth(1).map(str::len), Some(2), "{get}");
    // A subcommand is counted apart, as Redis 7 counts it.
    let tracking = info_value(&ours, "cmdstat_client|tracking").expect("client|tracking");
    let reference = info_value(&theirs, "cmdstat_client|tracking").expect("Redis's");
    assert_eq!(keys_of(tracking), keys_of(reference));
    assert!(tracking.starts_with("calls=1,"), "{tracking}");
    assert!(info_value(&ours, "cmdstat_client").is_none(), "{ours}");
    // Sections: headers as Redis writes them; commandstats only when asked.
    for header in ["# Clients", "# Stats", "# Commandstats", "# Errorstats"] {
        assert!(theirs.lines().any(|l| l == header), "Redis: {header}");
        assert!(ours.lines().any(|l| l == header), "{header}: {ours}");
    }
    for info in [&ours_default, &theirs_default] {
        assert!(!info.contains("# Commandstats"), "{info}");
        assert!(info.contains("# Errorstats"), "{info}");
    }
}
