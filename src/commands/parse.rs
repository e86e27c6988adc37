//! Reading Redis 7's `COMMAND` / `COMMAND INFO` reply (RESP2 arrays or
//! RESP3 maps and sets alike) into [`Command`]s.

use redis::Value;

use super::keys::{self, by_count, key_flag, Begin, Find, KeySpec, NOT_KEY};
use super::{flag, Command, READONLY};

/// Why a reply could not be read as a command table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected COMMAND reply: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

fn bad(what: &str) -> ParseError {
    ParseError(what.to_owned())
}

/// The elements of an array or a set (RESP3 sends flags as sets).
pub(super) fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// A map's fields: name, value.
type Fields<'a> = Vec<(&'a [u8], &'a Value)>;

/// Name/value pairs: a RESP3 map, or RESP2's flat array alternating them.
fn fields(value: &Value) -> Option<Fields<'_>> {
    match value {
        Value::Map(pairs) => pairs
            .iter()
            .map(|(name, value)| Some((text(name)?, value)))
            .collect(),
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks_exact(2)
            .map(|pair| Some((text(&pair[0])?, &pair[1])))
            .collect(),
        _ => None,
    }
}

fn field<'a>(pairs: &[(&[u8], &'a Value)], name: &str) -> Option<&'a Value> {
    pairs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, value)| *value)
}

/// One command's entry (and its subcommands', appended to `out`).
pub(super) fn command(entry: &Value, out: &mut Vec<Command>) -> Result<(), ParseError> {
    let parts = items(entry).ok_or_else(|| bad("a command entry is not an array"))?;
    if parts.len() < 6 {
        return Err(bad("a command entry has fewer than 6 elements"));
    }
    let name = text(&parts[0]).ok_or_else(|| bad("a command name is not a string"))?;
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let arity = int(&parts[1]).ok_or_else(|| bad("an arity is not an integer"))?;
    let mut flags = 0;
    for value in items(&parts[2]).ok_or_else(|| bad("flags are not an array"))? {
        flags |= text(value).map_or(0, flag);
    }
    let triple = |i: usize| int(&parts[i]).ok_or_else(|| bad("a key position is not an integer"));
    let range = (triple(3)?, triple(4)?, triple(5)?);
    let mut nondeterministic = false;
    if let Some(tips) = parts.get(7).and_then(items) {
        nondeterministic = tips
            .iter()
            .filter_map(text)
            .any(|tip| tip.eq_ignore_ascii_case(b"nondeterministic_output"));
    }
    let specs = match parts.get(8).and_then(items) {
        Some(specs) => specs.iter().map(key_spec).collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let subcommands = parts.get(9).and_then(items).unwrap_or_default();
    let changes_keys = flags & READONLY != 0
        && specs
            .iter()
            .any(|spec| spec.flags & NOT_KEY == 0 && keys::changes(spec.flags));
    out.push(Command {
        changes_keys,
        lists: listed(&name),
        keys_by_count: by_count(&name, flags, &specs),
        name,
        arity,
        flags,
        range,
        specs,
        nondeterministic,
        container: !subcommands.is_empty(),
    });
    for sub in subcommands {
        command(sub, out)?;
    }
    Ok(())
}

fn key_spec(value: &Value) -> Result<KeySpec, ParseError> {
    let pairs = fields(value).ok_or_else(|| bad("a key spec is not a map"))?;
    let mut flags = 0;
    if let Some(names) = field(&pairs, "flags").and_then(items) {
        for name in names {
            flags |= text(name).map_or(0, key_flag);
        }
    }
    let begin = match field(&pairs, "begin_search").and_then(typed) {
        Some((b"index", spec)) => field(&spec, "index")
            .and_then(int)
            .map_or(Begin::Unknown, Begin::Index),
        Some((b"keyword", spec)) => {
            match (
                field(&spec, "keyword").and_then(text),
                field(&spec, "startfrom").and_then(int),
            ) {
                (Some(keyword), Some(startfrom)) => Begin::Keyword {
                    keyword: keyword.into(),
                    startfrom,
                },
                _ => Begin::Unknown,
            }
        }
        _ => Begin::Unknown,
    };
    let find = match field(&pairs, "find_keys").and_then(typed) {
        Some((b"range", spec)) => {
            let get = |name| field(&spec, name).and_then(int);
            match (get("lastkey"), get("keystep"), get("limit")) {
                (Some(lastkey), Some(keystep), Some(limit)) => Find::Range {
                    lastkey,
                    keystep,
                    limit,
                },
                _ => Find::Unknown,
            }
        }
        Some((b"keynum", spec)) => {
            let get = |name| field(&spec, name).and_then(int);
            match (get("keynumidx"), get("firstkey"), get("keystep")) {
                (Some(keynumidx), Some(firstkey), Some(keystep)) => Find::Keynum {
                    keynumidx,
                    firstkey,
                    keystep,
                },
                _ => Find::Unknown,
            }
        }
        _ => Find::Unknown,
    };
    Ok(KeySpec { flags, begin, find })
}

/// `{type: T, spec: {...}}`: the type, lower case, and the spec's fields.
fn typed(value: &Value) -> Option<(&'static [u8], Fields<'_>)> {
    let pairs = fields(value)?;
    let kind = field(&pairs, "type").and_then(text)?;
    let spec = field(&pairs, "spec").and_then(fields).unwrap_or_default();
    let kind: &'static [u8] = if kind.eq_ignore_ascii_case(b"index") {
        b"index"
    } else if kind.eq_ignore_ascii_case(b"keyword") {
        b"keyword"
    } else if kind.eq_ignore_ascii_case(b"range") {
        b"range"
    } else if kind.eq_ignore_ascii_case(b"keynum") {
        b"keynum"
    } else {
        b"unknown"
    };
    Some((kind, spec))
}

/// [`Command::lists`] bits.
pub(super) const IN_REFUSED: u8 = 1;
pub(super) const IN_CONNECTION_STATE: u8 = 2;
pub(super) const IN_SUBSCRIBING: u8 = 4;
pub(super) const IN_NEVER_CACHED: u8 = 8;

/// Which of the proxy's lists name the command `name` (`container|sub`
/// named by its container too).
pub(super) fn listed(name: &str) -> u8 {
    let named = |list: &[&str]| {
        list.contains(&name)
            || name
                .split_once('|')
                .is_some_and(|(container, _)| list.contains(&container))
    };
    [
        (super::REFUSED, IN_REFUSED),
        (super::CONNECTION_STATE, IN_CONNECTION_STATE),
        (super::SUBSCRIBING, IN_SUBSCRIBING),
        (super::NEVER_CACHED, IN_NEVER_CACHED),
    ]
    .into_iter()
    .filter(|(list, _)| named(list))
    .fold(0, |bits, (_, bit)| bits | bit)
}
