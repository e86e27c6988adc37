//! `COMMAND GETKEYS` and `COMMAND GETKEYSANDFLAGS`, answered from Redis's
//! command table (`crate::commands`) as redis-server 7 answers them
//! (`commandGetKeys` in server.c): the same keys, flags and error texts.
//! The first use reads the table from Redis, so these run on a worker.

use crate::commands::{KeyRef, NoKeys, KEY_FLAG_NAMES, NO_MANDATORY_KEYS};
use crate::service::{ReadError, Service};

use super::super::reply::{Protocol, Replies};

/// Answers `COMMAND GETKEYS[ANDFLAGS] argv...` into `replies`; whether it
/// was not an error.
pub fn answer(
    argv: &[Vec<u8>],
    with_flags: bool,
    replies: &mut Replies,
    service: &Service,
) -> bool {
    let table = match service.commands() {
        Ok(table) => table,
        // Redis's own error (NOPERM without `+command`) as it is.
        Err(ReadError::Reply(message)) => return error(replies, service, &message),
        Err(err) => return error(replies, service, &format!("ERR {err}")),
    };
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let Some(command) = table.lookup(&argv) else {
        return error(replies, service, "ERR Invalid command specified");
    };
    if !command.has_keys() {
        return error(replies, service, "ERR The command has no key arguments");
    }
    if !command.arity_fits(argv.len()) {
        return error(
            replies,
            service,
            "ERR Invalid number of arguments specified for command",
        );
    }
    let mut keys: Vec<KeyRef> = Vec::new();
    match command.keys(&argv, &mut keys) {
        Ok(()) if !keys.is_empty() => {}
        Ok(()) | Err(NoKeys::Invalid) | Err(NoKeys::Unknown)
            if command.flags & NO_MANDATORY_KEYS != 0 =>
        {
            replies.array(0);
            return true;
        }
        Ok(()) | Err(_) => {
            return error(
                replies,
                service,
                "ERR Invalid arguments specified for command",
            )
        }
    }
    replies.array(keys.len());
    for key in &keys {
        let name = argv[key.index];
        if !with_flags {
            replies.bulk(name);
            continue;
        }
        replies.array(2);
        replies.bulk(name);
        let names = (0..KEY_FLAG_NAMES.len()).filter(|bit| key.flags & (1 << bit) != 0);
        set(replies, names.clone().count());
        for bit in names {
            replies.simple(KEY_FLAG_NAMES[bit]);
        }
    }
    true
}

/// A set's header: `~len` in RESP3, an array in RESP2 (as Redis sends the
/// flags).
fn set(replies: &mut Replies, len: usize) {
    match replies.protocol {
        Protocol::Resp2 => replies.array(len),
        Protocol::Resp3 => {
            replies.buf.push(b'~');
            replies
                .buf
                .extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            replies.buf.extend_from_slice(b"\r\n");
        }
    }
}

fn error(replies: &mut Replies, service: &Service, message: &str) -> bool {
    service.error_replied(message);
    replies.error(message);
    false
}
