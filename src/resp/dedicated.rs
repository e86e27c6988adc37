//! Blocking commands (BLPOP, XREAD BLOCK, WAIT...) and Pub/Sub
//! subscriptions, each on a Redis connection of its own with a thread of
//! its own, so that nothing shared (a worker, a WORKERS place, a pooled
//! connection) ever waits on one client's blocking command.
//!
//! At most DEDICATED_CONNECTIONS run at once; past it the command is
//! refused with an error naming the setting. A client that leaves while its
//! command blocks has that connection ended at once ([`Cancel`]): its end
//! passed on behind the command (a half-close), so Redis frees it as it
//! would the client and nothing is popped on its behalf afterwards.
//!
//! A subscription's connection has two threads: one reads what Redis sends
//! (confirmations, messages, replies) and passes it to the event loop as it
//! comes; one writes the client's further Pub/Sub commands (the rest take
//! the usual paths: `subscribed.rs`). They live until the client closes,
//! leaves (RESET, QUIT), or is subscribed to nothing and sends another
//! command (then the subscription is released); or until Redis closes the
//! connection: then the client is closed too, as Redis's own would be.

use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::LazyLock;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use mio::{Token, Waker};

use crate::log_limit::LogLimiter;
use crate::service::{Batch, Client, Lane, Pin, Service};

use super::blocking::run_blocking;
use super::cancel::{Cancel, Closer};
use super::fence::{Fence, Start};
use super::workers::{Done, DoneKind};

/// Commands a subscribed client may have on their way to Redis at once,
/// and their bytes; a client that sends more while Redis does not read
/// them is closed.
const SUBSCRIPTION_BACKLOG: usize = 1024;
const SUBSCRIPTION_BACKLOG_BYTES: usize = 4 * 1024 * 1024;

/// Starts blocking commands and subscriptions, within the bound.
pub struct Dedicated {
    service: Arc<Service>,
    done: Sender<Done>,
    waker: Arc<Waker>,
    open: Arc<AtomicUsize>,
    max: usize,
    /// Up from each hand-off until its request is written to Redis, so no
    /// other client's later command overtakes it (`fence.rs`).
    fence: Fence,
}

/// Why a subscription's connection ended when the proxy followed a
/// failover and shut it (for the log: the client is closed without a
/// word, as the sentinels' `CLIENT KILL TYPE pubsub` closes it at Redis).
const MASTER_CHANGED: &str = "master changed (sentinel failover)";

/// Warnings that a subscription's connection ended under its client, at
/// most one per interval (a Redis restart ends them all at once).
static SUBSCRIPTION_ENDED: LazyLock<LogLimiter> =
    LazyLock::new(|| LogLimiter::new(Duration::from_secs(5)));

/// Logs why a client's subscription connection ended under it (`cause`):
/// the client is closed, as Redis closes its own.
pub(super) fn subscription_lost(cause: &[u8]) {
    SUBSCRIPTION_ENDED.warn(format_args!(
        "a client's subscription connection to Redis ended ({}): the client's connection is \
         closed, as Redis closes its own",
        String::from_utf8_lossy(cause)
    ));
}

/// One of the DEDICATED_CONNECTIONS places, given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client's subscription: where its commands go, and the connection to
/// shut when it leaves (dropping this does it).
pub struct Subscription {
    /// Each request with its [`Start`], ended once it is written.
    commands: SyncSender<(Vec<u8>, Start)>,
    /// Bytes sent to the writer and not yet written.
    backlog: Arc<AtomicUsize>,
    cancel: Closer,
    fence: Fence,
}

