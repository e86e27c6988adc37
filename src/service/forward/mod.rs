//! Forwarding: clients' commands that the proxy does not answer itself go
//! to Redis, and Redis's replies come back byte for byte (RESP_FORWARD;
//! docs/forwarding.md).
//!
//! A batch of requests (one client's pipeline, or several clients'
//! commands a worker gathered) is written to one raw connection at once and
//! its replies read back in order. Before any reply is handed back, every
//! key a write touched is dropped from the cache and fetches in flight for
//! it are marked stale, so the client's next read, on any connection and
//! over HTTP too, sees the write whatever the invalidation link's timing
//! (read-your-writes). Where a command's keys cannot be known, the whole
//! cache is dropped instead.

mod batch;
mod cluster;
mod fetch;
mod held;
mod lookups;
mod looped;
mod resend;
mod route;
mod wait;
mod written;

use std::sync::LazyLock;
use std::time::Duration;

use crate::backend::raw::{RawConn, Wait};
use crate::backend::Dest;
use crate::config::Forwarding;
use crate::log_limit::LogLimiter;
use crate::metrics::{ForwardResult, ForwardedCommand};

pub use batch::Batch;
pub use held::{Held, Lane, Pin, Queued};
pub use looped::{Plan, Taken, Upstream};
pub use route::Carried;

use written::Written;

use super::{Forwarded, Service};

/// The client a batch is sent for: its protocol and database.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// Whether it speaks RESP3 (after `HELLO 3`).
    pub resp3: bool,
    /// Its selected database.
    pub db: i64,
    /// Sent on a connection of its own that may wait as long as Redis
    /// takes: blocking commands and subscriptions are allowed.
    pub dedicated: bool,
}

/// The transaction commands: sent on the connection the client holds (see
/// [`Held`]); EXEC, DISCARD and UNWATCH elsewhere answer as Redis does.
const TRANSACTION: &[&str] = &["multi", "exec", "discard", "watch", "unwatch"];

/// Sent to Redis in place of a request the proxy refuses inside MULTI: a
/// command Redis does not know, so Redis too counts an error while
/// queueing and EXEC answers EXECABORT, as after any command refused there
/// (the client saw an error: nothing of the transaction may run). Redis's
/// reply to it is dropped; the client gets the proxy's.
const SPOILER: &[u8] = b"*1\r\n$28\r\nredis-proxy-refused-in-multi\r\n";

/// What is done with one request of a batch.
enum Route {
    /// Sent to Redis (in cluster mode, to `dest`); `write`: its keys are
    /// dropped once it ran.
    Send { write: bool, dest: Dest },
    /// Answered by the proxy with this error.
    Refuse(String),
}

impl Service {
    /// Which commands the RESP port passes on (RESP_FORWARD).
    pub fn forwarding(&self) -> Forwarding {
        self.forwarding
    }

    /// The database a new client starts in: the one REDIS_ADDRESS names.
    pub fn default_db(&self) -> i64 {
        self.backend.default_db()
    }

    /// Sends `batch` to Redis for `client` on `lane` and appends one reply
    /// per request to `out`, in order: Redis's, byte for byte, or the
    /// proxy's error for a request it refuses or could not deliver.
    /// `queued`: the writes of a transaction that this batch's EXEC runs,
    /// whose keys are dropped (again) once it has. The connection the
    /// client holds after the batch, if any: `None` where the lane asked to
    /// keep one means it was lost, and with it the transaction, or that
    /// the batch's first WATCH failed (see [`Batch::mark_first_watch`]):
    /// either way nothing is watched at Redis. And what
    /// became of each request, for [`Service::forwarded`] to count.
    pub fn forward(
        &self,
        batch: &Batch,
        client: Client,
        lane: Lane,
        queued: Option<&Queued>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let mut conn = match lane {
            Lane::Pooled => None,
            Lane::Held(Some(Held(Some(conn))), keep) => Some((*conn, keep)),
            Lane::Held(None, true) if self.defers_multi(batch) => {
                out.extend_from_slice(b"+OK\r\n");
                return Sent::kept(Some(Held(None)), Forwarded::with_capacity(0));
            }
            Lane::Held(Some(Held(None)), keep) => {
                return self.forward_after_multi(batch, client, keep, queued, out)
            }
            Lane::Held(None, keep) => match self.open_pinned(client, self.pin(batch)) {
                Ok(conn) => Some((conn, keep)),
                Err(message) => {
                    let mut counted = Forwarded::with_capacity(batch.len());
                    for _ in 0..batch.len() {
                        self.error_out(&message, out);
                        counted.push(ForwardedCommand::OTHER);
                    }
                    return Sent::kept(None, counted);
                }
            },
        };
        let start = out.len();
        let (counted, unanswered_at) =
            self.forward_batch(batch, client, conn.as_mut().map(|(c, _)| c), out);
        let ended = conn.as_ref().is_some_and(|(conn, _)| conn.ended);
        let mut why = None;
        if ended {
            // Redis closed the client's own connection under it: the
            // replies that came stand, the client hears nothing more.
            // Whether that was Redis's doing or the client's (its leaving
            // passed on behind a blocking command) only the front end
            // knows: it logs `why` when it closes the client for it.
            if let Some(at) = unanswered_at {
                why = Some(first_error(&out[at..]));
                out.truncate(at);
            }
        }
        match (queued, self.commands()) {
            (Some(Queued::Commands(queued)), Ok(table)) => {
                self.drop_written(queued, &written::written(&table, queued));
            }
            (Some(_), _) => self.drop_everything(),
            (None, _) => {}
        }
        // A first WATCH that failed (refused here or by Redis) leaves no
        // key watched at Redis: the client holds nothing, and the
        // connection, with no state of the client's on it, is pooled.
        let watch_failed = batch.ends_with_first_watch() && !last_reply_ok(&out[start..]);
        let held = match conn {
            Some((conn, true)) if watch_failed => {
                self.backend.checkin_raw(conn);
                None
            }
            Some((conn, true)) if !conn.broken => Some(Held(Some(Box::new(conn)))),
            // Pooled again only if what ended the transaction (EXEC,
            // DISCARD, UNWATCH) succeeded: after an error, Redis may still
            // hold state on it, so it is closed (a refused EXEC does end
            // MULTI and every WATCH, but closing costs one connection).
            Some((conn, false)) if last_reply_ok(&out[start..]) => {
                self.backend.checkin_raw(conn);
                None
            }
            Some(_) | None => None,
        };
        Sent {
            held,
            counted,
            ended,
            why,
        }
    }

