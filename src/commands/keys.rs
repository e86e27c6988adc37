//! Where a request's keys are: Redis 7's key specifications, applied to an
//! argv as Redis's own `getKeysUsingKeySpecs` (db.c) applies them, plus the
//! two built-in key finders whose specs Redis marks incomplete (SORT's
//! `STORE`, MIGRATE's `KEYS`).
//!
//! Keys come back as positions in the argv with their spec's flags, into a
//! buffer the caller keeps: a lookup copies no key and, once the buffer has
//! grown, allocates nothing.

/// A key spec's flags, in the order Redis lists them (`COMMAND INFO` and
/// `COMMAND GETKEYSANDFLAGS` both use it).
pub const KEY_FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// The key is only read.
pub const RO: u16 = 1;
/// The key is read and written.
pub const RW: u16 = 1 << 1;
/// The key is overwritten without being read.
pub const OW: u16 = 1 << 2;
/// The key is deleted.
pub const RM: u16 = 1 << 3;
const ACCESS: u16 = 1 << 4;
const UPDATE: u16 = 1 << 5;
const DELETE: u16 = 1 << 7;
/// Not a key (a channel, say): skipped when looking for keys.
pub const NOT_KEY: u16 = 1 << 8;
/// The spec may miss keys: Redis falls back to a key finder of its own.
pub const INCOMPLETE: u16 = 1 << 9;
/// The flags depend on the arguments (SET ... GET).
pub const VARIABLE_FLAGS: u16 = 1 << 10;

/// The bit of one flag name; 0 for a name this build does not know.
pub fn key_flag(name: &[u8]) -> u16 {
    KEY_FLAG_NAMES
        .iter()
        .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
        .map_or(0, |bit| 1 << bit)
}

/// One key specification (`COMMAND INFO`'s ninth element).
#[derive(Clone, Debug, PartialEq)]
pub struct KeySpec {
    /// Its flags ([`RO`], [`RW`], ...).
    pub flags: u16,
    /// Where the search for keys starts.
    pub begin: Begin,
    /// How keys are found from there.
    pub find: Find,
}

/// `begin_search`.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// At this argument.
    Index(i64),
    /// After `keyword`, searched from `startfrom` (negative: from the end,
    /// backwards).
    Keyword { keyword: Box<[u8]>, startfrom: i64 },
    /// A type this build does not know.
    Unknown,
}

/// `find_keys`.
#[derive(Clone, Debug, PartialEq)]
pub enum Find {
    /// Keys up to `lastkey` (negative: from the end), every `keystep`;
    /// with `limit` > 0, a `limit`-th of what is left.
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    /// A count at `keynumidx`, the first key `firstkey` after the start.
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    /// A type this build does not know.
    Unknown,
}

/// A key of a request: its position in the argv (the command name is 0)
/// and how the command uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// Position in the argv.
    pub index: usize,
    /// The spec's flags for it.
    pub flags: u16,
}

impl KeyRef {
    /// Whether the command may change or delete the key.
    pub fn written(&self) -> bool {
        changes(self.flags)
    }
}

/// Whether a key with these spec flags may be changed or deleted by its
/// command: written, and also a key that says neither how it is read nor
/// how it is written.
pub(super) fn changes(flags: u16) -> bool {
    flags & (RW | OW | RM | UPDATE | DELETE) != 0 || flags & (RO | ACCESS) == 0
}

/// Why a request's keys cannot be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoKeys {
    /// The arguments do not fit the specs (a count out of range, a
    /// missing argument): Redis says "Invalid arguments" (or, for a
    /// command with `no_mandatory_keys` such as EVAL, no keys).
    Invalid,
    /// The command finds its keys in a way the table cannot follow
    /// (`movablekeys` without usable specs): callers must assume any key.
    Unknown,
}

/// Applies `specs` to `argv` as Redis does, keys into `out` (cleared
/// first). A spec whose search fails makes the whole request fail, as in
/// Redis; the caller then tries a built-in finder.
pub(super) fn by_specs(
    specs: &[KeySpec],
    argv: &[&[u8]],
    out: &mut Vec<KeyRef>,
) -> Result<(), NoKeys> {
    by_specs_flagged(specs, argv, out, NOT_KEY)
}

