//! A reply's fetch from Redis: the request and, pipelined on the same
//! connection (in cluster mode, each to its key's master), the PTTL of each
//! of its keys, so the entry ends when the first of them ends in Redis;
//! then the fill, and the outcome shared with every read waiting on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::raw::frame::Framer;
use crate::backend::Ttl;
use crate::cache::Time;
use crate::metrics::BackendResult;

use super::super::fill::Fetched;
use super::super::flight::{Flight, LeaderGuard};
use super::super::forward::{Batch, Client, Lane};
use super::super::{FetchResult, Found, ReadError, Service, Source, Value};
use super::Plan;

impl Service {
    /// Fetches the reply to `args` for everyone waiting on `flight`, fills
    /// the cache and wakes the waiters.
    pub(super) fn lead_reply(
        &self,
        client: Client,
        args: &[&[u8]],
        (plan, keys): (&Plan, &[&[u8]]),
        flight: &Arc<Flight>,
    ) -> Result<Found, ReadError> {
        let request = (plan.reply_db, &plan.request[..]);
        let mut leader = LeaderGuard::new(|outcome: FetchResult| {
            self.core.reply_fill(request, keys, flight, &outcome);
            flight.complete(outcome);
        });
        let outcome = self.fetch_with_ttls(client, args, keys).map(Some);
        leader.finish(outcome.clone());
        self.reply_found(outcome)
    }

    /// The reply to `args` and when the first of `keys` ends in Redis:
    /// `ends` in the past for an error reply (never stored), or a key gone
    /// or whose PTTL was refused.
    fn fetch_with_ttls(
        &self,
        client: Client,
        args: &[&[u8]],
        keys: &[&[u8]],
    ) -> Result<Fetched, ReadError> {
        let mut batch = Batch::with_capacity(64);
        batch.push(args, false);
        for key in keys {
            batch.push(&[b"PTTL", key], false);
        }
        // Before the fetch: see `Backend::coverage`.
        let coverage = self.backend.coverage();
        let sent = self.core.now();
        let started = Instant::now();
        let mut out = Vec::new();
        let fetched = self.fetch_batch(&batch, client, &mut out);
        let result = match &fetched {
            Ok(()) => BackendResult::Found,
            Err(ReadError::Timeout(_)) => BackendResult::Timeout,
            Err(ReadError::Reply(_)) => BackendResult::ErrorReply,
            Err(ReadError::Unavailable(_)) => BackendResult::Unavailable,
        };
        self.backend_called(result, started, fetched.as_ref().err());
        fetched?;
        let mut framer = Framer::default();
        let Ok(Some(len)) = framer.next(&out) else {
            return Err(ReadError::Unavailable(
                "Redis's reply could not be framed".to_owned(),
            ));
        };
        let (reply, mut rest) = out.split_at(len);
        let mut ends: Option<Time> = None;
        let mut end_at = |end: Time| ends = Some(ends.map_or(end, |e| e.min(end)));
        // An error is never kept; nor, in a cluster, a reply that may come
        // from a master no invalidation link covers yet.
        let covered = coverage.is_some_and(|coverage| self.backend.still_covers(coverage));
        if matches!(reply.first(), Some(b'-' | b'!')) || !covered {
            end_at(sent);
        }
        for _ in keys {
            let len = match framer.next(rest) {
                Ok(Some(len)) => len,
                _ => 0,
            };
            let (pttl, tail) = rest.split_at(len);
            rest = tail;
            if let Some(end) = self.ends(sent, pttl_of(pttl)) {
                end_at(end);
            }
        }
        Ok(Fetched {
            value: Value::new(reply),
            ends,
        })
    }

    /// What a reply fetch gives its reader: fresh for the whole lifetime,
    /// or until the first of its keys ends in Redis if sooner.
    pub(super) fn reply_found(&self, outcome: FetchResult) -> Result<Found, ReadError> {
        self.as_found(outcome)?
            .ok_or_else(|| ReadError::Unavailable("no reply".to_owned()))
    }

    /// The reply to `args`, from Redis, nothing stored: a request that is
    /// not cacheable, forwarded as any client's (a write's keys dropped,
    /// a refused command answered with the proxy's error).
    pub(super) fn fetch_uncached(
        &self,
        client: Client,
        args: &[&[u8]],
    ) -> Result<Found, ReadError> {
        let mut batch = Batch::with_capacity(64);
        batch.push(args, false);
        let mut out = Vec::new();
        let _ = self.forward(&batch, client, Lane::Pooled, None, &mut out);
        Ok(Found {
            value: Value::new(&out),
            source: Source::Miss,
            fresh_for: Duration::ZERO,
            age: Duration::ZERO,
        })
    }
}

/// A PTTL reply read: `:-2` gone, `:-1` no TTL, `:n` n ms left; an error
/// (or anything else) refused.
fn pttl_of(reply: &[u8]) -> Ttl {
    let number = reply
        .strip_prefix(b":")
        .and_then(|r| r.strip_suffix(b"\r\n"))
        .and_then(|r| std::str::from_utf8(r).ok())
        .and_then(|r| r.parse::<i64>().ok());
    match number {
        Some(-2) => Ttl::Gone,
        Some(-1) => Ttl::Persistent,
        Some(ms) if ms >= 0 => Ttl::Left(Duration::from_millis(ms as u64)),
        _ => Ttl::Refused(String::from_utf8_lossy(reply).trim_end().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pttl_replies_read() {
        assert_eq!(pttl_of(b":-2\r\n"), Ttl::Gone);
        assert_eq!(pttl_of(b":-1\r\n"), Ttl::Persistent);
        assert_eq!(
            pttl_of(b":1500\r\n"),
            Ttl::Left(Duration::from_millis(1500))
        );
        assert!(matches!(pttl_of(b"-NOPERM no\r\n"), Ttl::Refused(_)));
        assert!(matches!(pttl_of(b""), Ttl::Refused(_)));
    }
}
