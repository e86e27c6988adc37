//! The bytes of tracking messages, framed exactly as Redis frames them.

use crate::resp::reply::Protocol;

/// The keys (or `None`: everything) as an array, or the null that means
/// "flush everything".
fn keys_or_null<K: AsRef<[u8]>>(buf: &mut Vec<u8>, protocol: Protocol, keys: Option<&[K]>) {
    match keys {
        Some(keys) => {
            header(buf, b'*', keys.len());
            for key in keys {
                let key = key.as_ref();
                header(buf, b'$', key.len());
                buf.extend_from_slice(key);
                buf.extend_from_slice(b"\r\n");
            }
        }
        None if protocol == Protocol::Resp3 => buf.extend_from_slice(b"_\r\n"),
        None => buf.extend_from_slice(b"$-1\r\n"),
    }
}

fn header(buf: &mut Vec<u8>, tag: u8, len: usize) {
    buf.push(tag);
    buf.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// `>2 invalidate [keys]` on a RESP3 client's own connection.
pub fn invalidate_push<K: AsRef<[u8]>>(buf: &mut Vec<u8>, keys: Option<&[K]>) {
    buf.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    keys_or_null(buf, Protocol::Resp3, keys);
}

/// The message a RESP2 `REDIRECT` target gets on `__redis__:invalidate`
/// (a RESP3 one gets [`invalidate_push`], as from Redis 7.0).
pub fn redirect_message<K: AsRef<[u8]>>(buf: &mut Vec<u8>, keys: Option<&[K]>) {
    buf.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    keys_or_null(buf, Protocol::Resp2, keys);
}

/// `>2 tracking-redir-broken <id>`: the connection messages went to is gone.
pub fn redir_broken_push(buf: &mut Vec<u8>, id: u64) {
    buf.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
    buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_as_redis_frames_them() {
        let mut buf = Vec::new();
        invalidate_push(&mut buf, Some(&[b"k".to_vec()]));
        assert_eq!(buf, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        buf.clear();
        invalidate_push::<&[u8]>(&mut buf, None);
        assert_eq!(buf, b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        buf.clear();
        redirect_message(&mut buf, Some(&[b"k".to_vec()]));
        assert_eq!(
            buf,
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        buf.clear();
        redir_broken_push(&mut buf, 7);
        assert_eq!(buf, b">2\r\n$21\r\ntracking-redir-broken\r\n:7\r\n");
    }
}
