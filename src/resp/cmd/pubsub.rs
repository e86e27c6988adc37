//! Pub/Sub answered by the proxy while a client has no subscription at
//! Redis: `SUBSCRIBE` to one channel only, `__redis__:invalidate`, where a
//! RESP2 client's `CLIENT TRACKING ... REDIRECT` messages arrive, and the
//! unsubscribe commands, counted as Redis counts them. Any other
//! subscription goes to Redis on a connection of the client's own
//! (`lanes.rs`), and from then on so does every Pub/Sub command (the
//! client's other commands do not: `subscribed.rs`).

use super::super::tracking::CHANNEL;
use super::{Context, Outcome, Spec};

/// `SUBSCRIBE channel [channel ...]`.
pub const SUBSCRIBE: Spec = Spec {
    name: "subscribe",
    arity: -2,
    flags: &["pubsub", "noscript", "loading", "stale"],
    keys: (0, 0, 0),
};

/// `UNSUBSCRIBE [channel ...]`.
pub const UNSUBSCRIBE: Spec = Spec {
    name: "unsubscribe",
    arity: -1,
    flags: &["pubsub", "noscript", "loading", "stale"],
    keys: (0, 0, 0),
};

/// `PUNSUBSCRIBE [pattern ...]`: answered here, as the client holds no
/// pattern (its first `PSUBSCRIBE` goes to Redis).
pub const PUNSUBSCRIBE: Spec = Spec {
    name: "punsubscribe",
    arity: -1,
    flags: &["pubsub", "noscript", "loading", "stale"],
    keys: (0, 0, 0),
};

/// `SUNSUBSCRIBE [shardchannel ...]`: answered here, as the client holds
/// no shard channel (its first `SSUBSCRIBE` goes to Redis).
pub const SUNSUBSCRIBE: Spec = Spec {
    name: "sunsubscribe",
    arity: -1,
    flags: &["pubsub", "noscript", "loading", "stale"],
    keys: (0, 0, 0),
};

pub fn subscribe(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    if let Some(other) = args.iter().find(|channel| **channel != CHANNEL) {
        return context.error(&format!(
            "ERR this proxy relays only the {} channel, not '{}'",
            String::from_utf8_lossy(CHANNEL),
            String::from_utf8_lossy(other)
        ));
    }
    for _ in args {
        context.session.subscribed = true;
        confirm(context, b"subscribe", Some(CHANNEL), 1);
    }
    Outcome::Ok
}

/// As Redis: one confirmation per channel named (subscribed or not), with
/// the count left; with none named, one per channel left, or one naming
/// no channel (nil) when there was none.
pub fn unsubscribe(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    if args.is_empty() {
        let channel = context.session.subscribed.then_some(CHANNEL);
        context.session.subscribed = false;
        confirm(context, b"unsubscribe", channel, 0);
    }
    for channel in args {
        if *channel == CHANNEL {
            context.session.subscribed = false;
        }
        let count = u64::from(context.session.subscribed);
        confirm(context, b"unsubscribe", Some(channel), count);
    }
    Outcome::Ok
}

/// No pattern is held here; the count is the channels' (Redis counts
/// channels and patterns together).
pub fn punsubscribe(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let count = u64::from(context.session.subscribed);
    none_held(args, b"punsubscribe", count, context)
}

/// No shard channel is held here (Redis counts them apart: 0).
pub fn sunsubscribe(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    none_held(args, b"sunsubscribe", 0, context)
}

fn none_held(args: &[&[u8]], kind: &[u8], count: u64, context: &mut Context<'_>) -> Outcome {
    if args.is_empty() {
        confirm(context, kind, None, count);
    }
    for name in args {
        confirm(context, kind, Some(name), count);
    }
    Outcome::Ok
}

/// `kind <channel> <count>`, as a push in RESP3; no channel: a nil.
fn confirm(context: &mut Context<'_>, kind: &[u8], channel: Option<&[u8]>, count: u64) {
    let replies = &mut *context.replies;
    replies.push(3);
    replies.bulk(kind);
    match channel {
        Some(channel) => replies.bulk(channel),
        None => replies.null(),
    }
    replies.integer(i64::try_from(count).unwrap_or(i64::MAX));
}

/// What a Pub/Sub confirmation from Redis says: whether it counts shard
/// channels, whether it confirms a subscribe, and the count. `None` for
/// anything else (a message, a reply).
pub fn confirmation(reply: &[u8]) -> Option<(bool, bool, u64)> {
    let rest = reply
        .strip_prefix(b"*3\r\n")
        .or_else(|| reply.strip_prefix(b">3\r\n"))?;
    let (shard, subscribe) = [
        (&b"$9\r\nsubscribe\r\n"[..], false, true),
        (b"$11\r\nunsubscribe\r\n", false, false),
        (b"$10\r\npsubscribe\r\n", false, true),
        (b"$12\r\npunsubscribe\r\n", false, false),
        (b"$10\r\nssubscribe\r\n", true, true),
        (b"$12\r\nsunsubscribe\r\n", true, false),
    ]
    .iter()
    .find(|(kind, _, _)| rest.starts_with(kind))
    .map(|&(_, shard, subscribe)| (shard, subscribe))?;
    // The count is the last line: `:<n>\r\n` after the channel.
    let body = reply.strip_suffix(b"\r\n")?;
    let at = body.windows(2).rposition(|w| w == b"\r\n")?;
    let count = std::str::from_utf8(body[at + 2..].strip_prefix(b":")?)
        .ok()?
        .parse()
        .ok()?;
    Some((shard, subscribe, count))
}

/// Whether `frame`, from a subscription at Redis, is a published message
/// (`message`, `pmessage`, `smessage`; an array in RESP2, a push in RESP3)
/// rather than a reply to a command.
pub fn is_message(frame: &[u8]) -> bool {
    let Some(rest) = frame.get(1..) else {
        return false;
    };
    matches!(frame.first(), Some(b'*' | b'>'))
        && (rest.starts_with(b"3\r\n$7\r\nmessage\r\n")
            || rest.starts_with(b"4\r\n$8\r\npmessage\r\n")
            || rest.starts_with(b"3\r\n$8\r\nsmessage\r\n"))
}

#[cfg(test)]
mod tests {
    use super::{confirmation, is_message};

    #[test]
    fn messages_are_told_from_replies() {
        assert!(is_message(b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n"));
        assert!(is_message(
            b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\na\r\n$1\r\nb\r\n"
        ));
        assert!(is_message(
            b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$1\r\nb\r\n"
        ));
        assert!(!is_message(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"));
        assert!(!is_message(b"%7\r\n$6\r\nserver\r\n"));
        assert!(!is_message(b""));
    }

    #[test]
    fn confirmations_are_read_and_messages_are_not() {
        let sub = b"*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n";
        assert_eq!(confirmation(sub), Some((false, true, 2)));
        let unsub = b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n";
        assert_eq!(confirmation(unsub), Some((false, false, 0)));
        let shard = b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:3\r\n";
        assert_eq!(confirmation(shard), Some((true, false, 3)));
        let message = b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\n:1\r\n";
        assert_eq!(confirmation(message), None);
        assert_eq!(confirmation(b"+OK\r\n"), None);
    }
}