    /// [`Service::forward`]'s batch on the connection `held` (or pooled
    /// ones), and where in `out` the first error for a request Redis did
    /// not answer begins, if any.
    fn forward_batch(
        &self,
        batch: &Batch,
        client: Client,
        held: Option<&mut RawConn>,
        out: &mut Vec<u8>,
    ) -> (Forwarded, Option<usize>) {
        let mut counted = Forwarded::with_capacity(batch.len());
        let mut unanswered_at = None;
        let table = match self.commands() {
            Ok(table) => table,
            Err(err) => {
                let message = format!("ERR {err}");
                for _ in 0..batch.len() {
                    self.error_out(&message, out);
                    counted.push(ForwardedCommand::OTHER);
                }
                return (counted, None);
            }
        };
        let mut written = Written::default();
        let routes = self.route_batch(&table, batch, client, &mut counted, &mut written);
        let sent = routes
            .iter()
            .filter(|route| matches!(route, Route::Send { .. }))
            .count();
        let mut replies = Vec::new();
        let mut held = held;
        let start = out.len();
        let delivered = if self.backend.is_cluster() && held.is_none() {
            let to = if sent == batch.len() {
                &mut *out
            } else {
                &mut replies
            };
            self.send_routed(batch, &routes, (client, Wait::Forwarded), to)
        } else if sent == batch.len() {
            self.send(batch.frames(), sent, (client, Wait::Forwarded), held, out)
        } else {
            let mut wire = Vec::new();
            let mut count = 0;
            for (i, route) in routes.iter().enumerate() {
                match route {
                    Route::Send { .. } => wire.extend_from_slice(batch.frame(i)),
                    Route::Refuse(_) if batch.queued(i) => wire.extend_from_slice(SPOILER),
                    Route::Refuse(_) => continue,
                }
                count += 1;
            }
            self.send(
                &wire,
                count,
                (client, Wait::Forwarded),
                held.take(),
                &mut replies,
            )
        };
        // Writes are dropped from the cache before any reply goes back,
        // whether or not Redis answered (a request sent may have run).
        self.drop_written(batch, &written);
        if sent == batch.len() {
            self.redis_replies(&out[start..], &mut counted);
            if delivered.answered < sent {
                unanswered_at = Some(out.len());
            }
            self.fail_rest(sent, delivered, out);
            return (counted, unanswered_at);
        }
        // Refusals interleaved: put the replies back in request order.
        let mut framer = crate::backend::raw::frame::Framer::default();
        let mut at = 0;
        let mut answered = 0;
        for (i, route) in routes.iter().enumerate() {
            match route {
                Route::Refuse(message) => {
                    if batch.queued(i) && answered < delivered.answered {
                        // Redis's reply to the SPOILER sent in its place.
                        match framer.next(&replies[at..]) {
                            Ok(Some(len)) => at += len,
                            _ => break,
                        }
                        answered += 1;
                    }
                    self.error_out(message, out);
                    counted.set(i, ForwardResult::Rejected);
                }
                Route::Send { .. } if answered < delivered.answered => {
                    let len = match framer.next(&replies[at..]) {
                        Ok(Some(len)) => len,
                        _ => break,
                    };
                    counted.set(i, self.redis_replied(&replies[at..at + len]));
                    out.extend_from_slice(&replies[at..at + len]);
                    at += len;
                    answered += 1;
                }
                Route::Send { .. } => {
                    unanswered_at.get_or_insert(out.len());
                    let message = delivered.error_message();
                    self.error_out(&message, out);
                }
            }
        }
        (counted, unanswered_at)
    }

