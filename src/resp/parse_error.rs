//! A request's bytes that are not valid RESP, and the error reply Redis
//! gives them. Apart from the parser (`parse.rs`), to keep it under 400
//! lines.

/// A request whose bytes are not valid RESP. The connection answers
/// `-ERR Protocol error: <reason>` ([`ProtocolError::message`]) and
/// closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// What is wrong, in Redis 7's words where Redis has the error.
    pub reason: &'static str,
    /// The byte found where a bulk string's `$` belongs, which Redis 7
    /// names after the reason (`expected '$', got '*'`).
    pub got: Option<u8>,
}

/// Redis's `proto-max-bulk-len` default (512 MB): a longer argument is
/// `invalid bulk length` at Redis, authenticated or not.
pub(super) const MAX_BULK: usize = 512 * 1024 * 1024;

impl ProtocolError {
    /// An error with no byte to name.
    pub const fn new(reason: &'static str) -> ProtocolError {
        ProtocolError { reason, got: None }
    }

    /// A request of `count` arguments, more than taken: from a client not
    /// authenticated yet (`bounded`), Redis 7.0 calls any count it could
    /// hold (an `int`) `unauthenticated`.
    #[cold]
    pub(super) fn too_many_args(count: usize, bounded: bool) -> ProtocolError {
        let unauthenticated = bounded && count <= i32::MAX as usize;
        ProtocolError::new(match unauthenticated {
            true => "unauthenticated multibulk length",
            false => "invalid multibulk length",
        })
    }

    /// An argument of `len` bytes, longer than taken: from a client not
    /// authenticated yet (`bounded`), Redis calls any length up to
    /// `proto-max-bulk-len` `unauthenticated`.
    #[cold]
    pub(super) fn too_long_arg(len: usize, bounded: bool) -> ProtocolError {
        let unauthenticated = bounded && len <= MAX_BULK;
        ProtocolError::new(match unauthenticated {
            true => "unauthenticated bulk length",
            false => "invalid bulk length",
        })
    }

    /// The error reply's text, `ERR Protocol error: ...`, as Redis 7.0
    /// words it for the same bytes. Bytes, not a string: the byte named
    /// may be any (Redis sends it raw; a `\r` or `\n` the reply writer
    /// turns into a space, as Redis's does).
    pub fn message(&self) -> Vec<u8> {
        let mut text = format!("ERR Protocol error: {}", self.reason).into_bytes();
        if let Some(got) = self.got {
            text.extend_from_slice(b", got '");
            text.push(got);
            text.push(b'\'');
        }
        text
    }
}
