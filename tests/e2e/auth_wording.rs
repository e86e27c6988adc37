//! What the proxy answers around PROXY_PASSWORD where its words once
//! differed from Redis 7.0's (audit findings 6 and 8): `ACL WHOAMI`, which
//! named the proxy's own Redis user, and the checks before AUTH (an
//! unknown command or a wrong arity first, `EXEC`'s `EXECABORT`, `HELLO`'s
//! text). Compared byte for byte with a redis-server run with
//! `--requirepass` and no other user, as the proxy's clients see it.

use std::net::SocketAddr;

use crate::common::resp_wire::{show, Wire};
use crate::common::{InProcess, RedisServer};

const PASSWORD: &str = "s3cret-proxy-pw";

/// The proxy (in this process) asking for PASSWORD, on a Redis where it is
/// user `app` (allowed everything); the reference Redis with
/// `--requirepass PASSWORD`; and the backing Redis, kept alive.
fn start() -> (RedisServer, InProcess, RedisServer) {
    let backing = RedisServer::start();
    let address = backing.acl_user("app", "app-pw", &["+@all"]);
    let settings = [("RESP_PORT", "auto"), ("PROXY_PASSWORD", PASSWORD)];
    let proxy = InProcess::start_at(&address, &settings);
    // Redis's command table, which the proxy reads at its first forwarded
    // command, is what it checks commands against before AUTH.
    let mut wire = Wire::connect(proxy.resp_addr());
    assert_eq!(wire.call_args(&["AUTH", PASSWORD]), b"+OK\r\n");
    assert_eq!(wire.call_args(&["SET", "warm", "1"]), b"+OK\r\n");
    let reference = RedisServer::start_with(&["--requirepass", PASSWORD]);
    (backing, proxy, reference)
}

/// Request lines (see `resp_wire::words`), each sent as a RESP array.
fn requests(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|line| crate::common::resp_wire::encode_line(line))
        .collect()
}

/// The replies `addr` gives to `lines`, sent in one write on a new
/// connection, shown as text.
fn replies(addr: SocketAddr, lines: &[&str]) -> String {
    let mut wire = Wire::connect(addr);
    wire.send(&requests(lines));
    show(&wire.replies(lines.len()).concat())
}

#[test]
fn acl_whoami_names_the_default_user_as_redis_does() {
    let (_backing, proxy, reference) = start();
    let auth = format!("AUTH {PASSWORD}");
    let cases: [&[&str]; 5] = [
        &[&auth, "ACL WHOAMI"],
        &[&auth, "acl whoami"],
        &[&auth, "ACL WHOAMI extra"],
        // After WATCH the proxy holds a Redis connection of the client's.
        &[&auth, "WATCH x", "ACL WHOAMI", "UNWATCH"],
        // CLIENT KILL knows only the user the clients are: default.
        &[
            &auth,
            "CLIENT KILL USER app",
            "CLIENT KILL USER default SKIPME yes",
        ],
    ];
    for lines in cases {
        let expected = replies(reference.addr(), lines);
        assert_eq!(replies(proxy.resp_addr(), lines), expected, "{lines:?}");
    }
    assert!(replies(reference.addr(), &[&auth, "ACL WHOAMI"]).ends_with("$7\\r\\ndefault\\r\\n"));
    // RESP3: the same bulk string (HELLO's own reply, which names the
    // proxy, is left out).
    for addr in [proxy.resp_addr(), reference.addr()] {
        let mut wire = Wire::connect(addr);
        let hello = wire.call(&format!("HELLO 3 AUTH default {PASSWORD}"));
        assert!(hello.starts_with(b"%"), "{}", show(&hello));
        assert_eq!(show(&wire.call("ACL WHOAMI")), "$7\\r\\ndefault\\r\\n");
    }
}

#[test]
fn before_auth_redis_7_0_s_checks_and_words_come_first() {
    let (_backing, proxy, reference) = start();
    let auth = format!("AUTH {PASSWORD}");
    let cases: [&[&str]; 11] = [
        &["FOOBAR x"],
        &["GET"],
        &["CONFIG FOO"],
        &["CONFIG GET"],
        &["CLIENT NOSUCH"],
        &["SUBSCRIBE"],
        &["EXEC"],
        &["EXEC x"],
        &["MULTI", "EXEC"],
        &[&auth, "WATCH x", "RESET", "EXEC"],
        &["HELLO 3"],
    ];
    for lines in cases {
        let expected = replies(reference.addr(), lines);
        assert_eq!(replies(proxy.resp_addr(), lines), expected, "{lines:?}");
    }
    // What Redis answers -NOAUTH still is.
    for line in ["GET k", "CLIENT SETNAME n", "ACL WHOAMI"] {
        let ours = replies(proxy.resp_addr(), &[line]);
        assert_eq!(ours, "-NOAUTH Authentication required.\\r\\n", "{line}");
        assert_eq!(replies(reference.addr(), &[line]), ours, "{line}");
    }
    // Inline, the same.
    let mut wire = Wire::connect(proxy.resp_addr());
    wire.send(b"FOOBAR x\r\nEXEC\r\n");
    let ours = wire.replies(2).concat();
    let mut wire = Wire::connect(reference.addr());
    wire.send(b"FOOBAR x\r\nEXEC\r\n");
    assert_eq!(show(&ours), show(&wire.replies(2).concat()));
}