    /// Sends `count` requests and reads their replies into `out`; `wait`:
    /// whose they are, a client's (FORWARD_TIMEOUT_MS) or the cache's own
    /// (REDIS_TIMEOUT_MS). A connection `held` is a client's.
    fn send(
        &self,
        requests: &[u8],
        count: usize,
        (client, wait): (Client, Wait),
        held: Option<&mut RawConn>,
        out: &mut Vec<u8>,
    ) -> Delivered {
        if count == 0 {
            return Delivered::all(0);
        }
        let sent = match held {
            Some(conn) => {
                self.backend
                    .forward_on(conn, (client.resp3, client.db), requests, count, out)
            }
            None => self
                .backend
                .forward((client.resp3, client.db, wait), requests, count, out),
        };
        match sent {
            Ok(()) => Delivered::all(count),
            Err(err) => Delivered {
                answered: err.answered,
                error: Some(super::ReadError::from(err.error)),
            },
        }
    }

    /// Error replies for the requests after the `delivered` ones.
    fn fail_rest(&self, sent: usize, delivered: Delivered, out: &mut Vec<u8>) {
        let message = delivered.error_message();
        for _ in delivered.answered..sent {
            self.error_out(&message, out);
        }
    }

    fn error_out(&self, message: &str, out: &mut Vec<u8>) {
        self.error_replied(message);
        out.push(b'-');
        out.extend_from_slice(message.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// What [`Service::forward`] gives besides the replies.
pub struct Sent {
    /// The connection the client holds after the batch, if any: `None`
    /// where the lane asked to keep one means it was lost, and with it
    /// the transaction.
    pub held: Option<Held>,
    /// What became of each request, for [`Service::forwarded`] to count.
    pub counted: Forwarded,
    /// The connection the client held (a transaction's, WATCH's, a
    /// blocking command's) ended under the batch: Redis closed it, or the
    /// proxy followed a failover. The replies stop before the first
    /// request it left unanswered, and the client is to be closed, as
    /// Redis closes its own (see `resp/blocking.rs`).
    pub ended: bool,
    /// With `ended`, the cause, from the proxy's error for the first
    /// request left unanswered (none if every request was answered): for
    /// [`log_held_ended`].
    pub why: Option<String>,
}

impl Sent {
    fn kept(held: Option<Held>, counted: Forwarded) -> Sent {
        Sent {
            held,
            counted,
            ended: false,
            why: None,
        }
    }
}

/// How many of the requests sent were answered, and why the rest were not
/// (kept as the error, not its words: the cache's own reads hand it on as
/// it is, the clients' get it as an error reply).
struct Delivered {
    answered: usize,
    error: Option<super::ReadError>,
}

impl Delivered {
    fn all(answered: usize) -> Delivered {
        Delivered {
            answered,
            error: None,
        }
    }

    fn error_message(&self) -> String {
        match &self.error {
            Some(error) => format!("ERR {error}"),
            None => "ERR backing Redis gave no reply".to_owned(),
        }
    }

    /// Why not every request was answered, as a read's error.
    fn read_error(self) -> super::ReadError {
        self.error.unwrap_or_else(|| {
            super::ReadError::Unavailable("backing Redis gave no reply".to_owned())
        })
    }
}

/// Warnings that Redis closed a connection a client held, at most one per
/// interval (a restart ends many at once).
static HELD_ENDED: LazyLock<LogLimiter> = LazyLock::new(|| LogLimiter::new(Duration::from_secs(5)));

/// The cause in `errors`, the proxy's error replies for a held
/// connection's unanswered requests: the first one's words.
fn first_error(errors: &[u8]) -> String {
    let first = errors.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(first.strip_prefix(b"-").unwrap_or(first)).into_owned()
}

/// Logs `cause`, why a connection a client held ended under its request
/// ([`Sent::why`]); called by the front end as it closes the client, not
/// when the client's own leaving ended it.
pub fn log_held_ended(cause: &str) {
    HELD_ENDED.warn(format_args!(
        "the Redis connection a client held (a blocking command, a transaction, WATCH) ended under \
         its request ({cause}): the client's connection is closed after the replies that came, \
         as Redis closes its own"
    ));
}

/// Whether the last of `replies` is not an error.
fn last_reply_ok(replies: &[u8]) -> bool {
    let mut framer = crate::backend::raw::frame::Framer::default();
    let mut at = 0;
    let mut last = None;
    while let Ok(Some(len)) = framer.next(&replies[at..]) {
        last = replies.get(at).copied();
        at += len;
    }
    !matches!(last, Some(b'-' | b'!') | None)
}
