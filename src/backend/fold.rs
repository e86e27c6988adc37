//! One reply out of every master's, for commands sent to them all in
//! cluster mode (FLUSHALL, DBSIZE, KEYS), as the redis crate's cluster
//! client combines them: all succeeded, sum, arrays joined.

use super::forward_cluster::Fold;
use super::BackendError;

/// Appends to `out` the reply `how` makes of `each` master's (raw RESP
/// replies, in the masters' order). A master that gave none makes the
/// whole request fail (`failed`); a master's error reply is passed on as
/// the reply.
pub(super) fn fold(
    how: Fold,
    each: &[Result<&[u8], BackendError>],
    out: &mut Vec<u8>,
    failed: &mut dyn FnMut(&BackendError, &mut Vec<u8>),
) {
    let mut replies = Vec::with_capacity(each.len());
    for reply in each {
        match reply {
            Ok(reply) => replies.push(*reply),
            Err(err) => return failed(err, out),
        }
    }
    if let Some(error) = replies.iter().find(|reply| is_error(reply)) {
        return out.extend_from_slice(error);
    }
    let Some(first) = replies.first() else {
        return failed(
            &BackendError::Unavailable("the cluster has no masters".to_owned()),
            out,
        );
    };
    match how {
        Fold::AllOk => out.extend_from_slice(first),
        Fold::Sum => {
            let mut sum: i64 = 0;
            for reply in &replies {
                match header(reply, b':') {
                    Some((n, _)) => sum = sum.saturating_add(n),
                    None => return out.extend_from_slice(reply),
                }
            }
            number_line(b':', sum, out);
        }
        Fold::Concat => {
            let mut total: i64 = 0;
            for reply in &replies {
                match header(reply, b'*') {
                    Some((n, _)) if n >= 0 => total = total.saturating_add(n),
                    _ => return out.extend_from_slice(reply),
                }
            }
            number_line(b'*', total, out);
            for reply in &replies {
                if let Some((_, body)) = header(reply, b'*') {
                    out.extend_from_slice(&reply[body..]);
                }
            }
        }
    }
}

fn is_error(reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b'-' | b'!'))
}

/// The number on a reply's first line if it starts with `kind`, and where
/// the rest of the reply begins.
fn header(reply: &[u8], kind: u8) -> Option<(i64, usize)> {
    let rest = reply.strip_prefix(&[kind])?;
    let end = rest.windows(2).position(|pair| pair == b"\r\n")?;
    let number = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some((number, 1 + end + 2))
}

fn number_line(kind: u8, n: i64, out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(how: Fold, each: &[&[u8]]) -> Vec<u8> {
        let each: Vec<Result<&[u8], BackendError>> = each.iter().map(|r| Ok(*r)).collect();
        let mut out = Vec::new();
        fold(how, &each, &mut out, &mut |_, _| panic!("no failure"));
        out
    }

    #[test]
    fn replies_fold_as_cluster_clients_fold_them() {
        assert_eq!(folded(Fold::AllOk, &[b"+OK\r\n", b"+OK\r\n"]), b"+OK\r\n");
        assert_eq!(
            folded(Fold::AllOk, &[b"+OK\r\n", b"-ERR no\r\n"]),
            b"-ERR no\r\n"
        );
        assert_eq!(
            folded(Fold::Sum, &[b":3\r\n", b":0\r\n", b":4\r\n"]),
            b":7\r\n"
        );
        assert_eq!(
            folded(
                Fold::Concat,
                &[
                    b"*1\r\n$1\r\na\r\n",
                    b"*0\r\n",
                    b"*2\r\n$1\r\nb\r\n$1\r\nc\r\n"
                ]
            ),
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        let mut out = Vec::new();
        let mut failures = 0;
        fold(
            Fold::Sum,
            &[Ok(b":1\r\n"), Err(BackendError::Timeout("t".to_owned()))],
            &mut out,
            &mut |_, _| failures += 1,
        );
        assert_eq!((failures, out.len()), (1, 0));
    }
}
