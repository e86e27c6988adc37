//! The command table: what Redis says about each of its commands (its
//! `COMMAND` reply, read once per connection of the invalidation link, or
//! on first use), kept so the cache, the forwarder and `RESP_FORWARD=reads`
//! can ask one place whether a command may be cached, writes (and which
//! keys), blocks, subscribes, changes the connection, or is refused.
//!
//! Pure: no I/O. `backend` fetches the reply and builds the table;
//! `service` hands it out. Module commands need no code: their specs come
//! with the reply.

mod keys;
mod lists;
mod name;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use redis::Value;

pub use keys::{KeyRef, NoKeys, KEY_FLAG_NAMES};
use lists::SUBSCRIBING;
pub use lists::{asks_to_block, BLOCK_BY_ARGUMENTS, CONNECTION_STATE, NEVER_CACHED, REFUSED};
pub use name::{packed, packed_const, packed_exact, PACKED_MAX};
pub use parse::ParseError;

use keys::{KeySpec, NOT_KEY};
use parse::{IN_CONNECTION_STATE, IN_NEVER_CACHED, IN_REFUSED, IN_SUBSCRIBING};

/// Command flags the table keeps (`COMMAND INFO`'s third element); any
/// other flag is ignored.
const FLAG_NAMES: [&str; 13] = [
    "write",
    "readonly",
    "blocking",
    "pubsub",
    "noscript",
    "loading",
    "stale",
    "admin",
    "movablekeys",
    "no_mandatory_keys",
    "may_replicate",
    "fast",
    "no_auth",
];

/// The flag `write`.
pub const WRITE: u32 = 1;
/// The flag `readonly`.
pub const READONLY: u32 = 1 << 1;
/// The flag `blocking`.
pub const BLOCKING: u32 = 1 << 2;
/// The flag `pubsub`.
pub const PUBSUB: u32 = 1 << 3;
/// The flag `admin`.
pub const ADMIN: u32 = 1 << 7;
/// The flag `movablekeys`: keys found by a finder of Redis's own.
pub const MOVABLEKEYS: u32 = 1 << 8;
/// The flag `no_mandatory_keys`.
pub const NO_MANDATORY_KEYS: u32 = 1 << 9;
/// The flag `may_replicate`.
pub const MAY_REPLICATE: u32 = 1 << 10;

fn flag(name: &[u8]) -> u32 {
    FLAG_NAMES
        .iter()
        .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
        .map_or(0, |bit| 1 << bit)
}

/// What Redis says about one command (or `container|subcommand`).
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Lower-case name; `container|sub` for a subcommand.
    pub name: String,
    /// Argument count, the name included; negative: at least that many.
    pub arity: i64,
    /// Its flags ([`WRITE`], [`READONLY`], ...).
    pub flags: u32,
    /// First key, last key, step: the pre-7 description of key positions.
    pub range: (i64, i64, i64),
    specs: Vec<KeySpec>,
    /// The tip `nondeterministic_output`: the same request may answer
    /// differently on unchanged data.
    pub nondeterministic: bool,
    /// Whether it has subcommands (CONFIG, CLIENT, OBJECT...).
    pub container: bool,
    /// Whether the positions [`Command::keys`] finds (not their flags,
    /// which SET's and BITFIELD's arguments change) follow from a
    /// request's number of arguments alone (no keyword or key count to
    /// read, no finder of its own: SET, HSET, LPUSH, MSET...): a pipeline
    /// of it needs its keys found once per number of arguments.
    pub keys_by_count: bool,
    /// A command Redis flags `readonly` that may still change a key, by
    /// its key specs (PFCOUNT rewrites the cardinality it caches in its
    /// key, whose spec is `RW`): its keys are dropped as a write's are.
    pub changes_keys: bool,
    /// Which of the proxy's lists name it (or its container), as
    /// `parse::listed` works it out once when the table is read: [`Command::class`]
    /// runs for every forwarded request, and comparing its name with each
    /// list there cost several percent of the event loop under writes.
    lists: u8,
}

/// What the proxy may do with a request, as the forwarder and the cache ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A read whose reply depends only on its keys' contents: may be
    /// cached under its keys.
    Cacheable,
    /// A read that must reach Redis every time (time, chance, server state).
    Read,
    /// Changes data: its keys (see [`Command::keys`]) are dropped from
    /// the cache before its reply is passed on.
    Write,
    /// May block (BLPOP, XREAD ... BLOCK, WAIT): needs a connection of its own.
    Blocking,
    /// Enters or leaves subscribed mode.
    Pubsub,
    /// Changes the state of the client's connection (SELECT, MULTI, WATCH,
    /// HELLO, AUTH, CLIENT, RESET...): the proxy handles it itself.
    ConnectionState,
    /// Changes the server itself: refused ([`REFUSED`]).
    Refused,
    /// Neither reads nor writes keys (PING, INFO, PUBLISH...): forwarded.
    Other,
}

/// Every command Redis listed, by lower-case name.
#[derive(Debug, Default)]
pub struct CommandTable {
    commands: HashMap<Box<[u8]>, Command, foldhash::fast::FixedState>,
}

/// Longest name (`container|sub` included) looked up: longer ones are no
/// command, and lower-casing into a buffer of this size allocates nothing.
/// CACHE_COMMANDS takes no longer name (`config::cached`), so every name
/// it lists can be looked up.
pub const MAX_NAME: usize = 64;

