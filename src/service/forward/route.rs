//! Routing a batch: what is done with each request (sent to Redis, and
//! where in cluster mode, or refused by the proxy), each counted under its
//! command, and what its writes change noted as it goes.

use std::sync::Arc;

use crate::backend::Dest;
use crate::commands::{packed_exact, Class, Command, CommandTable, KeyRef, READONLY, WRITE};
use crate::config::Forwarding;
use crate::metrics::ForwardedCommand;

use super::super::{Forwarded, Service};
use super::written::Effect;
use super::{lookups, Batch, Client, Route, Written, TRANSACTION};

/// The run of one command a batch's routing ended on (see
/// [`Service::route_each`]), kept for the next batch routed: the event
/// loop routes its clients' batches one after another, and a pipelined
/// benchmark's or application's are mostly of one command, so the next
/// batch's first request need not be looked up again. Held with the table
/// its command was found in, and used only while that table is current.
#[derive(Default)]
pub struct Carried {
    table: Option<Arc<CommandTable>>,
    run: Option<Run>,
    /// A write run's keys' positions in its arguments.
    refs: Vec<KeyRef>,
}

/// Requests of one command (the same name's bytes, packed), argument count
/// and queueing, for a client of one kind, routed as the first one was.
struct Run {
    name: u128,
    argc: usize,
    queued: bool,
    dedicated: bool,
    /// A write's effect (its keys at `Carried::refs`); None for a read.
    write: Option<Effect>,
    counted: ForwardedCommand,
}

impl Service {
    /// What to do with each request of `batch` (see [`Service::route_each`]),
    /// in order.
    pub(super) fn route_batch(
        &self,
        table: &Arc<CommandTable>,
        batch: &Batch,
        client: Client,
        counted: &mut Forwarded,
        written: &mut Written,
    ) -> Vec<Route> {
        let mut routes = Vec::with_capacity(batch.len());
        let mut carried = Carried::default();
        let keep = |route| {
            routes.push(route);
            true
        };
        self.route_each(table, batch, client, (counted, written), &mut carried, keep);
        routes
    }

    /// Routes each request of `batch` in order, handing its route to
    /// `keep`, until `keep` says false (then false): each counted under
    /// its command in `counted`, and what its writes change noted in
    /// `written` (while each request's arguments are at hand).
    ///
    /// A request of the same command (the same name's bytes), argument
    /// count and queueing as the last one routed in full (in this batch,
    /// or `carried` from the last one routed with the same table) takes
    /// that one's route without its arguments being read, where nothing
    /// else could make it differ: one Redis server (no slots), a command
    /// without subcommands whose class does not read its arguments (all
    /// but XREAD and XREADGROUP), the same kind of client (dedicated or
    /// not), and for a write, keys whose positions follow from the count.
    /// A pipeline mostly repeats one command: the rest of its run costs a
    /// comparison, its count and its keys' ranges.
    pub(super) fn route_each(
        &self,
        table: &Arc<CommandTable>,
        batch: &Batch,
        client: Client,
        (counted, written): (&mut Forwarded, &mut Written),
        carried: &mut Carried,
        mut keep: impl FnMut(Route) -> bool,
    ) -> bool {
        if !carried
            .table
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, table))
        {
            carried.table = Some(Arc::clone(table));
            carried.run = None;
        }
        let mut argv = Vec::new();
        let mut refs = Vec::new();
        let mut lookups = lookups::Lookups::new(table);
        let one_server = !self.backend.is_cluster();
        let frames = batch.frames();
        for i in 0..batch.len() {
            let ranges = batch.arg_ranges(i);
            let queued = batch.queued(i);
            if let Some(run) = &carried.run {
                // The run is the last request's (it set it or took it):
                // a name the batch knows repeats that one's is the run's.
                let same = ranges.len() == run.argc
                    && queued == run.queued
                    && client.dedicated == run.dedicated
                    && (batch.repeats(i)
                        || ranges
                            .first()
                            .and_then(|r| packed_exact(&frames[r.clone()]))
                            == Some(run.name));
                if same {
                    if let Some(effect) = run.write {
                        written.note_run(effect, &carried.refs, ranges);
                    }
                    counted.push(run.counted);
                    let route = Route::Send {
                        write: run.write.is_some(),
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
            carried.run = None;
            let name = ranges
                .first()
                .and_then(|r| packed_exact(&frames[r.clone()]));
            if let (Route::Send { write, .. }, Some(command), Some(name)) = (&route, command, name)
            {
                let repeats = one_server
                    && lookups::by_name_alone(command)
                    && !command.class_reads_arguments();
                let write = match write {
                    true => written
                        .last_effect(command, argv.len(), &mut carried.refs)
                        .map(Some),
                    false => Some(None),
                };
                if let (true, Some(write)) = (repeats, write) {
                    carried.run = Some(Run {
                        name,
                        argc: ranges.len(),
                        queued,
                        dedicated: client.dedicated,
                        write,
                        counted: count,
                    });
                }
            }
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
        let cluster = self.backend.is_cluster();
        if let Some(route) = super::cluster::as_standalone(command, argv.len(), cluster) {
            // Inside MULTI too: refused there, it aborts the transaction
            // (a standalone Redis would queue it and fail it at EXEC).
            return route;
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
