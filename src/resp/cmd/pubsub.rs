//! `SUBSCRIBE` and `UNSUBSCRIBE`, for one channel only:
//! `__redis__:invalidate`, where a RESP2 client's `CLIENT TRACKING ...
//! REDIRECT` messages arrive. The proxy relays no other Pub/Sub.

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
        confirm(context, b"subscribe", 1);
    }
    Outcome::Ok
}

pub fn unsubscribe(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    if args.is_empty() || args.contains(&CHANNEL) {
        context.session.subscribed = false;
    }
    let count = usize::from(context.session.subscribed);
    if args.is_empty() {
        confirm(context, b"unsubscribe", count);
    }
    for _ in args {
        confirm(context, b"unsubscribe", count);
    }
    Outcome::Ok
}

/// `subscribe|unsubscribe <channel> <count>`, as a push in RESP3.
fn confirm(context: &mut Context<'_>, kind: &[u8], count: usize) {
    let replies = &mut *context.replies;
    replies.push(3);
    replies.bulk(kind);
    replies.bulk(CHANNEL);
    replies.integer(i64::try_from(count).unwrap_or(i64::MAX));
}
