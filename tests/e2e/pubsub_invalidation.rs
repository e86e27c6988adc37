//! The proxy's own `__redis__:invalidate` channel (where a RESP2 client's
//! `CLIENT TRACKING ... REDIRECT` messages arrive) beside real channels,
//! and the Pub/Sub, `CLIENT TRACKINGINFO` and connection replies around
//! it: each script runs against a redis-server directly and through the
//! proxy, and the bytes must be the same.

use std::io::Write;
use std::net::SocketAddr;

use crate::client_tracking::start;
use crate::common::resp_conn::RespConn;
use crate::common::{connect, read_until_closed, resp_command, RedisServer};

/// One side: Redis itself or the proxy in front of another Redis.
struct Side {
    addr: SocketAddr,
}

/// A target `a`, a tracking client `t` redirecting to it, a writer `w`,
/// and a witness pair (`b` subscribed, `u` redirecting to it) whose
/// message proves an invalidation has been sent out.
struct Clients {
    a: RespConn,
    t: RespConn,
    w: RespConn,
    b: RespConn,
    u: RespConn,
}

impl Side {
    fn clients(&self) -> Clients {
        let mut a = RespConn::open(self.addr);
        let mut b = RespConn::open(self.addr);
        let a_id = a.call(&["CLIENT", "ID"]);
        let b_id = b.call(&["CLIENT", "ID"]);
        let mut t = RespConn::open(self.addr);
        let mut u = RespConn::open(self.addr);
        assert_eq!(
            b.call(&["SUBSCRIBE", "__redis__:invalidate"]),
            "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"
        );
        let redirect = |c: &mut RespConn, id: &str| {
            let id = id.trim_start_matches(':').trim_end();
            assert_eq!(
                c.call(&["CLIENT", "TRACKING", "ON", "REDIRECT", id]),
                "+OK\r\n"
            );
        };
        redirect(&mut t, &a_id);
        redirect(&mut u, &b_id);
        let w = RespConn::open(self.addr);
        Clients { a, t, w, b, u }
    }
}

impl Clients {
    /// `a` sends `words`; its `n` replies, and with more than one, the
    /// confirmations sorted and their counts sorted apart (UNSUBSCRIBE
    /// with no channel goes through a Redis dict, whose order differs
    /// from one redis-server to another).
    fn a(&mut self, words: &[&str], n: usize) -> String {
        self.a.send(words);
        let replies: Vec<String> = (0..n)
            .map(|_| String::from_utf8_lossy(&self.a.reply()).into_owned())
            .collect();
        if n == 1 {
            return replies.concat();
        }
        let (mut names, mut counts): (Vec<&str>, Vec<&str>) = replies
            .iter()
            .map(|reply| reply.rsplit_once("\r\n:").expect("a confirmation"))
            .unzip();
        names.sort_unstable();
        counts.sort_unstable();
        format!("{names:?} {counts:?}")
    }

    /// `t` and `u` read `rk`, `w` writes it; once `b` has its message,
    /// whatever `a` was sent is there: `a`'s replies up to a PING's.
    fn write_then_a(&mut self) -> String {
        assert_eq!(self.t.call(&["GET", "rk"]).as_bytes()[0], b'$');
        assert_eq!(self.u.call(&["GET", "rk"]).as_bytes()[0], b'$');
        assert_eq!(self.w.call(&["INCR", "rk"]).as_bytes()[0], b':');
        let witness = String::from_utf8_lossy(&self.b.reply()).into_owned();
        assert!(witness.contains("message"), "{witness}");
        self.a.send(&["PING"]);
        let mut out = String::new();
        loop {
            let reply = String::from_utf8_lossy(&self.a.reply()).into_owned();
            out.push_str(&reply);
            if reply == "+PONG\r\n" || reply.contains("$4\r\npong") {
                return out;
            }
        }
    }
}

