//! REDIS_MODE=sentinel: reads from the master the sentinels name, and after
//! `SENTINEL FAILOVER` from the new one only.

use crate::common::sentinel::{Sentinels, MASTER};
use crate::common::{eventually, readers, Proxy};

const KEYS: usize = 20;

fn key(i: usize) -> String {
    format!("key:{i}")
}

fn start() -> (Sentinels, Proxy) {
    let set = Sentinels::start();
    for i in 0..KEYS {
        set.master.set(key(i), format!("v{i}"));
    }
    let proxy = set.proxy(&[]);
    (set, proxy)
}

#[test]
fn reads_go_to_the_master_the_sentinels_name_and_its_writes_invalidate() {
    let (set, proxy) = start();
    for i in 0..KEYS {
        let reply = proxy.get_key(key(i));
        assert_eq!((reply.status, reply.text()), (200, format!("v{i}")));
    }
    assert!(set.master.calls("get") >= KEYS as u64);
    assert_eq!(set.replica.calls("get"), 0, "reads go to the master only");
    assert!(proxy.get_key(key(0)).is_hit());
    set.master.set(key(0), "changed");
    eventually("the write to reach the cache", || {
        (proxy.get_key(key(0)).text() == "changed").then_some(())
    });
    assert_eq!(proxy.get("/readyz").status, 200);
}

#[test]
fn after_a_sentinel_failover_only_the_new_master_answers() {
    let (set, proxy) = start();
    for i in 0..KEYS {
        assert_eq!(proxy.get_key(key(i)).status, 200);
    }
    // Readers throughout: the old value, or a JSON 503/504, never another.
    let readers = readers::spawn(proxy.addr, KEYS, key, |i, body| {
        body == format!("v{i}").as_bytes()
    });
    set.fail_over(&proxy);
    readers.finish();
    // The demoted master is made to hold something else: any read it still
    // answered would show it.
    let _: () = set.master.cmd(&["REPLICAOF", "NO", "ONE"]);
    set.master.set(key(0), "from the demoted master");
    set.replica.set(key(0), "from the new master");
    // A write made at Redis reaches the cache within the link's delay: a
    // reader that refetched key 0 from the new master during the failover
    // may still be served that ("v0") until its announcement arrives.
    eventually("the new master's write to reach the cache", || {
        let reply = proxy.get_key(key(0));
        assert_ne!(reply.text(), "from the demoted master");
        if reply.status == 200 && reply.text() != "v0" {
            assert_eq!(reply.text(), "from the new master");
            return Some(());
        }
        None
    });
    for _ in 0..20 {
        let reply = proxy.get_key(key(0));
        assert_ne!(reply.text(), "from the demoted master");
        if reply.status == 200 {
            assert_eq!(reply.text(), "from the new master");
        }
    }
    // And once linked to the new master, its writes invalidate.
    eventually("the link to the new master", || {
        (proxy.link_state() == "up").then_some(())
    });
    assert_eq!(proxy.get_key(key(1)).text(), "v1");
    set.replica.set(key(1), "written after the failover");
    eventually("the write to reach the cache", || {
        (proxy.get_key(key(1)).text() == "written after the failover").then_some(())
    });
}

/// A fail-back A -> B -> A within a minute (rolling maintenance): the
/// sentinels name A again, at a higher config epoch, while B still answers
/// as master (after `SENTINEL FAILOVER` they demote it only seconds later;
/// an ACL holds it so here). The proxy follows A: what is written at A is
/// served, and neither the value cached from B nor one written at B is
/// served again. On the code before, A was refused ("not followed": a
/// master left less than 60 s ago) for as long as B answered as master.
#[test]
fn a_fail_back_within_a_minute_is_followed_while_the_old_master_still_answers() {
    let (set, proxy) = start();
    set.fail_over(&proxy);
    eventually("a read from the new master", || {
        (proxy.get_key(key(0)).text() == "v0").then_some(())
    });
    let _: () = set
        .replica
        .cmd(&["ACL", "SETUSER", "default", "-replicaof", "-slaveof"]);
    set.fail_back();
    set.master.set(key(0), "written at A");
    set.replica.set(key(0), "from the demoted master");
    eventually("the proxy to serve what was written at A", || {
        let reply = proxy.get_key(key(0));
        (reply.status == 200 && reply.text() == "written at A").then_some(())
    });
    for _ in 0..20 {
        assert_eq!(proxy.get_key(key(0)).text(), "written at A");
    }
    let role: String = set.replica.cmd(&["INFO", "replication"]);
    assert!(role.contains("role:master"), "B still answers as master");
    assert!(!proxy.log().contains("not followed"));
}

#[test]
fn sentinels_with_a_password_are_reached_with_redis_sentinel_password() {
    let set = Sentinels::start_with_password(Some("sentinel-secret"));
    set.master.set("k", "v");
    let with = |password: &str| {
        Proxy::start_at(
            &set.addresses(),
            &[
                ("REDIS_MODE", "sentinel"),
                ("REDIS_SENTINEL_MASTER", MASTER),
                ("REDIS_SENTINEL_PASSWORD", password),
                ("REDIS_TIMEOUT_MS", "500"),
            ],
        )
    };
    let proxy = with("sentinel-secret");
    assert_eq!(proxy.get_key("k").text(), "v");
    assert_eq!(proxy.get("/readyz").status, 200);
    assert!(
        !proxy.log().contains("sentinel-secret"),
        "the password is never logged"
    );
    // Without it the sentinels cannot be asked: no master, a 503.
    let refused = with("");
    let reply = refused.get_key("k");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(refused.get("/readyz").status, 503);
}

#[test]
fn while_a_dead_master_awaits_failover_the_error_says_so() {
    let (mut set, proxy) = start();
    set.master.stop();
    let body = eventually("an error naming the failover in progress", || {
        let reply = proxy.get_key("absent");
        let body = reply.text();
        (reply.status == 503 && body.contains("failover in progress")).then_some(body)
    });
    assert!(body.contains(MASTER), "{body}");
    assert!(!body.contains("MasterNameNotFoundBySentinel"), "{body}");
    // And once the sentinels have failed over, the new master answers.
    eventually("the proxy to follow", || {
        (proxy.get_key(key(1)).text() == "v1").then_some(())
    });
}
