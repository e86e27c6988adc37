//! Commands run against a service whose Redis is never reached: what each
//! answers, byte for byte.

use std::sync::Arc;

use crate::backend::Backend;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::Service;

use super::super::reply::Replies;
use super::super::session::Session;
use super::{execute, Step};

fn service() -> Service {
    // Nothing listens on port 1; nothing here reads from Redis.
    let config = Config::from_lookup(|name| match name {
        "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
        "INVALIDATION" => Some("off".to_owned()),
        _ => None,
    })
    .expect("valid config");
    let backend = Backend::new(&config).expect("backend");
    Service::new(&config, backend, Arc::new(Metrics::new()))
}

/// Runs one command on a fresh session; its reply as text.
fn run(words: &[&str]) -> String {
    let service = service();
    let mut session = Session::new(7);
    run_on(&service, &mut session, words)
}

fn run_on(service: &Service, session: &mut Session, words: &[&str]) -> String {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut replies = Replies::new();
    match execute(&args, session, &mut replies, service, 1) {
        Step::Done => String::from_utf8_lossy(&replies.buf).into_owned(),
        Step::Fetch(_) => "(fetch)".to_owned(),
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
    assert!(reply.starts_with("%7\r\n"), "{reply}");
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
    assert!(client.starts_with("*11\r\n"), "{client}");
    let command = run(&["COMMAND", "HELP"]);
    for sub in ["COUNT", "DOCS", "INFO", "HELP"] {
        assert!(command.contains(sub), "{command}");
    }
    assert!(run(&["CLIENT", "KILL"]).contains("Try CLIENT HELP."));
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
    for word in ["everything", "all", "default"] {
        assert_eq!(headers(&run(&["INFO", word])), headers(&all), "INFO {word}");
    }
    assert_eq!(run(&["INFO", "nosuchsection"]), "$0\r\n\r\n");
}

#[test]
fn errors_and_answers_are_counted_apart() {
    let service = service();
    let mut session = Session::new(1);
    run_on(&service, &mut session, &["PING"]);
    run_on(&service, &mut session, &["NOSUCH"]);
    run_on(&service, &mut session, &["GET"]);
    let text = service.metrics().render();
    assert!(text.contains("redis_proxy_requests_total{protocol=\"resp\",status=\"ok\"} 1\n"));
    assert!(text.contains("redis_proxy_requests_total{protocol=\"resp\",status=\"error\"} 2\n"));
}
