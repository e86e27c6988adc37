//! `CLIENT`: the subcommands clients send on connect, the list of the
//! proxy's clients and killing them (`clients.rs`), and `HELP`. Those that
//! would act on Redis's side of a connection the proxy shares (`REPLY`,
//! `NO-TOUCH`, `UNBLOCK`) are not supported; `PAUSE` and `UNPAUSE` change
//! the server itself and are refused (docs/forwarding.md).

use std::sync::Arc;

use super::super::tracking::{check_prefixes, check_room, TrackingMode};
use super::clients;
use super::connection::parse_integer;
use super::{help, subcommand_arity, unknown_subcommand, Context, Outcome, Spec};

/// `CLIENT subcommand ...`.
pub const CLIENT: Spec = Spec {
    name: "client",
    arity: -2,
    flags: &[],
    keys: (0, 0, 0),
};

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill the proxy's connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill the proxy's connections. Options: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE.",
    "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [...]]",
    "    Return information about the proxy's client connections.",
    "NO-EVICT (ON|OFF)",
    "    Accepted: the proxy evicts no client.",
    "SETINFO <option> <value>",
    "    Set LIB-NAME or LIB-VER, shown by LIST and INFO.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Be told when keys this connection read change (see the docs).",
    "CACHING (YES|NO)",
    "    With OPTIN/OPTOUT: track (or not) the reads of the next command.",
    "TRACKINGINFO",
    "    How this connection is tracked.",
    "GETREDIR",
    "    Where tracking messages go: an ID, 0 for pushes here, -1 when off.",
    "HELP",
    "    Print this help.",
];

