//! `MGET` through the cache: a chunk of keys at a time, its hits taken
//! under one lock, its misses fetched together in one round trip
//! ([`Backend::get_many`]), with the coherence each single read has:
//! - each miss leads its key's fetch (the flight the table keeps), or joins
//!   one in flight, so a GET of the key meanwhile waits on this read and an
//!   invalidation arriving during it keeps the value out of the cache
//!   (`ReadThrough::fill`, per key, as for a GET);
//! - the TTL is learnt with the value and the entry never outlives it;
//! - when Redis cannot be read, a key's entry kept past its freshness
//!   (STALE_IF_ERROR_SECS) answers for it, else the whole MGET fails;
//! - every flight led here is finished (by a guard if the fetch unwinds)
//!   before any fetch led elsewhere is waited on, so two MGETs sharing
//!   keys never wait on each other.
//!
//! The reply is held to RESP_MAX_REPLY_BYTES as a forwarded one is: its
//! size is counted chunk by chunk, and once past the bound the read stops,
//! drops what it read and fails with the forwarding path's error. A hit
//! costs a pointer (a value over `SHARED_ABOVE` is shared), so one cached
//! value named many times is not held many times while counted.
//!
//! [`Backend::get_many`]: crate::backend::Backend::get_many

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{is_too_large, raw::frame::TOO_LARGE, Read};
use crate::metrics::BackendResult;

use super::flight::{Flight, LeaderGuard};
use super::read_through::Probe;
use super::{FetchResult, Found, ReadError, Service, Value};

/// Keys looked up under one lock and fetched in one round trip: a lock
/// held for about a thousand lookups, and a few MGETs of Redis for 100k
/// keys.
const CHUNK: usize = 1024;

/// At most this many bytes of keys in one chunk: the requests a chunk
/// sends name each key twice (MGET, EXISTS), and buffers of a few MiB on
/// each worker would stay with its malloc arena.
const CHUNK_BYTES: usize = 64 * 1024;

impl Service {
    /// `MGET` of `keys` in Redis's database `db`: each value in order,
    /// `None` for a key Redis does not have or that holds another type, as
    /// Redis's MGET answers. Fails whole if Redis could not be read for a
    /// key with no stale entry, or the reply would pass
    /// RESP_MAX_REPLY_BYTES.
    pub fn get_many(&self, db: i64, keys: &[Vec<u8>]) -> Result<Vec<Option<Value>>, ReadError> {
        let mut values = Vec::with_capacity(keys.len());
        let mut size = header(keys.len());
        let mut rest = keys;
        while !rest.is_empty() {
            let mut bytes = 0;
            let fits = rest
                .iter()
                .take(CHUNK)
                .take_while(|key| {
                    bytes += key.len();
                    bytes <= CHUNK_BYTES
                })
                .count();
            let (chunk, tail) = rest.split_at(fits.max(1));
            rest = tail;
            let from = values.len();
            self.read_chunk(db, chunk, &mut values)?;
            for value in &values[from..] {
                size = size.saturating_add(match value {
                    Some(value) => header(value.bytes().len()) + value.bytes().len() + 2,
                    None => 5,
                });
            }
            if size > self.max_reply {
                return Err(ReadError::Unavailable(TOO_LARGE.0.to_owned()));
            }
        }
        Ok(values)
    }

    /// Reads one chunk's `keys`, appending their values to `values`.
    fn read_chunk(
        &self,
        db: i64,
        keys: &[Vec<u8>],
        values: &mut Vec<Option<Value>>,
    ) -> Result<(), ReadError> {
        let from = values.len();
        let mut led = Vec::new();
        let mut followed = Vec::new();
        for (at, probe) in self.core.probe_many(db, keys).into_iter().enumerate() {
            values.push(match probe {
                Probe::Hit(value, _) => {
                    self.metrics.hit();
                    Some(value)
                }
                Probe::Lead(flight) => {
                    self.metrics.miss();
                    led.push((at, flight));
                    None
                }
                Probe::Follow(flight) => {
                    self.metrics.miss();
                    self.metrics.coalesced();
                    followed.push((at, flight));
                    None
                }
            });
        }
        let values = &mut values[from..];
        if !led.is_empty() {
            self.lead_many(db, keys, &led, values)?;
        }
        for (at, flight) in followed {
            let read = self.as_found(flight.wait(self.wait_limit));
            values[at] = answer(self.or_stale(db, &keys[at], read))?;
        }
        Ok(())
    }

