//! Looking a batch's requests up in Redis's command table once per run of
//! one command rather than once per request: a pipeline mostly repeats
//! one command, and each lookup otherwise lower-cases and hashes its name.

use crate::commands::{Command, CommandTable};
use crate::metrics::ForwardedCommand;

use super::super::Service;

/// The last command found, reused for the next request when that names it
/// with the same bytes (only a command without subcommands: what a
/// container's name finds depends on the next argument too), with what it
/// is counted as.
pub(super) struct Lookups<'t, 'b> {
    table: &'t CommandTable,
    last: Option<(&'b [u8], &'t Command)>,
    counted: Option<(&'t Command, ForwardedCommand)>,
}

impl<'t, 'b> Lookups<'t, 'b> {
    /// Nothing looked up yet.
    pub(super) fn new(table: &'t CommandTable) -> Self {
        Lookups {
            table,
            last: None,
            counted: None,
        }
    }

    /// The command `argv` runs, as [`CommandTable::lookup`] finds it.
    pub(super) fn lookup(&mut self, argv: &[&'b [u8]]) -> Option<&'t Command> {
        let name = *argv.first()?;
        if let Some((last, command)) = self.last {
            if last == name {
                return Some(command);
            }
        }
        let command = self.table.lookup(argv);
        self.last = command
            .filter(|command| by_name_alone(command))
            .map(|command| (name, command));
        command
    }

    /// What `command` is counted as (its slot in the metrics, found once
    /// per run of it).
    pub(super) fn counted(
        &mut self,
        service: &Service,
        command: Option<&'t Command>,
    ) -> ForwardedCommand {
        let Some(command) = command else {
            return service.forwarded_command(None);
        };
        if let Some((last, counted)) = self.counted {
            if std::ptr::eq(last, command) {
                return counted;
            }
        }
        let counted = service.forwarded_command(Some(command));
        self.counted = Some((command, counted));
        counted
    }
}

/// Whether a request naming `command` finds it whatever its other
/// arguments (it has no subcommands, and is none).
pub(super) fn by_name_alone(command: &Command) -> bool {
    !command.container && !command.name.contains('|')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_finds_what_the_table_finds() {
        let fixture = include_bytes!("../../../tests/fixtures/command-info-7.0.resp2");
        let value = redis::parse_redis_value(fixture).expect("the fixture is RESP");
        let table = CommandTable::parse(&value).expect("a COMMAND INFO reply");
        let requests: &[&[&[u8]]] = &[
            &[b"SET", b"k", b"v"],
            &[b"SET", b"k", b"w"],
            &[b"set", b"k", b"v"],
            &[b"CONFIG", b"GET", b"maxmemory"],
            &[b"CONFIG", b"SET", b"maxmemory", b"0"],
            &[b"CONFIG", b"NOSUCH"],
            &[b"CONFIG"],
            &[b"CONFIG", b"GET", b"x"],
            &[b"nosuch", b"k"],
            &[b"nosuch", b"k"],
            &[b"GET", b"k"],
            &[b"SET"],
        ];
        let mut lookups = Lookups::new(&table);
        for argv in requests {
            let name = |command: Option<&Command>| command.map(|c| c.name.clone());
            assert_eq!(
                name(lookups.lookup(argv)),
                name(table.lookup(argv)),
                "{argv:?}"
            );
        }
    }
}