pub fn client(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let (&sub, rest) = match args.split_first() {
        Some(split) => split,
        None => return context.error("ERR wrong number of arguments for 'client' command"),
    };
    let is = |name: &[u8]| sub.eq_ignore_ascii_case(name);
    if is(b"setname") {
        let [name] = rest else {
            return subcommand_arity(context, "client", "setname");
        };
        if let Err(message) = check_name(name, context.service.max_key_bytes()) {
            return context.error(&message);
        }
        context.session.name = (!name.is_empty()).then(|| name.to_vec());
        context.ok()
    } else if is(b"getname") {
        if !rest.is_empty() {
            return subcommand_arity(context, "client", "getname");
        }
        match &context.session.name {
            Some(name) => context.replies.bulk(name),
            None => context.replies.null(),
        }
        Outcome::Ok
    } else if is(b"id") {
        if !rest.is_empty() {
            return subcommand_arity(context, "client", "id");
        }
        let id = i64::try_from(context.session.id).unwrap_or(i64::MAX);
        context.replies.integer(id);
        Outcome::Ok
    } else if is(b"setinfo") {
        setinfo(rest, context)
    } else if is(b"list") {
        clients::list(rest, context)
    } else if is(b"info") {
        if !rest.is_empty() {
            return subcommand_arity(context, "client", "info");
        }
        clients::info(context)
    } else if is(b"kill") {
        if rest.is_empty() {
            return subcommand_arity(context, "client", "kill");
        }
        clients::kill(rest, context)
    } else if is(b"no-evict") {
        match rest {
            [on] if on.eq_ignore_ascii_case(b"on") || on.eq_ignore_ascii_case(b"off") => {
                context.ok()
            }
            [_] => context.error("ERR syntax error"),
            _ => subcommand_arity(context, "client", "no-evict"),
        }
    } else if is(b"pause") || is(b"unpause") {
        context.error(&format!(
            "ERR 'client|{}' is not allowed through the proxy: it changes the server itself (see docs/forwarding.md)",
            String::from_utf8_lossy(sub).to_lowercase()
        ))
    } else if is(b"reply") || is(b"no-touch") || is(b"unblock") {
        context.error(&format!(
            "ERR 'client|{}' is not supported through the proxy",
            String::from_utf8_lossy(sub).to_lowercase()
        ))
    } else if is(b"tracking") {
        tracking(rest, context)
    } else if is(b"caching") {
        caching(rest, context)
    } else if is(b"trackinginfo") {
        if !rest.is_empty() {
            return subcommand_arity(context, "client", "trackinginfo");
        }
        tracking_info(context)
    } else if is(b"getredir") {
        if !rest.is_empty() {
            return subcommand_arity(context, "client", "getredir");
        }
        let redirect = match &context.session.tracking {
            None => -1,
            Some(mode) => mode
                .redirect
                .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX)),
        };
        context.replies.integer(redirect);
        Outcome::Ok
    } else if is(b"help") {
        help(context, HELP)
    } else {
        unknown_subcommand(context, sub, "client")
    }
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`, checked as Redis 7.2 checks
/// it and kept for `CLIENT LIST`.
fn setinfo(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let [attr, value] = args else {
        return subcommand_arity(context, "client", "setinfo");
    };
    let version = if attr.eq_ignore_ascii_case(b"lib-ver") {
        true
    } else if attr.eq_ignore_ascii_case(b"lib-name") {
        false
    } else {
        return context.error(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        ));
    };
    let max = context.service.max_key_bytes();
    if value.len() > max || value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return context.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        ));
    }
    context
        .peers
        .clients
        .set_lib(context.session.id, version, value);
    context.ok()
}

/// Whether `name` may name a connection (`CLIENT SETNAME`, `HELLO ...
/// SETNAME`), else the error to answer. Redis's rule: printable ASCII
/// without spaces (names are listed space-separated), with its words. Ours
/// too: at most MAX_KEY_BYTES, so a client cannot make the proxy keep
/// megabytes as its name.
pub(super) fn check_name(name: &[u8], max: usize) -> Result<(), String> {
    if name.len() > max {
        return Err(format!("ERR Client name too long (max {max} bytes)"));
    }
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(
            "ERR Client names cannot contain spaces, newlines or special characters.".to_owned(),
        );
    }
    Ok(())
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN]
/// [OPTOUT] [NOLOOP]`, with Redis's errors.
fn tracking(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let Some((&switch, options)) = args.split_first() else {
        return subcommand_arity(context, "client", "tracking");
    };
    if switch.eq_ignore_ascii_case(b"off") {
        context.session.tracking = None;
        // As Redis: turning it off forgets a `CLIENT CACHING` too.
        context.session.caching = None;
        context.session.tracking_changed = true;
        context.session.tracking_prefixes_added.clear();
        return context.ok();
    }
    if !switch.eq_ignore_ascii_case(b"on") {
        return context.error("ERR syntax error");
    }
    let mut mode = TrackingMode::default();
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let is = |name: &[u8]| option.eq_ignore_ascii_case(name);
        if is(b"bcast") {
            mode.bcast = true;
        } else if is(b"optin") {
            mode.optin = true;
        } else if is(b"optout") {
            mode.optout = true;
        } else if is(b"noloop") {
            mode.noloop = true;
        } else if is(b"prefix") {
            let Some(prefix) = rest.next() else {
                return context.error("ERR syntax error");
            };
            prefixes.push(prefix);
        } else if is(b"redirect") {
            let Some(id) = rest.next() else {
                return context.error("ERR syntax error");
            };
            // As Redis: an integer (a negative one names no client).
            let Some(id) = parse_integer(id) else {
                return context.error("ERR value is not an integer or out of range");
            };
            let id = u64::try_from(id).unwrap_or(0);
            if id != context.session.id && (id == 0 || !(context.peers.exists)(id)) {
                return context.error("ERR The client ID you want redirect to does not exist");
            }
            // A client may name itself, as at Redis: its messages then
            // come to it as to any target (a RESP2 one once it subscribes).
            mode.redirect = Some(id);
        } else {
            return context.error("ERR syntax error");
        }
    }
    if !mode.bcast && !prefixes.is_empty() {
        return context.error("ERR PREFIX option requires BCAST mode to be enabled");
    }
    if mode.optin && mode.optout {
        return context.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return context.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if let Some(current) = &context.session.tracking {
        if current.bcast != mode.bcast {
            return context.error(
                "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            );
        }
        if (mode.optin && current.optout) || (mode.optout && current.optin) {
            return context.error(
                "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            );
        }
    }
    // As Redis: prefixes add up over calls and must not overlap. No
    // PREFIX: every key, as Redis's "" prefix.
    let given = prefixes.len();
    if given == 0 {
        prefixes.push(b"");
    }
    let current = context.session.tracking.as_mut().filter(|m| m.bcast);
    if mode.bcast {
        let empty = Default::default();
        let existing = current.as_ref().map_or(&empty, |current| &current.prefixes);
        // The proxy's own bounds first, in O(n): past one, nothing of the
        // call is kept, and a long list is not sorted for nothing.
        if let Err(message) = check_room(existing, &prefixes, context.peers.prefix_room) {
            return context.error(&message);
        }
        if let Err(message) = check_prefixes(existing, &prefixes[..given]) {
            return context.error(&message);
        }
    }
    // Only while the proxy itself hears of every write can it tell.
    if !context.service.can_track() {
        return context.error(
            "ERR this proxy cannot track keys for its clients: it hears of no writes (INVALIDATION=off, or Redis refused tracking)",
        );
    }
    if mode.bcast {
        if let Some(current) = current {
            mode.prefixes = std::mem::take(&mut current.prefixes);
        }
        let added: Vec<Arc<[u8]>> = prefixes.iter().map(|&p| Arc::from(p)).collect();
        mode.prefixes.extend(added.iter().cloned());
        context.session.tracking_prefixes_added.extend(added);
    }
    context.session.tracking = Some(mode);
    context.session.tracking_changed = true;
    context.ok()
}

/// `CLIENT CACHING YES|NO`: only with OPTIN (YES) or OPTOUT (NO).
fn caching(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let [answer] = args else {
        return subcommand_arity(context, "client", "caching");
    };
    let Some(mode) = &context.session.tracking else {
        return context.error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    let (optin, optout) = (mode.optin, mode.optout);
    if answer.eq_ignore_ascii_case(b"yes") && optin {
        context.session.caching = Some(true);
    } else if answer.eq_ignore_ascii_case(b"no") && optout {
        context.session.caching = Some(false);
    } else if answer.eq_ignore_ascii_case(b"yes") {
        return context
            .error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
    } else if answer.eq_ignore_ascii_case(b"no") {
        return context
            .error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
    } else {
        return context.error("ERR syntax error");
    }
    context.ok()
}

/// `CLIENT TRACKINGINFO`: flags, redirect, prefixes, as Redis gives them.
fn tracking_info(context: &mut Context<'_>) -> Outcome {
    let mode = context.session.tracking.clone();
    let caching = context.session.caching;
    let replies = &mut *context.replies;
    replies.map(3);
    replies.bulk(b"flags");
    match &mode {
        None => {
            replies.set(1);
            replies.bulk(b"off");
        }
        Some(mode) => {
            // Redis 7.0's flags, in its order: `CLIENT CACHING` shows as
            // caching-yes (OPTIN) or caching-no (OPTOUT) until the next
            // command that is not a CLIENT subcommand.
            let mut flags: Vec<&[u8]> = vec![b"on"];
            for (set, flag) in [
                (mode.bcast, &b"bcast"[..]),
                (mode.optin, b"optin"),
                (mode.optin && caching == Some(true), b"caching-yes"),
                (mode.optout, b"optout"),
                (mode.optout && caching == Some(false), b"caching-no"),
                (mode.noloop, b"noloop"),
            ] {
                if set {
                    flags.push(flag);
                }
            }
            replies.set(flags.len());
            for flag in flags {
                replies.bulk(flag);
            }
        }
    }
    replies.bulk(b"redirect");
    replies.integer(match &mode {
        None => -1,
        Some(mode) => mode
            .redirect
            .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX)),
    });
    replies.bulk(b"prefixes");
    let prefixes = mode.map(|mode| mode.prefixes).unwrap_or_default();
    replies.array(prefixes.len());
    for prefix in &prefixes {
        replies.bulk(prefix);
    }
    Outcome::Ok
}
