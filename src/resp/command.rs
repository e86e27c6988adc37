//! Requests to commands: the name (any case) and arity checked, arguments
//! borrowed from the connection's buffer.
//!
//! ```text
//! GET key                     MGET key [key ...]
//! PING [message]              ECHO message
//! QUIT                        HELLO [protover [AUTH user pass] [SETNAME name]]
//! CLIENT SETNAME name | GETNAME | SETINFO attr value | ID
//! SELECT 0                    COMMAND [COUNT | DOCS ... | INFO name ...]
//! CONFIG GET parameter ...    INFO [section ...]
//! ```
//!
//! Anything else, writes included, is [`Command::Unknown`]: answered with
//! `-ERR unknown command`, never forwarded to the backing Redis.

/// One parsed command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Read one key through the cache.
    Get(&'a [u8]),
    /// Read several keys through the cache.
    MGet(Vec<&'a [u8]>),
    /// `+PONG`, or the message back.
    Ping(Option<&'a [u8]>),
    /// The message back.
    Echo(&'a [u8]),
    /// `+OK`, then close.
    Quit,
    /// Switch protocol version and describe the server.
    Hello {
        /// The requested version, as sent.
        version: Option<&'a [u8]>,
        /// `SETNAME name`, if given.
        name: Option<&'a [u8]>,
    },
    /// `CLIENT SETNAME`.
    ClientSetName(&'a [u8]),
    /// `CLIENT GETNAME`.
    ClientGetName,
    /// `CLIENT SETINFO`: accepted and ignored.
    ClientSetInfo,
    /// `CLIENT ID`.
    ClientId,
    /// `SELECT db`: only the configured database exists.
    Select(&'a [u8]),
    /// `COMMAND`: every command's description.
    CommandList,
    /// `COMMAND COUNT`.
    CommandCount,
    /// `COMMAND DOCS [name ...]`: answered with an empty map.
    CommandDocs,
    /// `COMMAND INFO name ...`.
    CommandInfo(Vec<&'a [u8]>),
    /// `CONFIG GET parameter ...`.
    ConfigGet(Vec<&'a [u8]>),
    /// `INFO [section ...]`: the proxy's own figures.
    Info,
    /// Wrong arity or an unknown subcommand: the error to send.
    Invalid(String),
    /// A command the proxy does not serve.
    Unknown(&'a [u8], Vec<&'a [u8]>),
}

/// Name, arity (as Redis counts it: negative means "at least") and flags of
/// every command served, for `COMMAND`.
pub const TABLE: &[(&str, i64, &[&str])] = &[
    ("get", 2, &["readonly", "fast"]),
    ("mget", -2, &["readonly", "fast"]),
    ("ping", -1, &["fast"]),
    ("echo", 2, &["fast"]),
    ("quit", -1, &["fast"]),
    ("hello", -1, &["fast", "no_auth"]),
    ("client", -2, &[]),
    ("select", 2, &["fast"]),
    ("command", -1, &[]),
    ("config", -2, &[]),
    ("info", -1, &[]),
];

fn arity_error(name: &str) -> Command<'static> {
    Command::Invalid(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

fn subcommand_error(sub: &[u8], name: &str) -> Command<'static> {
    Command::Invalid(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        name.to_uppercase()
    ))
}

impl<'a> Command<'a> {
    /// Parses the arguments of one request (the command name first).
    pub fn parse(args: &[&'a [u8]]) -> Command<'a> {
        let Some((&name, rest)) = args.split_first() else {
            return Command::Invalid("ERR empty command".to_owned());
        };
        let is = |expected: &str| name.eq_ignore_ascii_case(expected.as_bytes());
        if is("get") {
            match rest {
                [key] => Command::Get(key),
                _ => arity_error("get"),
            }
        } else if is("mget") {
            if rest.is_empty() {
                arity_error("mget")
            } else {
                Command::MGet(rest.to_vec())
            }
        } else if is("ping") {
            match rest {
                [] => Command::Ping(None),
                [message] => Command::Ping(Some(message)),
                _ => arity_error("ping"),
            }
        } else if is("echo") {
            match rest {
                [message] => Command::Echo(message),
                _ => arity_error("echo"),
            }
        } else if is("quit") {
            Command::Quit
        } else if is("hello") {
            parse_hello(rest)
        } else if is("client") {
            parse_client(rest)
        } else if is("select") {
            match rest {
                [db] => Command::Select(db),
                _ => arity_error("select"),
            }
        } else if is("command") {
            parse_command(rest)
        } else if is("config") {
            match rest.split_first() {
                Some((sub, params)) if sub.eq_ignore_ascii_case(b"get") && !params.is_empty() => {
                    Command::ConfigGet(params.to_vec())
                }
                Some((sub, _)) if sub.eq_ignore_ascii_case(b"get") => arity_error("config|get"),
                Some((sub, _)) => subcommand_error(sub, "config"),
                None => arity_error("config"),
            }
        } else if is("info") {
            Command::Info
        } else {
            Command::Unknown(name, rest.to_vec())
        }
    }
}

fn parse_hello<'a>(rest: &[&'a [u8]]) -> Command<'a> {
    let Some((&version, mut options)) = rest.split_first() else {
        return Command::Hello {
            version: None,
            name: None,
        };
    };
    let mut name = None;
    while let Some((&option, tail)) = options.split_first() {
        if option.eq_ignore_ascii_case(b"auth") && tail.len() >= 2 {
            // No authentication in the proxy: credentials are accepted as
            // Redis accepts them for a user without a password.
            options = &tail[2..];
        } else if option.eq_ignore_ascii_case(b"setname") && !tail.is_empty() {
            name = Some(tail[0]);
            options = &tail[1..];
        } else {
            return Command::Invalid(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            ));
        }
    }
    Command::Hello {
        version: Some(version),
        name,
    }
}

fn parse_client<'a>(rest: &[&'a [u8]]) -> Command<'a> {
    let Some((&sub, args)) = rest.split_first() else {
        return arity_error("client");
    };
    let is = |expected: &[u8]| sub.eq_ignore_ascii_case(expected);
    match args {
        [name] if is(b"setname") => Command::ClientSetName(name),
        [] if is(b"getname") => Command::ClientGetName,
        [] if is(b"id") => Command::ClientId,
        [_, _] if is(b"setinfo") => Command::ClientSetInfo,
        _ if is(b"setname") => arity_error("client|setname"),
        _ if is(b"getname") => arity_error("client|getname"),
        _ if is(b"id") => arity_error("client|id"),
        _ if is(b"setinfo") => arity_error("client|setinfo"),
        _ => subcommand_error(sub, "client"),
    }
}

fn parse_command<'a>(rest: &[&'a [u8]]) -> Command<'a> {
    let Some((&sub, args)) = rest.split_first() else {
        return Command::CommandList;
    };
    let is = |expected: &[u8]| sub.eq_ignore_ascii_case(expected);
    if is(b"count") {
        if args.is_empty() {
            Command::CommandCount
        } else {
            arity_error("command|count")
        }
    } else if is(b"docs") {
        Command::CommandDocs
    } else if is(b"info") {
        Command::CommandInfo(args.to_vec())
    } else {
        subcommand_error(sub, "command")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&'static str]) -> Command<'static> {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        Command::parse(&args)
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(parse(&["get", "k"]), Command::Get(b"k"));
        assert_eq!(parse(&["GeT", "k"]), Command::Get(b"k"));
        assert_eq!(parse(&["MGET", "a", "b"]), Command::MGet(vec![b"a", b"b"]));
    }

    #[test]
    fn wrong_arity_is_worded_as_redis_words_it() {
        assert_eq!(
            parse(&["GET"]),
            Command::Invalid("ERR wrong number of arguments for 'get' command".to_owned())
        );
        assert!(matches!(parse(&["get", "a", "b"]), Command::Invalid(_)));
        assert!(matches!(parse(&["mget"]), Command::Invalid(_)));
        assert!(matches!(parse(&["echo"]), Command::Invalid(_)));
    }

    #[test]
    fn writes_are_unknown() {
        assert!(matches!(
            parse(&["SET", "k", "v"]),
            Command::Unknown(b"SET", _)
        ));
        assert!(matches!(parse(&["FLUSHALL"]), Command::Unknown(..)));
    }

    #[test]
    fn hello_options() {
        assert_eq!(
            parse(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "me"]),
            Command::Hello {
                version: Some(b"3"),
                name: Some(b"me")
            }
        );
        assert!(matches!(
            parse(&["HELLO", "3", "BOGUS"]),
            Command::Invalid(_)
        ));
    }
}
