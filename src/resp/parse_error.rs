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

impl ProtocolError {
    /// An error with no byte to name.
    pub const fn new(reason: &'static str) -> ProtocolError {
        ProtocolError { reason, got: None }
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

#[cfg(test)]
mod tests {
    use super::super::{Parser, Request};
    use super::ProtocolError;

    /// What a parser bounded as a client not authenticated (or not, with
    /// `bounded` false) makes of `buf`.
    fn parsed(bounded: bool, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        let mut parser = Parser::default();
        parser.bound(bounded);
        parser.parse_at(&mut buf.to_vec(), 0)
    }

    fn reason(bounded: bool, buf: &[u8]) -> &'static str {
        parsed(bounded, buf).expect_err("refused").reason
    }

    #[test]
    fn before_auth_redis_s_bounds_and_words() {
        assert_eq!(reason(true, b"*11\r\n"), "unauthenticated multibulk length");
        assert_eq!(
            reason(true, b"*2000000\r\n"),
            "unauthenticated multibulk length"
        );
        assert_eq!(reason(true, b"*2147483648\r\n"), "invalid multibulk length");
        assert_eq!(parsed(true, b"*10\r\n"), Ok(None));
        let long = b"*2\r\n$3\r\nSET\r\n$16385\r\n";
        assert_eq!(reason(true, long), "unauthenticated bulk length");
        let huge = b"*2\r\n$3\r\nSET\r\n$100000000\r\n";
        assert_eq!(reason(true, huge), "unauthenticated bulk length");
        let past = b"*2\r\n$3\r\nSET\r\n$600000000\r\n";
        assert_eq!(reason(true, past), "invalid bulk length");
        let mut most = b"*2\r\n$3\r\nSET\r\n$16384\r\n".to_vec();
        most.extend_from_slice(&[b'x'; 16384]);
        most.extend_from_slice(b"\r\n");
        assert_eq!(
            parsed(true, &most).expect("taken").expect("whole").len,
            most.len()
        );
        // Unbounded, the same requests are the parser's own to judge.
        assert_eq!(parsed(false, b"*11\r\n"), Ok(None));
        assert_eq!(parsed(false, long), Ok(None));
        assert_eq!(reason(false, b"*2000000\r\n"), "invalid multibulk length");
        // Read in pieces, the count is judged once its line is in.
        let mut parser = Parser::default();
        parser.bound(true);
        assert_eq!(parser.parse_at(&mut b"*1".to_vec(), 0), Ok(None));
        let refused = parser
            .parse_at(&mut b"*11\r\n".to_vec(), 0)
            .expect_err("refused");
        assert_eq!(refused.reason, "unauthenticated multibulk length");
        // Lifted (AUTH), the next request is taken whole.
        parser.bound(false);
        let mut eleven = b"*11\r\n".to_vec();
        for _ in 0..11 {
            eleven.extend_from_slice(b"$1\r\nk\r\n");
        }
        assert_eq!(
            parser
                .parse_at(&mut eleven, 0)
                .expect("ok")
                .expect("whole")
                .args
                .len(),
            11
        );
    }

    #[test]
    fn a_limit_under_the_bound_keeps_its_own_words() {
        let mut parser = Parser::with_limit(8192);
        parser.bound(true);
        let refused = parser
            .parse_at(&mut b"*2\r\n$3\r\nSET\r\n$10000\r\n".to_vec(), 0)
            .expect_err("refused");
        assert_eq!(refused.reason, "invalid bulk length");
    }
}
