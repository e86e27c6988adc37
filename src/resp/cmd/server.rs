//! `COMMAND` and `CONFIG GET`: what clients and redis-benchmark ask about
//! the server when they connect; and `ACL WHOAMI`.

use super::get::Own;
use super::{help, subcommand_arity, unknown_subcommand, Context, Fetch, Outcome, Spec, COMMANDS};

/// `COMMAND [subcommand ...]`.
pub const COMMAND: Spec = Spec {
    name: "command",
    arity: -1,
    flags: &[],
    keys: (0, 0, 0),
};
/// `CONFIG subcommand ...`.
pub const CONFIG: Spec = Spec {
    name: "config",
    arity: -2,
    flags: &[],
    keys: (0, 0, 0),
};

/// `ACL subcommand ...`: WHOAMI answered here ([`acl`]), the others
/// forwarded (`forwards`).
pub const ACL: Spec = Spec {
    name: "acl",
    arity: -2,
    flags: &[],
    keys: (0, 0, 0),
};

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all commands the proxy serves.",
    "COUNT",
    "    Return the number of commands the proxy serves.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "DOCS [<command-name> ...]",
    "    Answered with an empty map: the proxy keeps no command docs.",
    "INFO [<command-name> ...]",
    "    Return details about the given commands.",
    "HELP",
    "    Print this help.",
];

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern> [<pattern> ...]",
    "    Return the parameters matching the glob-like patterns and their values.",
    "HELP",
    "    Print this help.",
];

/// What a proxy that persists nothing answers to the settings clients ask
/// about; redis-benchmark asks for `save` and `appendonly` at start.
const SETTINGS: &[(&str, &str)] = &[("save", ""), ("appendonly", "no"), ("databases", "1")];

pub fn command(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let Some((&sub, names)) = args.split_first() else {
        context.replies.array(COMMANDS.len());
        for (spec, _) in COMMANDS {
            describe(context, spec);
        }
        return Outcome::Ok;
    };
    let is = |name: &[u8]| sub.eq_ignore_ascii_case(name);
    if is(b"count") {
        if !names.is_empty() {
            return subcommand_arity(context, "command", "count");
        }
        context.replies.integer(COMMANDS.len() as i64);
        Outcome::Ok
    } else if is(b"docs") {
        context.replies.map(0);
        Outcome::Ok
    } else if is(b"info") {
        context.replies.array(names.len());
        for name in names {
            match COMMANDS
                .iter()
                .find(|(spec, _)| name.eq_ignore_ascii_case(spec.name.as_bytes()))
            {
                Some((spec, _)) => describe(context, spec),
                None => context.replies.null(),
            }
        }
        Outcome::Ok
    } else if is(b"getkeys") || is(b"getkeysandflags") {
        // Redis's arity for both: -4 (the command and one argument at least).
        if names.len() < 2 {
            let sub = if is(b"getkeys") {
                "getkeys"
            } else {
                "getkeysandflags"
            };
            return subcommand_arity(context, "command", sub);
        }
        let argv = names.iter().map(|arg| arg.to_vec()).collect();
        let with_flags = is(b"getkeysandflags");
        let fetch = Own::CommandKeys(argv, with_flags, context.service.defer());
        Outcome::Fetch(Fetch::Own(fetch))
    } else if is(b"help") {
        help(context, COMMAND_HELP)
    } else {
        unknown_subcommand(context, sub, "command")
    }
}

/// One command in Redis 7's shape: name, arity, flags, first key, last key,
/// step, ACL categories, tips, key specs, subcommands.
fn describe(context: &mut Context<'_>, spec: &Spec) {
    let replies = &mut *context.replies;
    replies.array(10);
    replies.bulk(spec.name.as_bytes());
    replies.integer(spec.arity);
    replies.array(spec.flags.len());
    for flag in spec.flags {
        replies.simple(flag);
    }
    let (first, last, step) = spec.keys;
    replies.integer(first);
    replies.integer(last);
    replies.integer(step);
    for _ in 0..4 {
        replies.array(0);
    }
}

pub fn config(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let (&sub, patterns) = match args.split_first() {
        Some(split) => split,
        None => return context.error("ERR wrong number of arguments for 'config' command"),
    };
    if sub.eq_ignore_ascii_case(b"help") {
        return help(context, CONFIG_HELP);
    }
    if !sub.eq_ignore_ascii_case(b"get") {
        return unknown_subcommand(context, sub, "config");
    }
    if patterns.is_empty() {
        return subcommand_arity(context, "config", "get");
    }
    let matching: Vec<&(&str, &str)> = SETTINGS
        .iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
        .collect();
    context.replies.map(matching.len());
    for (name, value) in matching {
        context.replies.bulk(name.as_bytes());
        context.replies.bulk(value.as_bytes());
    }
    Outcome::Ok
}

/// `ACL WHOAMI`: `default`. The proxy's clients are its `default` user
/// (PROXY_PASSWORD is that user's password; `CLIENT LIST` says
/// `user=default`), so they get Redis's answer for a client authenticated
/// as `default`, not the name of the proxy's own Redis user (audit: it
/// leaked, forwarded). Other subcommands reach this only when not
/// forwarded (RESP_FORWARD=off): the proxy knows no other.
pub fn acl(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    match args {
        [sub] if sub.eq_ignore_ascii_case(b"whoami") => {
            context.replies.bulk(b"default");
            Outcome::Ok
        }
        [sub, ..] if sub.eq_ignore_ascii_case(b"whoami") => {
            subcommand_arity(context, "acl", "whoami")
        }
        [sub, ..] => unknown_subcommand(context, sub, "acl"),
        [] => context.error("ERR wrong number of arguments for 'acl' command"),
    }
}

/// Case-insensitive match with `*` (any run) and `?` (any byte). Iterative,
/// remembering only the last `*`, so a hostile pattern costs at most
/// O(pattern x name), never exponential time.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    p = star + 1;
                    n = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"SAVE", b"save"));
        assert!(glob_match(b"*", b"appendonly"));
        assert!(glob_match(b"append*", b"appendonly"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(glob_match(b"*a*e*", b"save"));
        // Many stars cost linear time, not exponential.
        let hostile = [b'*'; 10_000];
        assert!(!glob_match(&[&hostile[..], b"x"].concat(), b"appendonly"));
    }
}