impl Subscription {
    /// Passes one request on; false if the client must be closed (Redis
    /// is not reading them, or the subscription has ended).
    pub fn send(&self, request: Vec<u8>) -> bool {
        let len = request.len();
        if self.backlog.fetch_add(len, Ordering::AcqRel) + len > SUBSCRIPTION_BACKLOG_BYTES {
            return false;
        }
        match self.commands.try_send((request, self.fence.start())) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Dedicated {
    /// At most `max` at once; finished work goes to `done`, with `waker`;
    /// each hand-off raises `fence` until its request is written.
    pub fn new(
        service: Arc<Service>,
        (done, waker): (Sender<Done>, Arc<Waker>),
        max: usize,
        fence: Fence,
    ) -> Self {
        Dedicated {
            service,
            done,
            waker,
            open: Arc::new(AtomicUsize::new(0)),
            max,
            fence,
        }
    }

    /// The service they run through.
    pub fn service(&self) -> &Service {
        &self.service
    }

    fn place(&self) -> Result<Place, String> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "ERR too many blocking commands and subscriptions through the proxy (DEDICATED_CONNECTIONS={})",
                self.max
            ));
        }
        Ok(Place(Arc::clone(&self.open)))
    }

    /// Runs `batch` (one blocking request) for the connection `token` on a
    /// connection of its own: the one the client holds (`lane`), or a new
    /// one. Its reply comes back as a forwarded batch's. Err: the error to
    /// answer (no place free, or no thread).
    pub fn block(
        &self,
        token: Token,
        batch: Batch,
        client: Client,
        lane: Lane,
    ) -> Result<Cancel, (String, Lane)> {
        let place = match self.place() {
            Ok(place) => place,
            Err(message) => return Err((message, lane)),
        };
        let cancel = Closer::for_blocking();
        let (service, done, waker) = (
            Arc::clone(&self.service),
            self.done.clone(),
            Arc::clone(&self.waker),
        );
        let armed = cancel.clone();
        // Dropped with the thread's closure if it cannot start.
        let start = self.fence.start();
        let job = Arc::new(Mutex::new(Some((batch, lane))));
        let taken = Arc::clone(&job);
        thread::Builder::new()
            .name("resp-blocked".to_owned())
            .spawn(move || {
                let Some((batch, lane)) =
                    taken.lock().unwrap_or_else(PoisonError::into_inner).take()
                else {
                    return;
                };
                let (reply, held, lost) =
                    run_blocking(&service, &batch, (client, lane), &armed, start);
                // The place is free before the client can see the reply
                // and send its next blocking command.
                drop(place);
                let done_msg = Done {
                    token,
                    reply,
                    held,
                    kind: if lost {
                        DoneKind::Lost
                    } else {
                        DoneKind::Forwarded
                    },
                    resend: None,
                };
                if done.send(done_msg).is_ok() {
                    let _ = waker.wake();
                }
            })
            .map_err(|err| {
                let message = format!("ERR cannot start a thread for a blocking command: {err}");
                // The thread never ran: the lane is still here.
                let lane = job
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .map_or(Lane::Pooled, |(_, lane)| lane);
                (message, lane)
            })?;
        Ok(Cancel(cancel))
    }

    /// Starts a subscription for the connection `token`: its requests go
    /// through the returned handle, and everything Redis sends on it comes
    /// back as `DoneKind::Message` (then `DoneKind::Ended` when it ends).
    /// `pin`: where its first request says the connection goes (cluster
    /// mode: a shard channel's master).
    pub fn subscribe(
        &self,
        token: Token,
        client: Client,
        pin: Pin,
    ) -> Result<Subscription, String> {
        let place = self.place()?;
        let cancel = Closer::default();
        let (commands, requests) = mpsc::sync_channel(SUBSCRIPTION_BACKLOG);
        let backlog = Arc::new(AtomicUsize::new(0));
        let written = Arc::clone(&backlog);
        let (service, done, waker) = (
            Arc::clone(&self.service),
            self.done.clone(),
            Arc::clone(&self.waker),
        );
        let armed = cancel.clone();
        thread::Builder::new()
            .name("resp-subscribed".to_owned())
            .spawn(move || {
                let place = place;
                let (kind, ended) = relay(
                    &service,
                    (client, pin),
                    &armed,
                    (requests, written),
                    |message| {
                        let sent = done.send(Done {
                            token,
                            reply: message,
                            held: None,
                            kind: DoneKind::Message,
                            resend: None,
                        });
                        let _ = waker.wake();
                        sent.is_ok()
                    },
                );
                // The place is free before the client hears of the end
                // (a RESET waits for it) and can subscribe again.
                drop(place);
                let _ = done.send(Done {
                    token,
                    reply: ended.into_bytes(),
                    held: None,
                    kind,
                    resend: None,
                });
                let _ = waker.wake();
            })
            .map_err(|err| format!("ERR cannot start a thread for a subscription: {err}"))?;
        Ok(Subscription {
            commands,
            backlog,
            cancel,
            fence: self.fence.clone(),
        })
    }
}

/// A subscription's life: open the connection, write the client's
/// requests from a second thread, pass on everything Redis sends until the
/// connection ends. What ended it: `DoneKind::Ended` with an error reply
/// for the client (the proxy's own reasons), or `DoneKind::LinkEnded` with
/// the cause, for the log, when the connection ended under it (Redis
/// closed it, or a failover moved the master): the client is then closed
/// without a word, as Redis closes its own.
fn relay(
    service: &Service,
    (client, pin): (Client, Pin),
    cancel: &Closer,
    (requests, backlog): (Receiver<(Vec<u8>, Start)>, Arc<AtomicUsize>),
    mut deliver: impl FnMut(Vec<u8>) -> bool,
) -> (DoneKind, String) {
    let ended = |message: String| (DoneKind::Ended, message);
    let mut held = match service.hold(client, pin) {
        Ok(held) => held,
        Err(message) => return ended(message),
    };
    let Some(mut writer) = held.writer() else {
        return ended("ERR Pub/Sub through the proxy needs a plain redis:// connection to Redis (not rediss://)".to_owned());
    };
    let armed = held.closer().is_ok_and(|closer| cancel.arm(closer));
    if !armed || held.wait_forever(true).is_err() {
        return ended("ERR the client left".to_owned());
    }
    let writing = thread::Builder::new()
        .name("resp-subscribed-writer".to_owned())
        .spawn(move || {
            for (request, start) in requests {
                if writer.write_all(&request).is_err() {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                drop(start);
                backlog.fetch_sub(request.len(), Ordering::AcqRel);
            }
        });
    if writing.is_err() {
        return ended("ERR cannot start a thread for a subscription".to_owned());
    }
    let watch = service.watch_master(&held);
    loop {
        let mut message = Vec::new();
        if let Err(err) = held.receive(&mut message) {
            cancel.cancel();
            if watch.changed() {
                return (DoneKind::LinkEnded, MASTER_CHANGED.to_owned());
            }
            if crate::backend::raw::ended(&err) {
                return (DoneKind::LinkEnded, err.to_string());
            }
            return ended(format!(
                "ERR the subscription's connection to Redis ended: {err}"
            ));
        }
        if !deliver(message) {
            cancel.cancel();
            return ended(String::new());
        }
    }
}
