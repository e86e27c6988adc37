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

use crate::backend::{slot_of, split_cursor, Dest, Fold};
use crate::commands::{Class, Command, CommandTable, KeyRef, NoKeys, READONLY};
use crate::config::Forwarding;

pub use batch::Batch;

use super::{Change, Service};

/// The client a batch is sent for: its protocol and database.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// Whether it speaks RESP3 (after `HELLO 3`).
    pub resp3: bool,
    /// Its selected database.
    pub db: i64,
}

/// Commands without keys that change every key of a database or more.
const FLUSHING: &[&str] = &["flushall", "flushdb", "swapdb"];

/// What a cluster node answers a request whose keys lie in several slots.
const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Keyless commands sent to every master in cluster mode, and how their
/// replies make one (docs/forwarding-cluster.md).
const EVERY_MASTER: &[(&str, Fold)] = &[
    ("flushall", Fold::AllOk),
    ("flushdb", Fold::AllOk),
    ("script|load", Fold::AllOk),
    ("script|flush", Fold::AllOk),
    ("function|load", Fold::AllOk),
    ("function|delete", Fold::AllOk),
    ("function|flush", Fold::AllOk),
    ("function|restore", Fold::AllOk),
    ("dbsize", Fold::Sum),
    ("keys", Fold::Concat),
];

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

    /// Sends `batch` to Redis for `client` and appends one reply per
    /// request to `out`, in order: Redis's, byte for byte, or the proxy's
    /// error for a request it refuses or could not deliver.
    pub fn forward(&self, batch: &Batch, client: Client, out: &mut Vec<u8>) {
        let table = match self.commands() {
            Ok(table) => table,
            Err(err) => {
                let message = format!("ERR {err}");
                for _ in 0..batch.len() {
                    self.error_out(&message, out);
                }
                return;
            }
        };
        let mut argv = Vec::new();
        let mut refs = Vec::new();
        let routes: Vec<Route> = (0..batch.len())
            .map(|i| {
                batch.argv(i, &mut argv);
                self.route(&table, &argv, &mut refs)
            })
            .collect();
        let sent = routes
            .iter()
            .filter(|route| matches!(route, Route::Send { .. }))
            .count();
        let mut replies = Vec::new();
        let delivered = if self.backend.is_cluster() {
            let to = if sent == batch.len() {
                &mut *out
            } else {
                &mut replies
            };
            self.send_routed(batch, &routes, client, to)
        } else if sent == batch.len() {
            self.send(batch.frames(), sent, client, out)
        } else {
            let mut wire = Vec::new();
            for (i, route) in routes.iter().enumerate() {
                if let Route::Send { .. } = route {
                    wire.extend_from_slice(batch.frame(i));
                }
            }
            self.send(&wire, sent, client, &mut replies)
        };
        // Writes are dropped from the cache before any reply goes back,
        // whether or not Redis answered (a request sent may have run).
        self.drop_written(&table, batch, &routes);
        if sent == batch.len() {
            self.fail_rest(sent, delivered, out);
            return;
        }
        // Refusals interleaved: put the replies back in request order.
        let mut framer = crate::backend::raw::frame::Framer::default();
        let mut at = 0;
        let mut answered = 0;
        for route in &routes {
            match route {
                Route::Refuse(message) => self.error_out(message, out),
                Route::Send { .. } if answered < delivered.answered => {
                    let len = match framer.next(&replies[at..]) {
                        Ok(Some(len)) => len,
                        _ => break,
                    };
                    out.extend_from_slice(&replies[at..at + len]);
                    at += len;
                    answered += 1;
                }
                Route::Send { .. } => {
                    let message = delivered.error_message();
                    self.error_out(&message, out);
                }
            }
        }
    }

    /// What to do with one request (`refs`: room for its keys).
    fn route(&self, table: &CommandTable, argv: &[&[u8]], refs: &mut Vec<KeyRef>) -> Route {
        let Some(command) = table.lookup(argv) else {
            // Unknown to Redis too: its own error says so, byte for byte.
            return match self.forwarding {
                Forwarding::Reads => Route::Refuse(reads_only(argv)),
                _ => Route::Send {
                    write: false,
                    dest: Dest::Any,
                },
            };
        };
        let class = command.class(argv);
        if self.forwarding == Forwarding::Reads && command.flags & READONLY == 0 {
            return Route::Refuse(reads_only(argv));
        }
        match class {
            Class::Refused => Route::Refuse(format!(
                "ERR '{}' is not allowed through the proxy: it changes the server itself (see docs/forwarding.md)",
                command.name
            )),
            Class::Blocking | Class::Pubsub | Class::ConnectionState => {
                Route::Refuse(format!(
                    "ERR '{}' is not supported through the proxy yet",
                    command.name
                ))
            }
            Class::Write => self.send_route(command, argv, refs, true),
            Class::Cacheable | Class::Read | Class::Other => {
                self.send_route(command, argv, refs, false)
            }
        }
    }

    /// A request sent to Redis: in cluster mode, to the master its keys'
    /// slot belongs to, refused as a node would if they lie in several
    /// slots; keyless commands to one master, or every master (see
    /// [`EVERY_MASTER`]). A request whose keys the table cannot tell goes
    /// to one master, which redirects it (`-MOVED`) if it is not its own.
    fn send_route(
        &self,
        command: &Command,
        argv: &[&[u8]],
        refs: &mut Vec<KeyRef>,
        write: bool,
    ) -> Route {
        if !self.backend.is_cluster() {
            return Route::Send {
                write,
                dest: Dest::Any,
            };
        }
        if !command.arity_fits(argv.len()) {
            // A node checks the arity before the slots: its error, exactly.
            return Route::Send {
                write,
                dest: Dest::Any,
            };
        }
        let dest = match command.keys(argv, refs) {
            Ok(()) => match refs.split_first() {
                Some((first, rest)) => {
                    let slot = slot_of(argv[first.index]);
                    if rest.iter().any(|key| slot_of(argv[key.index]) != slot) {
                        return Route::Refuse(CROSSSLOT.to_owned());
                    }
                    Dest::Slot(slot)
                }
                None => match EVERY_MASTER.iter().find(|(name, _)| *name == command.name) {
                    Some((_, fold)) => Dest::Every(*fold),
                    None if command.name == "scan" => {
                        match argv.get(1).and_then(|cursor| split_cursor(cursor)) {
                            Some((master, _)) => Dest::Scan { master },
                            // Not a number: a node's own error says so.
                            None => Dest::Any,
                        }
                    }
                    None => Dest::Any,
                },
            },
            Err(NoKeys::Invalid | NoKeys::Unknown) => Dest::Any,
        };
        Route::Send { write, dest }
    }

    /// Cluster mode: sends each request to its master and writes one reply
    /// per request sent into `out`, Redis's or the proxy's error.
    fn send_routed(
        &self,
        batch: &Batch,
        routes: &[Route],
        client: Client,
        out: &mut Vec<u8>,
    ) -> Delivered {
        // SCAN's cursor is the proxy's: each goes out with its master's.
        let mut scans = Vec::new();
        let mut scan_ends = Vec::new();
        let mut argv = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            if let Route::Send {
                dest: Dest::Scan { .. },
                ..
            } = route
            {
                batch.argv(i, &mut argv);
                let cursor = argv.get(1).and_then(|c| split_cursor(c));
                let mut number = itoa::Buffer::new();
                let text = number.format(cursor.map_or(0, |(_, cursor)| cursor));
                let args: Vec<&[u8]> = argv
                    .iter()
                    .enumerate()
                    .map(|(at, arg)| if at == 1 { text.as_bytes() } else { *arg })
                    .collect();
                crate::backend::raw::encode(&args, &mut scans);
                scan_ends.push(scans.len());
            }
        }
        let mut scan_starts = std::iter::once(0).chain(scan_ends.iter().copied());
        let mut scan_ends = scan_ends.iter();
        let requests: Vec<(&[u8], Dest)> = routes
            .iter()
            .enumerate()
            .filter_map(|(i, route)| match route {
                Route::Send {
                    dest: dest @ Dest::Scan { .. },
                    ..
                } => {
                    let (start, end) = (scan_starts.next()?, *scan_ends.next()?);
                    Some((&scans[start..end], *dest))
                }
                Route::Send { dest, .. } => Some((batch.frame(i), *dest)),
                Route::Refuse(_) => None,
            })
            .collect();
        // Transactions in cluster mode: the pinned connection comes from
        // `Backend::checkout_raw_for(resp3, db, Some(slot))`, the slot
        // found here for the transaction's first keyed command.
        self.backend
            .forward_cluster(client.resp3, client.db, &requests, out, &mut |err, out| {
                let message = format!("ERR {}", super::ReadError::from(err.clone()));
                self.error_out(&message, out);
            });
        Delivered::all(requests.len())
    }

    /// Sends `count` requests and reads their replies into `out`.
    fn send(&self, requests: &[u8], count: usize, client: Client, out: &mut Vec<u8>) -> Delivered {
        if count == 0 {
            return Delivered::all(0);
        }
        match self
            .backend
            .forward(client.resp3, client.db, requests, count, out)
        {
            Ok(()) => Delivered::all(count),
            Err(err) => Delivered {
                answered: err.answered,
                error: Some(format!("ERR {}", super::ReadError::from(err.error))),
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

    /// Drops from the cache every key the batch's writes touched (all of
    /// it where a write's keys cannot be known, or a flush), marking
    /// fetches in flight for them stale, and tells tracking clients.
    fn drop_written(&self, table: &CommandTable, batch: &Batch, routes: &[Route]) {
        let mut argv = Vec::new();
        let mut refs: Vec<KeyRef> = Vec::new();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut everything = false;
        for (i, route) in routes.iter().enumerate() {
            if !matches!(route, Route::Send { write: true, .. }) {
                continue;
            }
            batch.argv(i, &mut argv);
            let Some(command) = table.lookup(&argv) else {
                continue;
            };
            match command.keys(&argv, &mut refs) {
                Ok(()) if refs.is_empty() && FLUSHING.contains(&command.name.as_str()) => {
                    everything = true;
                }
                Ok(()) => keys.extend(refs.iter().map(|r| argv[r.index].to_vec())),
                // Redis refuses a request whose keys do not parse.
                Err(NoKeys::Invalid) => {}
                Err(NoKeys::Unknown) => everything = true,
            }
        }
        if everything {
            self.core.flush();
            self.metrics.flushed("write");
            self.announce(|| Change::All);
        } else if !keys.is_empty() {
            let slices: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            self.core.invalidate(&slices);
            self.announce(|| Change::Keys(keys));
        }
    }
}

/// How many of the requests sent were answered, and why the rest were not.
struct Delivered {
    answered: usize,
    error: Option<String>,
}

impl Delivered {
    fn all(answered: usize) -> Delivered {
        Delivered {
            answered,
            error: None,
        }
    }

    fn error_message(&self) -> String {
        self.error
            .clone()
            .unwrap_or_else(|| "ERR backing Redis gave no reply".to_owned())
    }
}

fn reads_only(argv: &[&[u8]]) -> String {
    format!(
        "ERR '{}' is not forwarded: RESP_FORWARD=reads passes on only commands Redis flags readonly",
        String::from_utf8_lossy(argv.first().copied().unwrap_or_default()).to_lowercase()
    )
}
