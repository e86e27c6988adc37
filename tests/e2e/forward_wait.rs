//! WAIT through the proxy (audit finding 2): it runs on a dedicated
//! connection, not the one that carried the client's writes, yet its
//! answer covers every write the client made before it. A replica stopped
//! with SIGSTOP must give 0 through the proxy, as it does directly, even
//! on a pooled connection last used before the write; a live one gives 1.

use crate::common::cluster::Cluster;
use crate::common::sentinel::Sentinels;
use crate::common::wire::{loop_carries_writes, show, Wire};
use crate::common::{eventually, InProcess, Proxy, RedisServer};

/// A master, its replica in sync, and the proxy in front of the master.
fn start(env: &[(&str, &str)]) -> (RedisServer, RedisServer, Proxy) {
    let master = RedisServer::start();
    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let mut vars = vec![("RESP_PORT", "auto")];
    vars.extend_from_slice(env);
    let proxy = Proxy::start(&master, &vars);
    (master, replica, proxy)
}

/// Waits until the replica has acknowledged everything the master has
/// sent it (`INFO replication`: its offset is the master's).
fn acked(master: &RedisServer) {
    eventually("the replica to acknowledge the master's offset", || {
        let info: String = master.try_cmd(&["INFO", "replication"])?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::to_owned)
        };
        let ours = field("master_repl_offset:")?;
        let replica = field("slave0:")?;
        let theirs = replica.split(',').find_map(|f| f.strip_prefix("offset="))?;
        (theirs == ours && replica.contains("state=online")).then_some(())
    });
}

/// A replica stopped by SIGSTOP, resumed (SIGCONT) when dropped, so a
/// failing assertion does not leave it stopped.
struct Stopped(String);