/// Runs `script` on both sides and compares each step's text.
fn same_on_both(script: impl Fn(&mut Clients) -> Vec<String>) {
    let redis = RedisServer::start();
    let (_backend, proxy) = start(&[]);
    let direct = script(&mut Side { addr: redis.addr() }.clients());
    let proxied = script(
        &mut Side {
            addr: proxy.resp_addr(),
        }
        .clients(),
    );
    for (i, (want, got)) in direct.iter().zip(&proxied).enumerate() {
        assert_eq!(got, want, "step {i}: proxy {got:?}, redis {want:?}");
    }
    assert_eq!(direct.len(), proxied.len());
}

#[test]
fn the_invalidation_channel_beside_real_channels_counts_and_ends_as_at_redis() {
    // The audit's case: subscribed here first, then at Redis.
    same_on_both(|c| {
        vec![
            c.a(&["SUBSCRIBE", "__redis__:invalidate"], 1),
            c.a(&["SUBSCRIBE", "other"], 1),
            c.write_then_a(),
            c.a(&["UNSUBSCRIBE"], 2),
            c.write_then_a(),
            c.a(&["GET", "zz"], 1),
        ]
    });
    // Both in one SUBSCRIBE; any subscription keeps the messages coming,
    // as Redis sends them to a client in Pub/Sub mode.
    same_on_both(|c| {
        vec![
            c.a(&["SUBSCRIBE", "other", "__redis__:invalidate"], 2),
            c.a(&["UNSUBSCRIBE", "__redis__:invalidate"], 1),
            c.write_then_a(),
            c.a(&["UNSUBSCRIBE", "other"], 1),
            c.write_then_a(),
        ]
    });
    // A pattern that matches the channel, and shard channels.
    same_on_both(|c| {
        vec![
            c.a(&["SUBSCRIBE", "__redis__:invalidate"], 1),
            c.a(&["PSUBSCRIBE", "__redis__:*"], 1),
            c.a(&["SSUBSCRIBE", "sh"], 1),
            c.a(&["PUNSUBSCRIBE"], 1),
            c.a(&["UNSUBSCRIBE", "__redis__:invalidate", "x"], 2),
            c.write_then_a(),
            c.a(&["SUNSUBSCRIBE", "sh"], 1),
            c.write_then_a(),
        ]
    });
    // RESET ends them all.
    same_on_both(|c| {
        vec![
            c.a(&["SUBSCRIBE", "__redis__:invalidate"], 1),
            c.a(&["SUBSCRIBE", "other"], 1),
            c.a(&["RESET"], 1),
            c.write_then_a(),
        ]
    });
}

#[test]
fn a_resp3_redirect_target_gets_an_invalidate_push_as_from_redis() {
    same_on_both(|c| {
        vec![
            // The maps differ by design (server, version, id).
            c.a(&["HELLO", "3"], 1)[..1].to_owned(),
            c.write_then_a(),
            c.a(&["SUBSCRIBE", "other"], 1),
            c.write_then_a(),
        ]
    });
}

/// Runs `script` (each command with the number of replies it gets) on one
/// connection to each side, in RESP2 and in RESP3, comparing the bytes.
fn same_replies(script: &[(&[&str], usize)]) {
    let redis = RedisServer::start();
    let (_backend, proxy) = start(&[]);
    for resp3 in [false, true] {
        let run = |addr| {
            let mut conn = RespConn::open(addr);
            if resp3 {
                conn.send(&["HELLO", "3"]);
                conn.reply();
            }
            let mut out = Vec::new();
            for (words, n) in script {
                conn.send(words);
                for _ in 0..*n {
                    out.push((
                        words.join(" "),
                        String::from_utf8_lossy(&conn.reply()).into_owned(),
                    ));
                }
            }
            out
        };
        let (direct, proxied) = (run(redis.addr()), run(proxy.resp_addr()));
        for (want, got) in direct.iter().zip(&proxied) {
            assert_eq!(got, want, "resp3={resp3}");
        }
    }
}