/// Whether the positions of the keys `by_specs` (or `by_range`, without
/// specs) finds for a command named `name` with these `flags` and `specs`
/// depend on the number of arguments alone: every spec starts at an index
/// and takes a range, and no finder of the proxy's own (SORT, MIGRATE) or
/// Redis's (`movablekeys`) is involved. (SET's and BITFIELD's arguments
/// change their key's flags, not its position.)
pub(super) fn by_count(name: &str, flags: u32, specs: &[KeySpec]) -> bool {
    flags & super::MOVABLEKEYS == 0
        && super::lists::own_finder(name).is_none()
        && specs.iter().all(|spec| {
            matches!(
                (&spec.begin, &spec.find),
                (Begin::Index(_), Find::Range { .. })
            )
        })
}

/// [`by_specs`], skipping the specs with any of the flags `skip` (none: a
/// cluster routes by `not_key` arguments too, shard channels).
fn by_specs_flagged(
    specs: &[KeySpec],
    argv: &[&[u8]],
    out: &mut Vec<KeyRef>,
    skip: u16,
) -> Result<(), NoKeys> {
    out.clear();
    let argc = argv.len() as i64;
    for spec in specs {
        if spec.flags & skip != 0 {
            continue;
        }
        let mut first = match &spec.begin {
            Begin::Index(index) => *index,
            Begin::Keyword { keyword, startfrom } => {
                match find_keyword(argv, keyword, *startfrom) {
                    Some(at) => at + 1,
                    None => continue,
                }
            }
            Begin::Unknown => return Err(NoKeys::Invalid),
        };
        let (last, step) = match spec.find {
            Find::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first.saturating_add(lastkey)
                } else if limit <= 0 {
                    argc.saturating_add(lastkey)
                } else {
                    first
                        .saturating_add((argc - first) / limit)
                        .saturating_add(lastkey)
                };
                (last, keystep)
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                if keynumidx >= argc - first || keynumidx < 0 {
                    return Err(NoKeys::Invalid);
                }
                let count = usize::try_from(first.saturating_add(keynumidx))
                    .ok()
                    .and_then(|at| argv.get(at))
                    .and_then(|arg| std::str::from_utf8(arg).ok())
                    .and_then(|text| text.parse::<i64>().ok())
                    .filter(|n| *n >= 0 && *n <= i64::from(i32::MAX))
                    .ok_or(NoKeys::Invalid)?;
                first = first.saturating_add(firstkey);
                (first.saturating_add(count - 1), keystep)
            }
            Find::Unknown => return Err(NoKeys::Invalid),
        };
        if last >= argc || last < first || first >= argc || first < 0 || step <= 0 {
            return Err(NoKeys::Invalid);
        }
        let mut i = first;
        while i <= last {
            // In range: first >= 0 and last < argc were checked above.
            out.push(KeyRef {
                index: i as usize,
                flags: spec.flags,
            });
            i += step;
        }
        if spec.flags & INCOMPLETE != 0 {
            return Err(NoKeys::Invalid);
        }
    }
    Ok(())
}

/// The position of `keyword` searched as Redis does: from `startfrom` to
/// the end, or (negative) from the end back to the second argument; the
/// last argument is never taken for a keyword going forwards.
fn find_keyword(argv: &[&[u8]], keyword: &[u8], startfrom: i64) -> Option<i64> {
    let argc = argv.len() as i64;
    let (start, end) = if startfrom > 0 {
        (startfrom, argc - 1)
    } else {
        (argc.saturating_add(startfrom), 0)
    };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            return None;
        }
        if argv[i as usize].eq_ignore_ascii_case(keyword) {
            return Some(i);
        }
        i = if start <= end { i + 1 } else { i - 1 };
    }
    None
}

/// The old first/last/step triple, for a command with no key specs.
pub(super) fn by_range(
    (first, last, step): (i64, i64, i64),
    argv: &[&[u8]],
    out: &mut Vec<KeyRef>,
) -> Result<(), NoKeys> {
    out.clear();
    let argc = argv.len() as i64;
    let last = if last < 0 { argc + last } else { last };
    if first <= 0 || step <= 0 || last >= argc || last < first {
        return Err(NoKeys::Invalid);
    }
    let mut i = first;
    while i <= last {
        out.push(KeyRef {
            index: i as usize,
            flags: RW | ACCESS | UPDATE,
        });
        i += step;
    }
    Ok(())
}

