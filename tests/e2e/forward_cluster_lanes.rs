//! Connections a client holds in REDIS_MODE=cluster (issue #21): a
//! transaction, a WATCH, a blocking command and a shard subscription each
//! run on the master owning their keys' slot, whichever master that is,
//! as a cluster-aware client would send them; not on whichever master
//! keyless commands go to.

use crate::common::resp_wire::{show, Wire};
use crate::common::wire::info_clients;

use super::forward_cluster::{open, start, tag_per_master};

/// `MULTI`, two queued writes and `EXEC` on keys tagged `tag`, sent one
/// request at a time (as `redis-cli` does) or all at once (as a client's
/// pipeline does), in `wire`'s protocol.
fn transaction(wire: &mut Wire, tag: &str, pipelined: bool) -> Vec<Vec<u8>> {
    let key = format!("{{{tag}}}counter");
    let requests: Vec<Vec<&str>> = vec![
        vec!["MULTI"],
        vec!["SET", &key, "41"],
        vec!["INCR", &key],
        vec!["EXEC"],
    ];
    if pipelined {
        for request in &requests {
            wire.send_args(request);
        }
        return wire.replies(requests.len());
    }
    requests
        .iter()
        .map(|request| wire.call_args(request))
        .collect()
}

#[test]
fn transactions_run_on_the_master_of_their_keys_sent_whole_or_a_request_at_a_time() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    for resp3 in [false, true] {
        for pipelined in [false, true] {
            for tag in &tags {
                let mut wire = open(proxy.resp_addr(), resp3);
                let replies = transaction(&mut wire, tag, pipelined);
                let shown: Vec<String> = replies.iter().map(|r| show(r)).collect();
                assert_eq!(
                    replies,
                    vec![
                        b"+OK\r\n".to_vec(),
                        b"+QUEUED\r\n".to_vec(),
                        b"+QUEUED\r\n".to_vec(),
                        b"*2\r\n+OK\r\n:42\r\n".to_vec(),
                    ],
                    "tag {tag}, resp3 {resp3}, pipelined {pipelined}: {shown:?}"
                );
                let master = cluster.master_of(tag);
                let value: String = master.cmd(&["GET", &format!("{{{tag}}}counter")]);
                assert_eq!(value, "42");
                // The connection is usable afterwards, on any master.
                for other in &tags {
                    assert_eq!(
                        wire.call_args(&["SET", &format!("{{{other}}}after"), "1"]),
                        b"+OK\r\n"
                    );
                }
            }
        }
    }
}

#[test]
fn watch_holds_the_master_of_the_watched_key_and_sees_a_conflict() {
    let (cluster, proxy) = start();
    for tag in tag_per_master(&cluster) {
        let key = format!("{{{tag}}}watched");
        let mut watcher = open(proxy.resp_addr(), false);
        let mut other = open(proxy.resp_addr(), false);
        assert_eq!(watcher.call_args(&["WATCH", &key]), b"+OK\r\n", "{tag}");
        assert_eq!(watcher.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(watcher.call_args(&["SET", &key, "mine"]), b"+QUEUED\r\n");
        assert_eq!(watcher.call_args(&["EXEC"]), b"*1\r\n+OK\r\n", "{tag}");
        // Changed by another client between WATCH and EXEC: nothing runs.
        assert_eq!(watcher.call_args(&["WATCH", &key]), b"+OK\r\n");
        assert_eq!(other.call_args(&["SET", &key, "theirs"]), b"+OK\r\n");
        assert_eq!(watcher.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(watcher.call_args(&["SET", &key, "mine"]), b"+QUEUED\r\n");
        assert_eq!(watcher.call_args(&["EXEC"]), b"*-1\r\n", "{tag}");
        let value: String = cluster.master_of(&tag).cmd(&["GET", &key]);
        assert_eq!(value, "theirs");
    }
}

#[test]
fn blocking_commands_wait_on_the_master_of_their_key() {
    let (cluster, proxy) = start();
    for tag in tag_per_master(&cluster) {
        let key = format!("{{{tag}}}queue");
        let mut blocked = open(proxy.resp_addr(), false);
        let mut pusher = open(proxy.resp_addr(), false);
        blocked.send_args(&["BLPOP", &key, "0"]);
        // Redis counts the client as blocked on the key's own master.
        let master = cluster.master_of(&tag);
        crate::common::eventually("the BLPOP blocked on the key's master", || {
            (info_clients(master, "blocked_clients") == 1).then_some(())
        });
        assert_eq!(pusher.call_args(&["LPUSH", &key, "job"]), b":1\r\n");
        let expected = format!("*2\r\n${}\r\n{key}\r\n$3\r\njob\r\n", key.len());
        assert_eq!(show(&blocked.reply()), show(expected.as_bytes()), "{tag}");
    }
}

#[test]
fn shard_subscriptions_listen_on_the_master_of_their_channel() {
    let (cluster, proxy) = start();
    for tag in tag_per_master(&cluster) {
        let channel = format!("{{{tag}}}news");
        let mut subscriber = open(proxy.resp_addr(), false);
        let confirmed = subscriber.call_args(&["SSUBSCRIBE", &channel]);
        let expected = format!(
            "*3\r\n$10\r\nssubscribe\r\n${}\r\n{channel}\r\n:1\r\n",
            channel.len()
        );
        assert_eq!(show(&confirmed), show(expected.as_bytes()), "{tag}");
        let mut publisher = open(proxy.resp_addr(), false);
        assert_eq!(
            publisher.call_args(&["SPUBLISH", &channel, "hello"]),
            b":1\r\n",
            "{tag}"
        );
        let expected = format!(
            "*3\r\n$8\r\nsmessage\r\n${}\r\n{channel}\r\n$5\r\nhello\r\n",
            channel.len()
        );
        assert_eq!(
            show(&subscriber.reply()),
            show(expected.as_bytes()),
            "{tag}"
        );
    }
}

#[test]
fn a_multi_answered_before_any_key_ends_as_a_node_ends_it() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    let node = &cluster.masters()[0];
    for resp3 in [false, true] {
        let mut direct = open(node.addr(), resp3);
        let mut through = open(proxy.resp_addr(), resp3);
        for script in [
            vec![vec!["MULTI"], vec!["EXEC"]],
            vec![vec!["MULTI"], vec!["DISCARD"]],
            vec![vec!["MULTI"], vec!["PING"], vec!["EXEC"]],
            vec![vec!["MULTI"], vec!["MULTI"], vec!["DISCARD"]],
        ] {
            for request in &script {
                let expected = direct.call_args(request);
                assert_eq!(
                    show(&through.call_args(request)),
                    show(&expected),
                    "{request:?} in {script:?}, resp3 {resp3}"
                );
            }
        }
        // A transaction with keys of two masters: the first key's master
        // runs it, and refuses the other key (MOVED) as it would.
        let (a, b) = (format!("{{{}}}a", tags[0]), format!("{{{}}}b", tags[1]));
        assert_eq!(through.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(through.call_args(&["SET", &a, "1"]), b"+QUEUED\r\n");
        let moved = through.call_args(&["SET", &b, "1"]);
        assert!(moved.starts_with(b"-MOVED "), "{}", show(&moved));
        assert!(through.call_args(&["EXEC"]).starts_with(b"-EXECABORT"));
    }
}
