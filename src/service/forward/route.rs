//! Routing a batch: what is done with each request (sent to Redis, and
//! where in cluster mode, or refused by the proxy), each counted under its
//! command, and what its writes change noted as it goes.

use crate::backend::Dest;
use crate::commands::{Class, Command, CommandTable, KeyRef, READONLY, WRITE};
use crate::config::Forwarding;
use crate::metrics::ForwardedCommand;

use super::super::{Forwarded, Service};
use super::{lookups, Batch, Client, Route, Written, TRANSACTION};

/// A run of requests of one command (the same name's bytes), argument
/// count and queueing, routed as its first one was without their
/// arguments being read (see [`Service::route_each`]).
struct Run<'b> {
    name: &'b [u8],
    argc: usize,
    queued: bool,
    write: bool,
    counted: ForwardedCommand,
}

impl Service {
    /// What to do with each request of `batch` (see [`Service::route_each`]),
    /// in order.
    pub(super) fn route_batch(
        &self,
        table: &CommandTable,
        batch: &Batch,
        client: Client,
        counted: &mut Forwarded,
        written: &mut Written,
    ) -> Vec<Route> {
        let mut routes = Vec::with_capacity(batch.len());
        self.route_each(table, batch, client, counted, written, |route| {
            routes.push(route);
            true
        });
        routes
    }

    /// Routes each request of `batch` in order, handing its route to
    /// `keep`, until `keep` says false (then false): each counted under
    /// its command in `counted`, and what its writes change noted in
    /// `written` (while each request's arguments are at hand).
    ///
    /// A request of the same command (the same name's bytes), argument
    /// count and queueing as the last one routed in full takes that one's
    /// route without its arguments being read, where nothing else could
    /// make it differ: one Redis server (no slots), a command whose class
    /// does not read its arguments (all but XREAD and XREADGROUP), and
    /// for a write, keys whose positions follow from the count. A
    /// pipeline mostly repeats one command: the rest of its run costs a
    /// comparison, its count and its keys' ranges.
    pub(super) fn route_each(
        &self,
        table: &CommandTable,
        batch: &Batch,
        client: Client,
        counted: &mut Forwarded,
        written: &mut Written,
        mut keep: impl FnMut(Route) -> bool,
    ) -> bool {
        let mut argv = Vec::new();
        let mut refs = Vec::new();
        let mut lookups = lookups::Lookups::new(table);
        let one_server = !self.backend.is_cluster();
        let frames = batch.frames();
        let mut run: Option<Run<'_>> = None;
        for i in 0..batch.len() {
            let ranges = batch.arg_ranges(i);
            let queued = batch.queued(i);
            if let Some(run) = &run {
                let same = ranges.len() == run.argc
                    && queued == run.queued
                    && ranges.first().map(|r| &frames[r.clone()]) == Some(run.name);
                if same {
                    if run.write {
                        written.note_same(ranges);
                    }
                    counted.push(run.counted);
                    let route = Route::Send {
                        write: run.write,
                        dest: Dest::Any,
                    };
                    if !keep(route) {
                        return false;
                    }
                    continue;
                }
            }
            batch.argv(i, &mut argv);
            let command = lookups.lookup(&argv);
            let count = lookups.counted(self, command);
            counted.push(count);
            let route = self.route(command, &argv, queued, client, &mut refs);
            if let (Route::Send { write: true, .. }, Some(command)) = (&route, command) {
                written.note(command, batch, i, &argv);
            }
            run = match (&route, command, ranges.first()) {
                (Route::Send { write, .. }, Some(command), Some(name))
                    if one_server
                        && lookups::by_name_alone(command)
                        && !command.class_reads_arguments()
                        && (!write || command.keys_by_count) =>
                {
                    Some(Run {
                        name: &frames[name.clone()],
                        argc: ranges.len(),
                        queued,
                        write: *write,
                        counted: count,
                    })
                }
                _ => None,
            };
            if !keep(route) {
                return false;
            }
        }
        true
    }

    /// What to do with one request.
    fn route(
        &self,
        command: Option<&Command>,
        argv: &[&[u8]],
        queued: bool,
        client: Client,
        refs: &mut Vec<KeyRef>,
    ) -> Route {
        let Some(command) = command else {
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
            // WAIT inside MULTI would answer about the held connection's
            // own last offset, not the client's writes (`wait.rs`).
            _ if queued && super::wait::is_wait(&command.name) => {
                Route::Refuse(super::wait::IN_MULTI.to_owned())
            }
            // Queued in a transaction: it runs at EXEC, whose batch drops
            // the transaction's keys; and it does not block there.
            // (Commands that change the connection's own state are not
            // queued: they would change the proxy's connection.)
            // Nor are subscriptions: EXEC would leave the connection
            // subscribed, and pooled.
            _ if queued
                && !matches!(
                    class,
                    Class::Refused | Class::ConnectionState | Class::Pubsub
                ) =>
            {
                Route::Send {
                    write: false,
                    dest: Dest::Any,
                }
            }
            Class::ConnectionState if TRANSACTION.contains(&command.name.as_str()) => {
                Route::Send {
                    write: false,
                    dest: Dest::Any,
                }
            }
            Class::Refused => Route::Refuse(format!(
                "ERR '{}' is not allowed through the proxy: it changes the server itself (see docs/forwarding.md)",
                command.name
            )),
            Class::Blocking | Class::Pubsub if client.dedicated => {
                let write = command.flags & WRITE != 0;
                self.send_route(command, argv, refs, write)
            }
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
}

fn reads_only(argv: &[&[u8]]) -> String {
    format!(
        "ERR '{}' is not forwarded: RESP_FORWARD=reads passes on only commands Redis flags readonly",
        String::from_utf8_lossy(argv.first().copied().unwrap_or_default()).to_lowercase()
    )
}
