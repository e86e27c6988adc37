//! A RESP client's cached read whose fill failed, sent to Redis again as
//! a forwarded command (docs/forwarding.md, "Timeouts"): which may be.

use crate::backend::raw::frame::TOO_LARGE;
use crate::backend::slot_of;
use crate::config::Forwarding;

use super::super::{ReadError, Service};

impl Service {
    /// Whether a RESP client's cached read `args` (the command name first:
    /// `GET`, `MGET`, a CACHE_COMMANDS read) whose fill failed with `err`
    /// is sent to Redis again as a forwarded command, to wait as those do
    /// (FORWARD_TIMEOUT_MS) and answer with Redis's own reply, as straight
    /// at Redis (docs/forwarding.md, "Timeouts"). The fill is bounded by
    /// REDIS_TIMEOUT_MS, which a busy Redis (another client's slow script)
    /// outlasts: its read times out, or (a connection retired by a timeout
    /// replaced, the new one's handshake unanswered) no connection comes,
    /// which reads as Redis unavailable, as a refused one does; those are
    /// sent again too, at the cost of one more try when Redis is down. A
    /// read, so running twice is harmless; nothing read that way is
    /// stored. Not for Redis's own error reply (the client has Redis's
    /// answer), a reply over RESP_MAX_REPLY_BYTES (forwarded, it would be
    /// refused the same), with RESP_FORWARD=off, nor, in cluster mode, an
    /// MGET whose keys lie in several slots (the cache reads them slot by
    /// slot; a node would refuse it whole).
    pub fn resends(&self, err: &ReadError, args: &[&[u8]]) -> bool {
        let failed = match err {
            ReadError::Timeout(_) => true,
            ReadError::Unavailable(why) => why != TOO_LARGE.0,
            ReadError::Reply(_) => false,
        };
        if !failed || self.forwarding == Forwarding::Off {
            return false;
        }
        match args.split_first() {
            Some((name, keys))
                if self.backend.is_cluster() && name.eq_ignore_ascii_case(b"mget") =>
            {
                let slot = keys.first().map(|key| slot_of(key));
                keys.iter().all(|key| Some(slot_of(key)) == slot)
            }
            Some(_) => true,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::backend::Backend;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::metrics::Metrics;

    use super::*;

    /// A service with `vars` set, never reaching Redis.
    fn service(vars: &[(&str, &str)]) -> Service {
        let config = Config::from_lookup(|name| match name {
            // Nothing listens on port 1.
            "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
            "INVALIDATION" => Some("off".to_owned()),
            _ => vars
                .iter()
                .find(|(set, _)| *set == name)
                .map(|(_, value)| (*value).to_owned()),
        })
        .expect("valid config");
        let backend = Backend::new(&config).expect("backend");
        let clock = ManualClock::new().clock();
        Service::new(&config, backend, Arc::new(Metrics::new()), clock)
    }

    fn timeout() -> ReadError {
        ReadError::Timeout("no reply within REDIS_TIMEOUT_MS (250 ms)".to_owned())
    }

    #[test]
    fn a_read_that_redis_did_not_answer_in_time_is_sent_again() {
        let service = service(&[]);
        let no_connection = ReadError::Unavailable("timed out waiting for connection".to_owned());
        for err in [timeout(), no_connection] {
            assert!(service.resends(&err, &[b"GET", b"k"]));
            assert!(service.resends(&err, &[b"MGET", b"a", b"b"]));
            assert!(service.resends(&err, &[b"HGETALL", b"h"]));
        }
        // Redis's own answer, and a reply too large, are not.
        let wrongtype = ReadError::Reply("WRONGTYPE Operation against a key".to_owned());
        assert!(!service.resends(&wrongtype, &[b"GET", b"k"]));
        let too_large = ReadError::Unavailable(TOO_LARGE.0.to_owned());
        assert!(!service.resends(&too_large, &[b"MGET", b"a"]));
    }

    #[test]
    fn nothing_is_sent_again_with_resp_forward_off() {
        let service = service(&[("RESP_FORWARD", "off")]);
        assert!(!service.resends(&timeout(), &[b"GET", b"k"]));
    }

    #[test]
    fn in_cluster_mode_an_mget_across_slots_is_not_sent_again() {
        let service = service(&[("REDIS_MODE", "cluster")]);
        assert!(service.resends(&timeout(), &[b"MGET", b"{u}a", b"{u}b"]));
        assert!(service.resends(&timeout(), &[b"GET", b"a"]));
        assert_ne!(slot_of(b"a"), slot_of(b"b"));
        assert!(!service.resends(&timeout(), &[b"MGET", b"a", b"b"]));
        assert!(!service.resends(&timeout(), &[b"mget", b"a", b"b"]));
    }
}