/// SORT and SORT_RO (Redis's `sortGetKeys`): the sorted key, and the last
/// `STORE` destination, skipping the arguments of LIMIT, GET and BY.
pub(super) fn sort(argv: &[&[u8]], out: &mut Vec<KeyRef>) -> Result<(), NoKeys> {
    out.clear();
    if argv.len() < 2 {
        return Err(NoKeys::Invalid);
    }
    out.push(KeyRef {
        index: 1,
        flags: RO | ACCESS,
    });
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let arg = argv[i];
        if arg.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if arg.eq_ignore_ascii_case(b"get") || arg.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if arg.eq_ignore_ascii_case(b"store") && i + 1 < argv.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    if let Some(index) = store {
        out.push(KeyRef {
            index,
            flags: OW | UPDATE,
        });
    }
    Ok(())
}

/// MIGRATE (Redis's `migrateGetKeys`): the key at 3, or, after `KEYS`
/// (with an empty key at 3), every argument that follows.
pub(super) fn migrate(argv: &[&[u8]], out: &mut Vec<KeyRef>) -> Result<(), NoKeys> {
    out.clear();
    let (mut first, mut count) = (3, 1);
    if argv.len() > 6 {
        let mut i = 6;
        while i < argv.len() {
            let arg = argv[i];
            if arg.eq_ignore_ascii_case(b"keys") {
                if !argv[3].is_empty() {
                    return Err(NoKeys::Invalid);
                }
                first = i + 1;
                count = argv.len() - first;
                break;
            }
            if arg.eq_ignore_ascii_case(b"auth") {
                i += 1;
            } else if arg.eq_ignore_ascii_case(b"auth2") {
                i += 2;
            }
            i += 1;
        }
    }
    if first + count > argv.len() {
        return Err(NoKeys::Invalid);
    }
    out.extend((first..first + count).map(|index| KeyRef {
        index,
        flags: RW | ACCESS | DELETE,
    }));
    Ok(())
}

/// SET and BITFIELD, whose key's flags depend on the arguments (Redis's
/// `setGetKeys` and `bitfieldGetKeys`): SET's key is read too only with
/// `GET`; BITFIELD only reads unless it has `SET`, `INCRBY` or anything it
/// cannot parse.
pub(super) fn variable_flags(name: &str, argv: &[&[u8]], out: &mut [KeyRef]) {
    let flags = if name == "set" {
        match argv
            .iter()
            .skip(3)
            .any(|arg| arg.eq_ignore_ascii_case(b"get"))
        {
            true => RW | ACCESS | UPDATE,
            false => OW | UPDATE,
        }
    } else {
        let mut readonly = true;
        let mut i = 2;
        while i < argv.len() {
            let left = argv.len() - i - 1;
            let arg = argv[i];
            if arg.eq_ignore_ascii_case(b"get") && left >= 2 {
                i += 2;
            } else if arg.eq_ignore_ascii_case(b"overflow") && left >= 1 {
                i += 1;
            } else {
                // SET, INCRBY, or a syntax error: assume it writes.
                readonly = false;
                break;
            }
            i += 1;
        }
        match readonly {
            true => RO | ACCESS,
            false => RW | ACCESS | UPDATE,
        }
    };
    for key in out.iter_mut() {
        key.flags = flags;
    }
}

impl super::Command {
    /// The arguments a cluster routes request `argv` by, into `out`: its
    /// keys, or where it has none, what its specs flag `not_key` (the
    /// channels of SPUBLISH, SSUBSCRIBE and SUNSUBSCRIBE, which a cluster
    /// hashes to slots as it does keys).
    pub fn slot_keys(&self, argv: &[&[u8]], out: &mut Vec<KeyRef>) -> Result<(), NoKeys> {
        self.keys(argv, out)?;
        if out.is_empty() && self.specs.iter().any(|spec| spec.flags & NOT_KEY != 0) {
            return by_specs_flagged(&self.specs, argv, out, 0);
        }
        Ok(())
    }
}