#[test]
fn unsubscribing_from_nothing_held_answers_as_redis() {
    same_replies(&[
        (&["PUNSUBSCRIBE", "p1", "p2"], 2),
        (&["SUNSUBSCRIBE", "s1", "s2"], 2),
        (&["PUNSUBSCRIBE"], 1),
        (&["SUNSUBSCRIBE"], 1),
        (&["UNSUBSCRIBE"], 1),
        (&["UNSUBSCRIBE", "x1", "x2", "x3"], 3),
        (&["SUBSCRIBE", "__redis__:invalidate"], 1),
        (&["PUNSUBSCRIBE", "p1"], 1),
        (&["SUNSUBSCRIBE"], 1),
        (&["UNSUBSCRIBE", "x1", "__redis__:invalidate", "x2"], 3),
        (&["SUBSCRIBE", "__redis__:invalidate"], 1),
        (&["UNSUBSCRIBE"], 1),
        (&["PING"], 1),
    ]);
}

#[test]
fn client_trackinginfo_flags_are_a_set_with_the_caching_flags_as_redis() {
    same_replies(&[
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CLIENT", "TRACKING", "on", "OPTIN"], 1),
        (&["CLIENT", "CACHING", "yes"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["PING"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CLIENT", "CACHING", "yes"], 1),
        (&["CLIENT", "TRACKING", "off"], 1),
        (&["CLIENT", "TRACKING", "on", "OPTIN"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CLIENT", "TRACKING", "on", "OPTOUT"], 1),
        (&["CLIENT", "TRACKING", "off"], 1),
        (&["CLIENT", "TRACKING", "on", "OPTOUT", "NOLOOP"], 1),
        (&["CLIENT", "CACHING", "no"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CLIENT", "TRACKING", "off"], 1),
        (&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"], 1),
        (&["CLIENT", "TRACKINGINFO"], 1),
    ]);
}

#[test]
fn protocol_redirect_and_subscribed_mode_errors_read_as_redis() {
    same_replies(&[
        (&["HELLO", "foo"], 1),
        (&["HELLO", "03"], 1),
        (&["HELLO", "4"], 1),
        (&["HELLO", "-3"], 1),
        (&["CLIENT", "TRACKING", "on", "REDIRECT", "x"], 1),
        (&["CLIENT", "TRACKING", "on", "REDIRECT", "-1"], 1),
        (&["CLIENT", "TRACKING", "on", "REDIRECT"], 1),
        (&["SUBSCRIBE", "__redis__:invalidate"], 1),
        // RESP2 refuses them naming the subcommand; RESP3 answers.
        (&["CLIENT", "TRACKINGINFO"], 1),
        (&["CONFIG", "GET", "x"], 1),
        (&["COMMAND", "COUNT"], 1),
        (&["GET", "k"], 1),
    ]);
}

#[test]
fn a_resp3_tracking_client_is_invalidated_for_keys_read_while_subscribed() {
    // Reads sent over the client's subscription at Redis are tracked as
    // any: the write's invalidation reaches it beside the message.
    let redis = RedisServer::start();
    let (_backend, proxy) = start(&[]);
    let run = |addr| {
        let mut w = RespConn::open(addr);
        assert_eq!(w.call(&["SET", "sk", "1"]), "+OK\r\n");
        let mut s = RespConn::open(addr);
        assert!(s.call(&["HELLO", "3"]).starts_with('%'));
        let mut out = vec![
            s.call(&["CLIENT", "TRACKING", "on"]),
            s.call(&["SUBSCRIBE", "chan"]),
            s.call(&["GET", "sk"]),
            w.call(&["SET", "sk", "2"]),
            w.call(&["PUBLISH", "chan", "m"]),
        ];
        let mut pushes: Vec<String> = (0..2)
            .map(|_| String::from_utf8_lossy(&s.reply()).into_owned())
            .collect();
        pushes.sort_unstable();
        out.extend(pushes);
        out.push(s.call(&["PING"]));
        out
    };
    let (direct, proxied) = (run(redis.addr()), run(proxy.resp_addr()));
    assert_eq!(proxied, direct);
}

#[test]
fn reset_pipelined_behind_the_first_subscription_at_redis_answers_as_redis() {
    // The proxy's own SUBSCRIBE of its channel, sent ahead of `a`, has
    // its confirmation dropped though RESET comes right behind.
    let redis = RedisServer::start();
    let (_backend, proxy) = start(&[]);
    for resp3 in [false, true] {
        let run = |addr| {
            let mut c = RespConn::open(addr);
            if resp3 {
                assert!(c.call(&["HELLO", "3"]).starts_with('%'));
            }
            let mut out = vec![c.call(&["SUBSCRIBE", "__redis__:invalidate"])];
            let mut pipeline = resp_command(&[b"SUBSCRIBE", b"a"]);
            pipeline.extend(resp_command(&[b"RESET"]));
            c.send_raw(&pipeline);
            out.extend((0..2).map(|_| String::from_utf8_lossy(&c.reply()).into_owned()));
            out.push(c.call(&["PING"]));
            out
        };
        let (direct, proxied) = (run(redis.addr()), run(proxy.resp_addr()));
        assert_eq!(proxied, direct, "resp3={resp3}");
    }
}

#[test]
fn a_refused_handover_is_not_taken_for_the_clients_own_reply() {
    // The proxy's user may not subscribe to `__redis__:invalidate`: its
    // refusal of the handover is dropped, and the client's SUBSCRIBE gets
    // Redis's own confirmation, as a client of that user alone gets it.
    let (backend, proxy) = start(&[]);
    let _: () = backend.cmd(&["ACL", "SETUSER", "default", "resetchannels", "&other"]);
    let run = |addr, handover: bool| {
        let mut c = RespConn::open(addr);
        if handover {
            let here = c.call(&["SUBSCRIBE", "__redis__:invalidate"]);
            assert!(here.ends_with(":1\r\n"), "{here}");
        }
        vec![c.call(&["SUBSCRIBE", "other"]), c.call(&["PING"])]
    };
    assert_eq!(run(proxy.resp_addr(), true), run(backend.addr(), false));
}

#[test]
fn quit_pipelined_behind_subscribed_commands_comes_after_their_replies() {
    let redis = RedisServer::start();
    let (_backend, proxy) = start(&[]);
    for hello in [&b""[..], b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"] {
        let run = |addr| {
            let mut stream = connect(addr);
            let mut pipeline = hello.to_vec();
            for words in [&[&b"SUBSCRIBE"[..], b"a"][..], &[b"PING"], &[b"QUIT"]] {
                pipeline.extend(resp_command(words));
            }
            stream.write_all(&pipeline).expect("send");
            let all = String::from_utf8_lossy(&read_until_closed(&mut stream)).into_owned();
            // HELLO's map differs by design (server, version, id).
            match all.find(">3\r\n") {
                Some(at) if !hello.is_empty() => all[at..].to_owned(),
                _ => all,
            }
        };
        let (direct, proxied) = (run(redis.addr()), run(proxy.resp_addr()));
        assert_eq!(proxied, direct);
    }
}

/// A RESP2 client subscribed to the proxy's own channel sends what the
/// proxy would forward: Redis's connection is not subscribed and would run
/// it, so the proxy refuses it as Redis refuses it in Pub/Sub mode (an
/// unknown command or subcommand, then the arity, then "Can't execute",
/// EXEC's as EXECABORT), blocking commands and cached reads included;
/// RESP3 runs them all, as Redis does.
#[test]
fn forwarded_commands_while_subscribed_here_answer_as_redis() {
    same_replies(&[
        // Forwarded first, so the proxy has read Redis's command table.
        (&["SET", "k", "v"], 1),
        (&["SUBSCRIBE", "__redis__:invalidate"], 1),
        (&["SET", "k", "v2"], 1),
        (&["INCR", "n"], 1),
        (&["SET", "k"], 1),
        (&["GET", "k"], 1),
        (&["HGETALL", "h"], 1),
        (&["BLPOP", "l", "0.01"], 1),
        (&["MULTI"], 1),
        (&["EXEC"], 1),
        (&["EXEC", "x"], 1),
        (&["XINFO", "NOSUCH"], 1),
        (&["XINFO"], 1),
        (&["XINFO", "STREAM", "s"], 1),
        (&["CLIENT", "NOSUCH"], 1),
        (&["NOSUCH", "a\0b", "c\r\nd"], 1),
        (&["EVAL", "return 1", "0"], 1),
        (&["UNSUBSCRIBE"], 1),
        (&["GET", "k"], 1),
        (&["INCR", "n"], 1),
    ]);
}
