//! `SCAN` over a whole cluster: one master after another, in the slot
//! map's order, behind one cursor.
//!
//! A node's cursor means something on that node only, so the proxy's cursor
//! carries both: `node cursor × 1024 + master index`. `SCAN 0` starts on
//! the first master; when a master's scan ends (its cursor 0), the next
//! cursor points at the next master from 0; the last master's end is the
//! proxy's 0. If the masters change during a scan, its guarantees weaken
//! as they do on a node whose table is resized: keys may come twice or,
//! where slots moved to a master already scanned, be missed. A cursor
//! naming a master past the map's is answered `-ERR invalid cursor`, as
//! a node answers one that is no number (see `forward_cluster.rs`).

/// Masters a cursor can name (the low bits of the proxy's cursor).
const MASTERS: u64 = 1024;

/// The master index and that master's cursor in a client's `SCAN` cursor,
/// or `None` if it is no number (the node then refuses it, as Redis does).
pub fn split_cursor(cursor: &[u8]) -> Option<(usize, u64)> {
    let cursor: u64 = std::str::from_utf8(cursor).ok()?.parse().ok()?;
    let master = usize::try_from(cursor % MASTERS).ok()?;
    Some((master, cursor / MASTERS))
}

/// Rewrites a master's `SCAN` reply (`*2 $n <cursor> *k <keys...>`) for
/// the client: its cursor made the proxy's, for master `master` of
/// `masters`. Appends the result to `out`; an error reply, or one that
/// is not a scan reply, is passed on as it is.
pub(super) fn rewrite(reply: &[u8], master: usize, masters: usize, out: &mut Vec<u8>) {
    match next_cursor(reply) {
        Some((cursor, rest)) => {
            let next = if cursor == 0 {
                match master + 1 < masters {
                    true => u64::try_from(master + 1).ok(),
                    false => Some(0),
                }
            } else {
                cursor
                    .checked_mul(MASTERS)
                    .and_then(|c| c.checked_add(u64::try_from(master).ok()?))
            };
            let Some(next) = next else {
                out.extend_from_slice(
                    b"-ERR the node's SCAN cursor is too large for the proxy\r\n",
                );
                return;
            };
            let mut number = itoa::Buffer::new();
            let text = number.format(next);
            out.extend_from_slice(b"*2\r\n$");
            out.extend_from_slice(itoa::Buffer::new().format(text.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&reply[rest..]);
        }
        None => out.extend_from_slice(reply),
    }
}

/// The node's next cursor and where the keys' array starts.
fn next_cursor(reply: &[u8]) -> Option<(u64, usize)> {
    let body = reply.strip_prefix(b"*2\r\n$")?;
    let len_end = body.windows(2).position(|pair| pair == b"\r\n")?;
    let len: usize = std::str::from_utf8(&body[..len_end]).ok()?.parse().ok()?;
    let text = body.get(len_end + 2..len_end + 2 + len)?;
    let cursor = std::str::from_utf8(text).ok()?.parse().ok()?;
    let rest = 5 + len_end + 2 + len + 2;
    (reply.get(rest - 2..rest)? == b"\r\n").then_some((cursor, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(reply: &[u8], master: usize, masters: usize) -> String {
        let mut out = Vec::new();
        rewrite(reply, master, masters, &mut out);
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn cursors_walk_every_master_in_turn() {
        assert_eq!(split_cursor(b"0"), Some((0, 0)));
        assert_eq!(split_cursor(b"2"), Some((2, 0)));
        assert_eq!(split_cursor(b"7169"), Some((1, 7)));
        assert_eq!(split_cursor(b"x"), None);
        let keys = "*1\r\n$1\r\na\r\n";
        // Master 1 of 3 is half done: its cursor 7 becomes 7×1024+1.
        assert_eq!(
            rewritten(format!("*2\r\n$1\r\n7\r\n{keys}").as_bytes(), 1, 3),
            format!("*2\r\n$4\r\n7169\r\n{keys}")
        );
        // Master 1 is done: the next cursor starts master 2.
        assert_eq!(
            rewritten(format!("*2\r\n$1\r\n0\r\n{keys}").as_bytes(), 1, 3),
            format!("*2\r\n$1\r\n2\r\n{keys}")
        );
        // The last master is done: the scan is.
        assert_eq!(
            rewritten(b"*2\r\n$1\r\n0\r\n*0\r\n", 2, 3),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
        assert_eq!(
            rewritten(b"-ERR invalid cursor\r\n", 0, 3),
            "-ERR invalid cursor\r\n"
        );
    }
}