impl Stopped {
    fn stop(replica: &RedisServer) -> Stopped {
        let info: String = replica.cmd(&["INFO", "server"]);
        let pid = info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .expect("process_id in INFO server")
            .trim()
            .to_owned();
        signal("-STOP", &pid);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

fn signal(which: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([which, pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {which} {pid}");
}

#[test]
fn wait_through_a_warm_pool_answers_0_when_the_replica_is_stopped_as_directly() {
    let (master, replica, proxy) = start(&[]);
    stopped_replica_acks_nothing(&master, &replica, &proxy);
}

#[test]
fn in_sentinel_mode_wait_covers_the_writes_too() {
    let set = Sentinels::start();
    let proxy = set.proxy(&[]);
    stopped_replica_acks_nothing(&set.master, &set.replica, &proxy);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(through.call_args(&["SET", "live", "v"]), b"+OK\r\n");
    assert_eq!(
        show(&through.call_args(&["WAIT", "1", "10000"])),
        show(b":1\r\n")
    );
}

/// The audit's reproduction: a pooled dedicated connection last used
/// before the client's write; the replica stopped. WAIT answers 0 through
/// the proxy as directly, in RESP2 and RESP3, pipelined or not.
fn stopped_replica_acks_nothing(master: &RedisServer, replica: &RedisServer, proxy: &Proxy) {
    loop_carries_writes(master, proxy.resp_addr(), 2);
    loop_carries_writes(master, proxy.resp_addr(), 3);
    // A blocking command leaves a dedicated connection in the pool, last
    // used before the writes below.
    let mut warm = Wire::connect(proxy.resp_addr());
    assert_eq!(warm.call_args(&["BLPOP", "nolist", "0.01"]), b"*-1\r\n");
    acked(master);
    let stopped = Stopped::stop(replica);
    let mut direct = Wire::connect(master.addr());
    assert_eq!(direct.call_args(&["SET", "durable", "v4"]), b"+OK\r\n");
    assert_eq!(direct.call_args(&["WAIT", "1", "300"]), b":0\r\n");
    for protocol in [2, 3] {
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        assert_eq!(through.call_args(&["SET", "durable", "v4"]), b"+OK\r\n");
        assert_eq!(
            show(&through.call_args(&["WAIT", "1", "300"])),
            show(b":0\r\n"),
            "RESP{protocol}: the write did not reach the stopped replica"
        );
        // Pipelined in one write: the WAIT still covers the SET before it.
        through.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n300\r\n");
        assert_eq!(through.reply(), b"+OK\r\n");
        assert_eq!(
            show(&through.reply()),
            show(b":0\r\n"),
            "RESP{protocol}, pipelined"
        );
    }
    drop(stopped);
    acked(master);
}

#[test]
fn wait_through_the_proxy_answers_1_once_the_live_replica_has_the_write() {
    let (master, replica, proxy) = start(&[]);
    loop_carries_writes(&master, proxy.resp_addr(), 2);
    loop_carries_writes(&master, proxy.resp_addr(), 3);
    let mut warm = Wire::connect(proxy.resp_addr());
    assert_eq!(warm.call_args(&["BLPOP", "nolist", "0.01"]), b"*-1\r\n");
    acked(&master);
    for protocol in [2, 3] {
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        assert_eq!(through.call_args(&["SET", "live", "v"]), b"+OK\r\n");
        assert_eq!(
            show(&through.call_args(&["WAIT", "1", "10000"])),
            show(b":1\r\n")
        );
        // After WATCH, WAIT runs on the connection the client holds, and
        // the transaction there goes on.
        assert_eq!(through.call_args(&["WATCH", "live"]), b"+OK\r\n");
        assert_eq!(
            show(&through.call_args(&["WAIT", "1", "10000"])),
            show(b":1\r\n")
        );
        assert_eq!(through.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(through.call_args(&["SET", "live", "w"]), b"+QUEUED\r\n");
        assert_eq!(show(&through.call_args(&["EXEC"])), show(b"*1\r\n+OK\r\n"));
    }
    assert_eq!(replica_get(&replica, "live"), "w");
}

fn replica_get(replica: &RedisServer, key: &str) -> String {
    eventually("the replica to have the write", || {
        replica.try_cmd::<Option<String>>(&["GET", key]).flatten()
    })
}

#[test]
fn waitaof_answers_as_redis_answers_it() {
    // Redis 7.0 does not know WAITAOF: through the proxy it answers the
    // same error (the proxy's PUBLISH before it changes nothing).
    let (master, _replica, proxy) = start(&[]);
    let mut direct = Wire::connect(master.addr());
    let mut through = Wire::connect(proxy.resp_addr());
    let ask = ["WAITAOF", "0", "1", "100"];
    assert_eq!(
        show(&through.call_args(&ask)),
        show(&direct.call_args(&ask))
    );
    assert_eq!(through.call_args(&["PING"]), b"+PONG\r\n");
}

#[test]
fn wait_names_what_the_proxys_redis_user_lacks_when_publish_is_refused() {
    let master = RedisServer::start();
    let mut rules = RedisServer::PROXY_ACL.to_vec();
    rules.extend(["+set", "+wait", "+blpop", "+command"]);
    let address = master.acl_user("nopub", "pw", &rules);
    let proxy = InProcess::start_at(&address, &[("RESP_PORT", "auto")]);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(through.call_args(&["SET", "k", "v"]), b"+OK\r\n");
    let refused = String::from_utf8_lossy(&through.call_args(&["WAIT", "0", "100"])).into_owned();
    assert!(refused.starts_with("-NOPERM "), "{refused}");
    assert!(
        refused.contains("+publish") && refused.contains("&__redis-proxy:wait"),
        "names the ACL rule the proxy's user needs: {refused}"
    );
    // The connection goes on.
    assert_eq!(through.call_args(&["PING"]), b"+PONG\r\n");
}

#[test]
fn wait_and_waitaof_are_refused_in_cluster_mode_with_the_reason() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(through.call_args(&["SET", "k", "v"]), b"+OK\r\n");
    for ask in [&["WAIT", "1", "100"][..], &["WAITAOF", "0", "1", "100"]] {
        let refused = String::from_utf8_lossy(&through.call_args(ask)).into_owned();
        assert!(
            refused.starts_with("-ERR ") && refused.contains("cluster mode"),
            "{}: {refused}",
            ask[0]
        );
    }
    assert_eq!(through.call_args(&["PING"]), b"+PONG\r\n");
}

#[test]
fn wait_inside_multi_is_refused_and_the_transaction_not_run() {
    // Queued, WAIT would answer about the transaction's connection.
    let master = RedisServer::start();
    let proxy = InProcess::start(&master, &[("RESP_PORT", "auto")]);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(through.call_args(&["MULTI"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["SET", "k", "v"]), b"+QUEUED\r\n");
    let refused = String::from_utf8_lossy(&through.call_args(&["WAIT", "0", "0"])).into_owned();
    assert!(
        refused.starts_with("-ERR WAIT and WAITAOF inside MULTI are not supported"),
        "{refused}"
    );
    let exec = String::from_utf8_lossy(&through.call_args(&["EXEC"])).into_owned();
    assert!(exec.starts_with("-EXECABORT"), "{exec}");
    assert_eq!(through.call_args(&["GET", "k"]), b"$-1\r\n");
}