    /// Fetches the keys `led` names (their places in `keys`, the flights
    /// this read leads) in one round trip, fills the cache and wakes each
    /// flight's waiters, then writes each answer at its place in `values`.
    fn lead_many(
        &self,
        db: i64,
        keys: &[Vec<u8>],
        led: &[(usize, Arc<Flight>)],
        values: &mut [Option<Value>],
    ) -> Result<(), ReadError> {
        let mut guards: Vec<_> = led
            .iter()
            .map(|(at, flight)| {
                let key = &keys[*at][..];
                LeaderGuard::new(move |outcome| self.finish_flight(db, key, flight, outcome))
            })
            .collect();
        let names: Vec<&[u8]> = led.iter().map(|(at, _)| &keys[*at][..]).collect();
        let sent = self.core.now();
        let started = Instant::now();
        let fetched = self.backend.get_many(db, &names);
        let result = match &fetched {
            Ok(reads)
                if reads
                    .iter()
                    .any(|r| matches!(r, Ok(Read { value: Some(_), .. }))) =>
            {
                BackendResult::Found
            }
            Ok(_) => BackendResult::Absent,
            Err(crate::backend::BackendError::Timeout(_)) => BackendResult::Timeout,
            Err(_) => BackendResult::Unavailable,
        };
        self.backend_called(result, started, fetched.as_ref().err());
        let outcomes: Vec<FetchResult> = match fetched {
            Err(err) if is_too_large(&err) => {
                // Not Redis failing: no stale entry stands in. A read that
                // joined one of these fetches (a GET of the key: the
                // flight is held by the table, `led` and it) is not failed
                // for this MGET's size: its key is read alone for it, and
                // dropped here once its waiters have it.
                let err = ReadError::from(err);
                for (guard, (at, flight)) in guards.iter_mut().zip(led) {
                    guard.finish(match Arc::strong_count(flight) > 2 {
                        true => self.fetch(db, &keys[*at]),
                        false => Err(err.clone()),
                    });
                }
                return Err(err);
            }
            Err(err) => vec![Err(ReadError::from(err)); led.len()],
            Ok(reads) => reads
                .into_iter()
                .map(|read| self.fetched(read, sent))
                .collect(),
        };
        // Every flight finished before any answer can fail the read.
        for (guard, outcome) in guards.iter_mut().zip(&outcomes) {
            guard.finish(outcome.clone());
        }
        for ((at, _), outcome) in led.iter().zip(outcomes) {
            values[*at] = answer(self.or_stale(db, &keys[*at], self.as_found(outcome)))?;
        }
        Ok(())
    }
}

/// A key's answer in an MGET: its value, nil when absent or of another
/// type (Redis's error reply), or the error that fails the whole command.
fn answer(read: Result<Option<Found>, ReadError>) -> Result<Option<Value>, ReadError> {
    match read {
        Ok(found) => Ok(found.map(|found| found.value)),
        // A key of another type is nil in MGET, as Redis answers it; any
        // other refusal (-BUSY, -NOPERM for the key) fails the MGET with
        // Redis's words, as Redis refuses the whole command.
        Err(ReadError::Reply(message)) if message.starts_with("WRONGTYPE") => Ok(None),
        Err(err) => Err(err),
    }
}

/// The bytes of a RESP header of `len` (`*len` or `$len`, CRLF).
fn header(len: usize) -> usize {
    1 + itoa::Buffer::new().format(len).len() + 2
}
