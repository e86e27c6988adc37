//! Routing a batch: what is done with each request (sent to Redis, and
//! where in cluster mode, or refused by the proxy), each counted under its
//! command, and what its writes change noted as it goes.

use crate::backend::Dest;
use crate::commands::{Class, Command, CommandTable, KeyRef, READONLY, WRITE};
use crate::config::Forwarding;

use super::super::{Forwarded, Service};
use super::{lookups, Batch, Client, Route, Written, TRANSACTION};

impl Service {
    /// What to do with each request of `batch`, each counted under its
    /// command in `counted`, and what its writes change noted in
    /// `written` (while each request's arguments are at hand).
    ///
    /// A request of the same command (the same name's bytes), argument
    /// count and queueing as the last one routed takes the last one's
    /// route without its arguments being read, where nothing else could
    /// make it differ: one Redis server (no slots), a command whose class
    /// does not read its arguments (all but XREAD and XREADGROUP), and
    /// for a write, keys whose positions follow from the count.
    pub(super) fn route_batch(
        &self,
        table: &CommandTable,
        batch: &Batch,
        client: Client,
        counted: &mut Forwarded,
        written: &mut Written,
    ) -> Vec<Route> {
        let mut argv = Vec::new();
        let mut refs = Vec::new();
        let mut lookups = lookups::Lookups::new(table);
        let one_server = !self.backend.is_cluster();
        // The last request's argument count, queueing and `write`, when
        // its route may be taken again (see above).
        let mut again: Option<(usize, bool, bool)> = None;
        (0..batch.len())
            .map(|i| {
                let ranges = batch.arg_ranges(i);
                let queued = batch.queued(i);
                let name = ranges
                    .first()
                    .map_or(&[][..], |r| &batch.frames()[r.clone()]);
                if let (Some((argc, was_queued, write)), Some(command)) =
                    (again, lookups.again(name))
                {
                    if argc == ranges.len()
                        && was_queued == queued
                        && (!write || written.note_again(command, batch, i))
                    {
                        counted.push(lookups.counted(self, Some(command)));
                        return Route::Send {
                            write,
                            dest: Dest::Any,
                        };
                    }
                }
                batch.argv(i, &mut argv);
                let command = lookups.lookup(&argv);
                counted.push(lookups.counted(self, command));
                let route = self.route(command, &argv, queued, client, &mut refs);
                again = match (&route, command) {
                    (Route::Send { write, .. }, Some(command))
                        if one_server && !command.class_reads_arguments() =>
                    {
                        Some((argv.len(), queued, *write))
                    }
                    _ => None,
                };
                if let (Route::Send { write: true, .. }, Some(command)) = (&route, command) {
                    written.note(command, batch, i, &argv);
                }
                route
            })
            .collect()
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
