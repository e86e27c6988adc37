//! Commands run against a service whose Redis is never reached: what each
//! answers, byte for byte.

use std::sync::Arc;

use crate::backend::Backend;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::Service;

use super::super::reply::Replies;
use super::super::session::Session;
use super::{execute, own_index, Executed, Peers, Registry};

fn service() -> Service {
    service_with(&[])
}

/// A service with these settings besides the defaults.
fn service_with(settings: &[(&str, &str)]) -> Service {
    // Nothing listens on port 1; nothing here reads from Redis.
    let config = Config::from_lookup(|name| {
        let set = settings.iter().find(|(set, _)| *set == name);
        match (name, set) {
            (_, Some((_, value))) => Some((*value).to_owned()),
            ("REDIS_ADDRESS", None) => Some("127.0.0.1:1".to_owned()),
            ("INVALIDATION", None) => Some("off".to_owned()),
            _ => None,
        }
    })
    .expect("valid config");
    let backend = Backend::new(&config).expect("backend");
    Service::new(
        &config,
        backend,
        Arc::new(Metrics::new()),
        crate::clock::Clock::system(),
    )
}

/// Runs one command on a fresh session; its reply as text.
fn run(words: &[&str]) -> String {
    let service = service();
    let mut session = Session::new(7, 0);
    run_on(&service, &mut session, words)
}

fn run_on(service: &Service, session: &mut Session, words: &[&str]) -> String {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut replies = Replies::new();
    let clients = Registry::default();
    let token = mio::Token(session.id as usize);
    clients.opened(session.id, token, None, None, 9, 0);
    let peers = Peers {
        live: 1,
        exists: &|id| id == 3,
        worker_free: true,
        clients: &clients,
        prefix_room: crate::resp::tracking::PrefixRoom {
            elsewhere: 0,
            max_bytes: 1 << 20,
        },
    };
    match execute(
        &args,
        own_index(args[0]),
        session,
        &mut replies,
        service,
        &peers,
    ) {
        Executed::Done => String::from_utf8_lossy(&replies.buf).into_owned(),
        Executed::Fetch(_) => "(fetch)".to_owned(),
    }
}

#[test]
fn names_are_case_insensitive_and_reads_go_to_a_worker() {
    assert_eq!(run(&["get", "k"]), "(fetch)");
    assert_eq!(run(&["GeT", "k"]), "(fetch)");
    assert_eq!(run(&["MGET", "a", "b"]), "(fetch)");
    assert_eq!(run(&["PiNg"]), "+PONG\r\n");
}

