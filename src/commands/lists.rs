//! Commands the proxy knows by name, where Redis's `COMMAND` reply does
//! not say enough: each list written once, for the table, the forwarder
//! and the RESP front end alike.

use super::keys::{self, KeyRef, NoKeys};

/// A key finder of the proxy's own: request `argv`'s keys into `out`.
pub(super) type Finder = fn(&[&[u8]], &mut Vec<KeyRef>) -> Result<(), NoKeys>;

/// The proxy's own key finder for the command named `name` (lower case),
/// used where its key specs cannot find every key: SORT and SORT_RO
/// (`STORE`), MIGRATE (`KEYS`). A command with one has key positions that
/// depend on more than its argument count.
pub(super) fn own_finder(name: &str) -> Option<Finder> {
    match name {
        "sort" | "sort_ro" => Some(keys::sort),
        "migrate" => Some(keys::migrate),
        _ => None,
    }
}

/// Whether the command named `name` (any case) blocks only when its
/// arguments say so (XREAD and XREADGROUP, with `BLOCK`: see
/// [`asks_to_block`]): the one class that its name alone does not tell.
pub fn blocks_by_arguments(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup")
}

/// Whether XREAD or XREADGROUP request `argv` (the name first) asks to
/// block: `BLOCK` among its options, before `STREAMS`.
pub fn asks_to_block(argv: &[&[u8]]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|arg| !arg.eq_ignore_ascii_case(b"streams"))
        .any(|arg| arg.eq_ignore_ascii_case(b"block"))
}