impl CommandTable {
    /// Reads a `COMMAND` (or `COMMAND INFO`) reply; unknown names in an
    /// `INFO` reply (nil entries) are skipped.
    pub fn parse(reply: &Value) -> Result<CommandTable, ParseError> {
        let entries = parse::items(reply).ok_or_else(|| ParseError("not an array".to_owned()))?;
        let mut all = Vec::with_capacity(entries.len() * 2);
        for entry in entries.iter().filter(|e| !matches!(e, Value::Nil)) {
            parse::command(entry, &mut all)?;
        }
        let mut commands = HashMap::with_capacity_and_hasher(all.len(), Default::default());
        for command in all {
            commands.insert(command.name.as_bytes().into(), command);
        }
        Ok(CommandTable { commands })
    }

    /// How many commands and subcommands it knows.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether it knows none (Redis not asked yet).
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Every command it knows, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.values()
    }

    /// The command named `name` (any case), or `container|sub`.
    pub fn get(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; MAX_NAME];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.commands.get(&*lower)
    }

    /// The command a request runs, as Redis looks it up: the subcommand
    /// when its name has them and one is given (None when that one is
    /// unknown).
    pub fn lookup(&self, argv: &[&[u8]]) -> Option<&Command> {
        let base = self.get(argv.first()?)?;
        match argv.get(1) {
            Some(sub) if base.container => {
                let name = base.name.as_bytes();
                let mut buf = [0u8; MAX_NAME];
                let full = buf.get_mut(..name.len() + 1 + sub.len())?;
                full[..name.len()].copy_from_slice(name);
                full[name.len()] = b'|';
                full[name.len() + 1..].copy_from_slice(sub);
                self.get(full)
            }
            _ => Some(base),
        }
    }
}

impl Command {
    /// Whether `argc` arguments (the name included) fit its arity.
    pub fn arity_fits(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether it takes keys at all (Redis's `doesCommandHaveKeys`).
    pub fn has_keys(&self) -> bool {
        self.flags & MOVABLEKEYS != 0
            || self.specs.iter().any(|s| s.flags & NOT_KEY == 0)
            || (self.specs.is_empty() && self.range.0 > 0)
    }

    /// The keys of request `argv` (the command name first), into `out`:
    /// from the key specs as Redis applies them, SORT's and MIGRATE's
    /// finders where their specs are incomplete, the first/last/step
    /// triple for a command without specs; [`NoKeys::Unknown`] where the
    /// table cannot follow the command's own finder.
    pub fn keys(&self, argv: &[&[u8]], out: &mut Vec<KeyRef>) -> Result<(), NoKeys> {
        if self.specs.is_empty() {
            out.clear();
            return match (self.flags & MOVABLEKEYS != 0, self.range.0 > 0) {
                (true, _) => Err(NoKeys::Unknown),
                (false, true) => keys::by_range(self.range, argv, out),
                (false, false) => Ok(()),
            };
        }
        // Redis prefers the specs unless their flags vary with the
        // arguments; then, or when they fail, a finder of its own.
        let varflags = self
            .specs
            .iter()
            .any(|s| s.flags & keys::VARIABLE_FLAGS != 0);
        let found = keys::by_specs(&self.specs, argv, out);
        match (found, self.name.as_str()) {
            (Ok(()), "set" | "bitfield") if varflags => {
                keys::variable_flags(&self.name, argv, out);
                Ok(())
            }
            (Ok(()), _) => Ok(()),
            (Err(why), name) => match lists::own_finder(name) {
                Some(find) => find(argv, out),
                None => {
                    out.clear();
                    Err(why)
                }
            },
        }
    }

    /// What the proxy may do with request `argv` (this command's).
    pub fn class(&self, argv: &[&[u8]]) -> Class {
        let named = |bit: u8| self.lists & bit != 0;
        if named(IN_REFUSED) {
            Class::Refused
        } else if named(IN_CONNECTION_STATE) {
            Class::ConnectionState
        } else if named(IN_SUBSCRIBING) {
            Class::Pubsub
        } else if self.blocks(argv) {
            Class::Blocking
        } else if self.flags & WRITE != 0 || self.changes_keys {
            Class::Write
        } else if self.flags & READONLY != 0 {
            match self.nondeterministic || named(IN_NEVER_CACHED) {
                true => Class::Read,
                false => Class::Cacheable,
            }
        } else if self.has_keys() {
            // Neither flag, but keys: scripts and functions (EVAL, FCALL),
            // which may write any of their keys.
            Class::Write
        } else {
            Class::Other
        }
    }

    /// Whether this request may block: XREAD and XREADGROUP only with
    /// `BLOCK`; WAIT and WAITAOF always.
    fn blocks(&self, argv: &[&[u8]]) -> bool {
        if self.class_reads_arguments() {
            return lists::asks_to_block(argv);
        }
        match self.name.as_str() {
            "wait" | "waitaof" => true,
            _ => self.flags & BLOCKING != 0,
        }
    }

    /// Whether [`Command::class`] reads the request's arguments (XREAD
    /// and XREADGROUP: they block only with `BLOCK`), so two requests of
    /// it with as many arguments may differ in class.
    pub fn class_reads_arguments(&self) -> bool {
        BLOCK_BY_ARGUMENTS.contains(&self.name.as_str())
    }
}
