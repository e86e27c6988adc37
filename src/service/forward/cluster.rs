//! Cluster mode: each forwarded request goes to the master its keys' slot
//! belongs to (docs/forwarding-cluster.md).

use crate::backend::{slot_of, split_cursor, Dest, Fold};
use crate::commands::{Command, KeyRef, NoKeys};

use super::super::Service;
use super::{Batch, Client, Delivered, Route, Wait};

/// What a cluster node answers a request whose keys lie in several slots.
const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// What a Redis not in cluster mode answers every `CLUSTER` subcommand
/// and `READONLY`, `READWRITE` and `ASKING` (their arity right).
const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";

/// The route of `command`, sent with `argc` arguments, if the proxy
/// answers it as a Redis not in cluster mode does, since it presents one
/// standalone Redis (its `INFO` says `cluster_enabled:0`): `READONLY`,
/// `READWRITE` and `ASKING` in every mode (they would change a connection
/// shared with others, and are never Redis's to answer), and in cluster
/// mode (`cluster`) every `CLUSTER` subcommand: forwarded,
/// `CLUSTER SLOTS`/`NODES`/`SHARDS` would hand a cluster-aware client the
/// nodes' addresses, and it would talk to them directly, bypassing the
/// proxy and its cache; refused with [`NO_CLUSTER`], such a client fails
/// at start, saying the cluster is disabled. With a wrong argument count
/// they go to Redis, whose arity error, the words a standalone Redis
/// uses, changes nothing (so does an unknown subcommand, never looked up
/// here). None: routed as any command.
pub(super) fn as_standalone(command: &Command, argc: usize, cluster: bool) -> Option<Route> {
    let name = command.name.as_str();
    let ours = matches!(name, "readonly" | "readwrite" | "asking")
        || (cluster && name.starts_with("cluster|"));
    if !ours {
        return None;
    }
    Some(match command.arity_fits(argc) {
        true => Route::Refuse(NO_CLUSTER.to_owned()),
        false => Route::Send {
            write: false,
            dest: Dest::Any,
        },
    })
}

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

impl Service {
    /// A request sent to Redis: in cluster mode, to the master its keys'
    /// slot belongs to, refused as a node would if they lie in several
    /// slots; keyless commands to one master, or every master (see
    /// [`EVERY_MASTER`]). A request whose keys the table cannot tell goes
    /// to one master, which redirects it (`-MOVED`) if it is not its own.
    pub(super) fn send_route(
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
        let dest = match command.slot_keys(argv, refs) {
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
    /// per request sent into `out`, Redis's or the proxy's error; `wait`:
    /// whose requests they are (a client's, or the cache's own).
    pub(super) fn send_routed(
        &self,
        batch: &Batch,
        routes: &[Route],
        (client, wait): (Client, Wait),
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
        self.backend.forward_cluster(
            (client.resp3, client.db, wait),
            &requests,
            out,
            &mut |err, out| {
                let message = format!("ERR {}", crate::service::ReadError::from(err.clone()));
                self.error_out(&message, out);
            },
        );
        Delivered::all(requests.len())
    }
}
