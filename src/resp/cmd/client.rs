//! `CLIENT`: the subcommands clients send on connect, and `HELP`.

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
    "SETINFO <option> <value>",
    "    Accepted and ignored (LIB-NAME, LIB-VER).",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
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
        if rest.len() != 2 {
            return subcommand_arity(context, "client", "setinfo");
        }
        context.ok()
    } else if is(b"help") {
        help(context, HELP)
    } else {
        unknown_subcommand(context, sub, "client")
    }
}