#[test]
fn wrong_arity_is_worded_as_redis_words_it() {
    assert_eq!(
        run(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert!(run(&["get", "a", "b"]).starts_with("-ERR wrong number"));
    assert!(run(&["mget"]).starts_with("-ERR wrong number"));
    assert!(run(&["echo"]).starts_with("-ERR wrong number"));
    assert_eq!(
        run(&["CLIENT", "SETNAME"]),
        "-ERR wrong number of arguments for 'client|setname' command\r\n"
    );
}

#[test]
fn writes_are_unknown_and_never_fetched() {
    assert!(run(&["SET", "k", "v"]).starts_with("-ERR unknown command 'SET'"));
    assert!(run(&["FLUSHALL"]).starts_with("-ERR unknown command"));
}

#[test]
fn hello_switches_protocol_and_checks_credentials_as_a_passwordless_redis() {
    let reply = run(&["HELLO", "3", "AUTH", "default", "any", "SETNAME", "me"]);
    assert!(reply.starts_with("%8\r\n"), "{reply}");
    // Redis's own version once read; here, where Redis is never reached,
    // the oldest the proxy supports.
    assert!(
        reply.contains("$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0"),
        "{reply}"
    );
    // RESP_REPORTED_VERSION fixes it (redis-py turns its own cache on for
    // a server named redis, 7.4 or later), whatever Redis runs.
    let fixed = service_with(&[("RESP_REPORTED_VERSION", "7.4.0")]);
    let reply = run_on(&fixed, &mut Session::new(7, 0), &["HELLO", "3"]);
    assert!(
        reply.contains("$7\r\nversion\r\n$5\r\n7.4.0\r\n"),
        "{reply}"
    );
    let reply = run_on(&fixed, &mut Session::new(7, 0), &["INFO", "server"]);
    assert!(reply.contains("\r\nredis_version:7.4.0\r\n"), "{reply}");
    assert_eq!(
        run(&["HELLO", "3", "AUTH", "someone", "pw"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(run(&["HELLO", "3", "BOGUS"]).starts_with("-ERR Syntax error"));
    assert!(run(&["HELLO", "4"]).starts_with("-NOPROTO"));
}

#[test]
fn auth_answers_as_a_passwordless_redis_7() {
    assert_eq!(
        run(&["AUTH", "pw"]),
        "-ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(run(&["AUTH", "default", "pw"]), "+OK\r\n");
    assert_eq!(
        run(&["AUTH", "someone", "pw"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(run(&["AUTH"]).starts_with("-ERR wrong number"));
}

#[test]
fn help_lists_the_subcommands_served() {
    let client = run(&["CLIENT", "HELP"]);
    for sub in ["GETNAME", "ID", "SETINFO", "SETNAME", "HELP"] {
        assert!(client.contains(&format!("+{sub}")), "{client}");
    }
    for sub in ["LIST", "INFO", "KILL <option>", "NO-EVICT"] {
        assert!(client.contains(&format!("+{sub}")), "{client}");
    }
    assert!(client.starts_with("*30\r\n"), "{client}");
    let command = run(&["COMMAND", "HELP"]);
    for sub in ["COUNT", "DOCS", "INFO", "HELP"] {
        assert!(command.contains(sub), "{command}");
    }
    assert!(run(&["CLIENT", "NOSUCH"]).contains("Try CLIENT HELP."));
}

#[test]
fn info_filters_sections_as_redis_does() {
    let all = run(&["INFO"]);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Stats",
        "# Invalidation",
        "# Keyspace",
    ] {
        assert!(all.contains(section), "{section} missing from {all}");
    }
    for field in [
        "used_memory:",
        "connected_clients:1",
        "blocked_clients:0",
        "total_connections_received:",
        "total_commands_processed:",
        "instantaneous_ops_per_sec:",
        "keyspace_hits:0",
    ] {
        assert!(all.contains(field), "{field} missing from {all}");
    }
    let keyspace = run(&["INFO", "keyspace"]);
    assert!(
        keyspace.contains("# Keyspace") && !keyspace.contains("# Server"),
        "{keyspace}"
    );
    let two = run(&["info", "CLIENTS", "stats"]);
    assert!(two.contains("# Clients") && two.contains("# Stats") && !two.contains("# Memory"));
    let headers = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(headers(&run(&["INFO", "default"])), headers(&all));
    // `all` and `everything` add what Redis leaves out by default.
    for word in ["everything", "all"] {
        let mut more = headers(&run(&["INFO", word]));
        assert!(more.contains(&"# Commandstats".to_owned()), "INFO {word}");
        more.retain(|h| h != "# Commandstats");
        assert_eq!(more, headers(&all), "INFO {word}");
    }
    assert_eq!(run(&["INFO", "nosuchsection"]), "$0\r\n\r\n");
}

#[test]
fn errors_and_answers_are_counted_apart() {
    let service = service();
    let mut session = Session::new(1, 0);
    run_on(&service, &mut session, &["PING"]);
    run_on(&service, &mut session, &["NOSUCH"]);
    run_on(&service, &mut session, &["GET"]);
    let text = service.metrics().render();
    assert!(text.contains("redis_proxy_requests_total{protocol=\"resp\",status=\"ok\"} 1\n"));
    assert!(text.contains("redis_proxy_requests_total{protocol=\"resp\",status=\"error\"} 2\n"));
}

#[test]
fn client_tracking_answers_as_redis_and_refuses_when_the_proxy_hears_no_writes() {
    assert_eq!(
        run(&["CLIENT", "TRACKING", "ON", "PREFIX", "a"]),
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"]),
        "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "TRACKING", "ON", "REDIRECT", "99"]),
        "-ERR The client ID you want redirect to does not exist\r\n"
    );
    assert!(run(&["CLIENT", "TRACKING", "MAYBE"]).starts_with("-ERR syntax error"));
    // INVALIDATION=off here: no client may believe it is coherent.
    assert!(run(&["CLIENT", "TRACKING", "ON"]).starts_with("-ERR this proxy cannot track"));
    assert!(run(&["CLIENT", "TRACKING", "ON", "REDIRECT", "3", "BCAST"])
        .starts_with("-ERR this proxy cannot track"));
    assert_eq!(run(&["CLIENT", "GETREDIR"]), ":-1\r\n");
    assert_eq!(
        run(&["CLIENT", "TRACKINGINFO"]),
        "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert!(
        run(&["CLIENT", "CACHING", "YES"]).starts_with("-ERR CLIENT CACHING can be called only")
    );
}

#[test]
fn only_the_invalidation_channel_can_be_subscribed_and_then_only_pubsub_runs() {
    assert!(run(&["SUBSCRIBE", "news"]).starts_with("-ERR this proxy relays only"));
    let service = service();
    let mut session = Session::new(7, 0);
    assert_eq!(
        run_on(
            &service,
            &mut session,
            &["SUBSCRIBE", "__redis__:invalidate"]
        ),
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"
    );
    assert!(run_on(&service, &mut session, &["GET", "k"]).starts_with("-ERR Can't execute 'get'"));
    assert_eq!(
        run_on(&service, &mut session, &["PING"]),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
    assert_eq!(
        run_on(&service, &mut session, &["UNSUBSCRIBE"]),
        "*3\r\n$11\r\nunsubscribe\r\n$20\r\n__redis__:invalidate\r\n:0\r\n"
    );
    assert_eq!(run_on(&service, &mut session, &["GET", "k"]), "(fetch)");
}

#[test]
fn select_checks_the_index_as_redis_does() {
    let not_integer = "-ERR value is not an integer or out of range\r\n";
    for bad in ["x", "01", "-0", "+1", " 1", "1.0", "99999999999999999999"] {
        assert_eq!(run(&["SELECT", bad]), not_integer, "SELECT {bad}");
    }
    let out_of_range = "-ERR DB index is out of range\r\n";
    assert_eq!(run(&["SELECT", "-1"]), out_of_range);
    // Redis's own `databases` is not known here: its default, 16.
    assert_eq!(run(&["SELECT", "16"]), out_of_range);
    let service = service();
    let mut session = Session::new(7, 0);
    assert_eq!(run_on(&service, &mut session, &["SELECT", "15"]), "+OK\r\n");
    assert_eq!(session.db, 15);
    assert_eq!(run_on(&service, &mut session, &["SELECT", "0"]), "+OK\r\n");
    assert_eq!(session.db, 0);
}

#[test]
fn client_kill_and_list_check_their_options_as_redis_does() {
    assert_eq!(
        run(&["CLIENT", "KILL", "ID", "0"]),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "KILL", "TYPE", "foo"]),
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "KILL", "USER", "bob"]),
        "-ERR No such user 'bob'\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "KILL", "SKIPME", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&["CLIENT", "KILL", "1.2.3.4:5"]),
        "-ERR No such client\r\n"
    );
    assert_eq!(run(&["CLIENT", "KILL", "ID", "999"]), ":0\r\n");
    assert_eq!(
        run(&["CLIENT", "LIST", "ID", "x"]),
        "-ERR Invalid client ID\r\n"
    );
    assert_eq!(run(&["CLIENT", "LIST", "FOO"]), "-ERR syntax error\r\n");
    let list = run(&["CLIENT", "LIST"]);
    assert!(list.contains("id=7 addr= laddr= fd=9 name= "), "{list}");
    assert!(
        list.contains(" cmd=client|list user=default redir=-1 resp=2"),
        "{list}"
    );
    assert!(run(&["CLIENT", "PAUSE", "10"]).contains("changes the server itself"));
}

#[test]
fn select_in_cluster_mode_and_without_forwarding_answers_as_documented() {
    let cluster = service_with(&[("REDIS_MODE", "cluster")]);
    let mut session = Session::new(7, 0);
    assert_eq!(
        run_on(&cluster, &mut session, &["SELECT", "1"]),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(run_on(&cluster, &mut session, &["SELECT", "0"]), "+OK\r\n");
    let off = service_with(&[("RESP_FORWARD", "off")]);
    assert_eq!(
        run_on(&off, &mut session, &["SELECT", "1"]),
        "-ERR with RESP_FORWARD=off the proxy serves only database 0\r\n"
    );
    assert_eq!(session.db, 0);
}
