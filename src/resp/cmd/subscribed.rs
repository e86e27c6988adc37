//! What a RESP2 client subscribed to the proxy's own invalidation channel
//! is answered for a command Redis does not run in that state (Redis 7.0's
//! `processCommand`: only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and
//! RESET; RESP3 allows everything). The proxy cannot send such a command to
//! Redis, whose connection is not subscribed and would run it, so it words
//! the refusal itself from Redis's command table, with Redis's checks in
//! Redis's order: an unknown command, an unknown subcommand, a wrong number
//! of arguments, then the subscribed-mode error. Off the hot path: every
//! answer here is an error.
//!
//! The texts are Redis's byte for byte, as `rejectCommandFormat` makes
//! them: names and arguments cut at a NUL byte and at 128 bytes as its
//! `%.128s` cuts them, raw (not UTF-8 checked), `\r` and `\n` turned into
//! spaces by the reply writer.

use crate::commands::CommandTable;

/// The commands that go over a client's subscription at Redis: the
/// Pub/Sub commands and `PING`, whose reply Redis shapes by the
/// subscription (`*2 pong` in RESP2's Pub/Sub mode).
pub const OVER_SUBSCRIPTION: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "ping",
];

/// Whether command `name` (lower case) runs in RESP2 Pub/Sub mode: those
/// above, QUIT and RESET.
pub fn allowed(name: &str) -> bool {
    OVER_SUBSCRIPTION.contains(&name) || name == "quit" || name == "reset"
}

/// The error request `args` (the command name first) gets in RESP2 Pub/Sub
/// mode, its text without the leading `-`. `table`: Redis's, if read yet;
/// without it, the request is named `fallback` (the proxy's own name for
/// it), as if Redis knew it with that arity.
pub fn refusal(args: &[&[u8]], table: Option<&CommandTable>, fallback: &str) -> Vec<u8> {
    refused_in_state(args, table, fallback, |name| {
        ("ERR ", not_in_this_context(name))
    })
}

/// The error request `args` gets from a client that has not given
/// PROXY_PASSWORD, as Redis 7.0 (`processCommand`) words it: its command
/// checks first, as above, then `NOAUTH` (for `EXEC`, `EXECABORT`). Redis
/// 7.0 is the oldest the proxy supports, the one it is tested against.
pub fn unauthenticated(args: &[&[u8]], table: Option<&CommandTable>, fallback: &str) -> Vec<u8> {
    refused_in_state(args, table, fallback, |_| {
        ("NOAUTH ", "Authentication required.".to_owned())
    })
}

/// Redis's checks of request `args`, in Redis's order (an unknown command,
/// an unknown subcommand, a wrong number of arguments), then the error
/// the connection's state gets (`state`: its code and text, given the
/// command's name). Without the table, only the state's error, the
/// request named `fallback`.
fn refused_in_state(
    args: &[&[u8]],
    table: Option<&CommandTable>,
    fallback: &str,
    state: impl Fn(&str) -> (&'static str, String),
) -> Vec<u8> {
    let Some(table) = table else {
        let (code, text) = state(fallback);
        return rejected(fallback, code, &text);
    };
    let Some(base) = args.first().and_then(|name| table.get(name)) else {
        return unknown_command(args);
    };
    let command = match args.get(1) {
        Some(_) if base.container => match table.lookup(args) {
            Some(command) => command,
            None => return unknown_subcommand(args),
        },
        _ => base,
    };
    if !command.arity_fits(args.len()) {
        let text = format!("wrong number of arguments for '{}' command", command.name);
        return rejected(&command.name, "ERR ", &text);
    }
    let (code, text) = state(&command.name);
    rejected(&command.name, code, &text)
}

/// `-ERR unknown command`, as Redis 7.0 words it: the name (128 bytes at
/// most), then each argument quoted and followed by a space until 128
/// bytes of them are listed, the last cut to fit.
pub fn unknown_command(args: &[&[u8]]) -> Vec<u8> {
    let (name, rest) = match args.split_first() {
        Some((name, rest)) => (*name, rest),
        None => (&b""[..], &[][..]),
    };
    let mut out = b"ERR unknown command '".to_vec();
    out.extend_from_slice(c_str(name, 128));
    out.extend_from_slice(b"', with args beginning with: ");
    let mut listed = 0;
    for arg in rest {
        if listed >= 128 {
            break;
        }
        let arg = c_str(arg, 128 - listed);
        out.push(b'\'');
        out.extend_from_slice(arg);
        out.extend_from_slice(b"' ");
        listed += arg.len() + 3;
    }
    out
}

/// `-ERR unknown subcommand 'sub'. Try NAME HELP.`: the container's name
/// as the client wrote it, upper-cased.
fn unknown_subcommand(args: &[&[u8]]) -> Vec<u8> {
    let name = c_str(args.first().copied().unwrap_or_default(), usize::MAX);
    let sub = c_str(args.get(1).copied().unwrap_or_default(), 128);
    let mut out = b"ERR unknown subcommand '".to_vec();
    out.extend_from_slice(sub);
    out.extend_from_slice(b"'. Try ");
    out.extend(name.iter().map(u8::to_ascii_uppercase));
    out.extend_from_slice(b" HELP.");
    out
}

fn not_in_this_context(name: &str) -> String {
    format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
}

/// A refusal of a command Redis knows: `code` (`ERR `, `NOAUTH `) and
/// `text`, or for `EXEC` `EXECABORT Transaction discarded because of: `
/// and the text, its code dropped if `ERR ` (Redis's `rejectCommand`
/// aborts a transaction so).
fn rejected(name: &str, code: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if name == "exec" {
        out.extend_from_slice(b"EXECABORT Transaction discarded because of: ");
    }
    if name != "exec" || code != "ERR " {
        out.extend_from_slice(code.as_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out
}

/// `bytes` as C's `%.{max}s` prints them: up to the first NUL, at most
/// `max` bytes.
fn c_str(bytes: &[u8], max: usize) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end.min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_are_listed_as_redis_lists_them() {
        assert_eq!(
            unknown_command(&[b"FOO", b"bar", b"b\0az"]),
            b"ERR unknown command 'FOO', with args beginning with: 'bar' 'b' ".to_vec()
        );
        assert_eq!(
            unknown_command(&[b"FOO"]),
            b"ERR unknown command 'FOO', with args beginning with: ".to_vec()
        );
        // 128 bytes of arguments, the last one cut to fit.
        let long = [b'x'; 200];
        let message = unknown_command(&[b"FOO", b"ab", &long, b"never"]);
        let listed = &message[b"ERR unknown command 'FOO', with args beginning with: ".len()..];
        assert_eq!(listed.len(), 5 + 123 + 3);
        assert!(listed.ends_with(b"x' "));
    }

    #[test]
    fn without_the_table_the_fallback_name_is_refused() {
        let message = refusal(&[b"SET", b"k", b"v"], None, "set");
        assert!(message.starts_with(b"ERR Can't execute 'set': only (P|S)SUBSCRIBE"));
        let message = refusal(&[b"EXEC"], None, "exec");
        assert!(message.starts_with(b"EXECABORT Transaction discarded because of: Can't"));
    }
}
