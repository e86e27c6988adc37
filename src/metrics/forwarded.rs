//! Commands forwarded to Redis, by name and result: the series
//! `redis_proxy_forwarded_commands_total{command,result}` and Redis's own
//! `cmdstat_<name>` lines of `INFO commandstats`.
//!
//! Names come from clients, so only names from Redis's command table are
//! counted under their own label (the service looks each request up there
//! and hands the table's name); anything else is counted as `other`. The
//! names live in a fixed open-addressed table of [`FORWARDED_SLOTS`]
//! slots, larger than Redis's command table with its subcommands (about
//! 400 in Redis 7), each slot's name set once on first use: finding a
//! name is a hash and a compare, counting is relaxed atomic adds, with no
//! lock and no allocation after a name's first use. Were the table ever
//! full (modules adding hundreds of commands), new names count as `other`.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

use super::commands::CommandCounters;
use super::{CommandFigures, Metrics};

/// Slots for forwarded command names (a power of two).
const FORWARDED_SLOTS: usize = 1024;

/// Labels of `result`, in [`ForwardResult`]'s order.
pub(super) const FORWARD_RESULTS: [&str; 3] = ["ok", "error", "rejected"];

/// How one forwarded request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardResult {
    /// Redis answered with anything but an error.
    Ok,
    /// An error reply: Redis's (`-WRONGTYPE ...`), or the proxy's when
    /// Redis could not be reached.
    Error,
    /// The proxy refused it before sending it (a command that changes the
    /// server, RESP_FORWARD=reads, not supported yet): Redis's
    /// `rejected_calls`.
    Rejected,
}

/// Where one forwarded command is counted: found once per request with
/// [`Metrics::forwarded_command`], then counted with
/// [`Metrics::forwarded_run`]. Copy, four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ForwardedCommand(u32);

impl ForwardedCommand {
    /// A command not in Redis's table (or no table at hand): `other`.
    pub const OTHER: ForwardedCommand = ForwardedCommand(FORWARDED_SLOTS as u32);
}

/// One name's slot.
#[derive(Default)]
struct Slot {
    name: OnceLock<Box<str>>,
    counters: CommandCounters,
}

/// The forwarded commands' counters: one slot per name, and `other`.
pub(super) struct ForwardedCommands {
    slots: Box<[Slot]>,
    other: CommandCounters,
    hasher: foldhash::fast::FixedState,
}

impl ForwardedCommands {
    pub(super) fn new() -> ForwardedCommands {
        ForwardedCommands {
            slots: (0..FORWARDED_SLOTS).map(|_| Slot::default()).collect(),
            other: CommandCounters::default(),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed),
        }
    }

    fn counters(&self, command: ForwardedCommand) -> &CommandCounters {
        self.slots
            .get(command.0 as usize)
            .map_or(&self.other, |slot| &slot.counters)
    }

    /// Every name used, with its counters, sorted by name.
    fn used(&self) -> Vec<(&str, &CommandCounters)> {
        let mut used: Vec<(&str, &CommandCounters)> = self
            .slots
            .iter()
            .filter_map(|slot| Some((&**slot.name.get()?, &slot.counters)))
            .collect();
        used.sort_unstable_by_key(|(name, _)| *name);
        used
    }
}

impl Metrics {
    /// Where forwarded command `name` is counted; `name` must come from
    /// Redis's command table (lower case, `container|sub` for a
    /// subcommand), which bounds how many there are. The first use of a
    /// name copies it into a free slot; later ones allocate nothing.
    pub fn forwarded_command(&self, name: &str) -> ForwardedCommand {
        let table = &self.forwarded;
        let mask = FORWARDED_SLOTS - 1;
        let mut i = table.hasher.hash_one(name) as usize & mask;
        for _ in 0..FORWARDED_SLOTS {
            // Another thread may claim an empty slot first, with another
            // name: then this one looks further, as for any other name.
            if &**table.slots[i].name.get_or_init(|| name.into()) == name {
                return ForwardedCommand(i as u32);
            }
            i = (i + 1) & mask;
        }
        ForwardedCommand::OTHER
    }

    /// `n` forwarded requests of `command` in a row ended with `result`,
    /// each having taken `usec` microseconds (its share of its batch's
    /// round trip; a rejected request takes none), and each was a RESP
    /// request answered `elapsed` after its batch went out (as
    /// [`Metrics::resp_request`] counts one): counted for the run at once,
    /// so a pipeline of one command costs a few atomic adds, not a few per
    /// request.
    pub fn forwarded_run(
        &self,
        command: ForwardedCommand,
        result: ForwardResult,
        usec: u64,
        n: u64,
        elapsed: std::time::Duration,
    ) {
        let counters = self.forwarded.counters(command);
        match result {
            ForwardResult::Rejected => {
                counters.rejected.fetch_add(n, Relaxed);
            }
            ForwardResult::Error | ForwardResult::Ok => {
                if result == ForwardResult::Error {
                    counters.failed.fetch_add(n, Relaxed);
                }
                counters.calls.fetch_add(n, Relaxed);
                counters.usec.fetch_add(usec.saturating_mul(n), Relaxed);
            }
        }
        self.resp_requests[usize::from(result != ForwardResult::Ok)].fetch_add(n, Relaxed);
        self.request_duration[super::FrontEnd::Resp as usize].observe_n(elapsed, n);
    }

    /// `INFO commandstats`' figures: the RESP front end's own commands
    /// (`own`, in the order of its table, counted by index) and their
    /// subcommands, then the forwarded ones by name; a command both
    /// answered here and forwarded (GET inside MULTI) shows once,
    /// with both counts. `other` is left out, as Redis shows no unknown
    /// command.
    pub fn commandstats<'a>(
        &self,
        own: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, CommandFigures)> {
        let mut all: Vec<(String, CommandFigures)> = own
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name.to_owned(), self.command_figures(i)))
            .collect();
        all.extend(self.subcommand_figures());
        for (name, counters) in self.forwarded.used() {
            let figures = counters.figures();
            match all.iter_mut().find(|(known, _)| known == name) {
                Some((_, known)) => known.add(&figures),
                None => all.push((name.to_owned(), figures)),
            }
        }
        all
    }

    /// The forwarded commands' series and their latency histogram.
    pub(super) fn render_forwarded(&self, out: &mut String) {
        use std::fmt::Write as _;
        let name = "redis_proxy_forwarded_commands_total";
        super::render::describe(
            out,
            name,
            "Commands forwarded to Redis, by command (other: not in Redis's command table) and result.",
            "counter",
        );
        let used = self.forwarded.used();
        let other = ("other", &self.forwarded.other);
        for (command, counters) in used.into_iter().chain([other]) {
            // Redis's names need no escaping; a module's odd one gets it.
            let command = escape(command);
            let figures = counters.figures();
            let counts = [
                figures.calls - figures.failed.min(figures.calls),
                figures.failed,
                figures.rejected,
            ];
            for (result, n) in FORWARD_RESULTS.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "{name}{{command=\"{command}\",result=\"{result}\"}} {n}"
                );
            }
        }
        self.forward_duration.render(
            out,
            "redis_proxy_forward_duration_seconds",
            "Time of one forwarded batch (one client's pipeline, or requests gathered from several), from a worker taking it to its last reply, checkout included.",
        );
    }
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        std::borrow::Cow::Owned(escaped)
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_commands_are_counted_by_name_and_result() {
        let metrics = Metrics::new();
        let set = metrics.forwarded_command("set");
        assert_eq!(metrics.forwarded_command("set"), set);
        let incr = metrics.forwarded_command("incr");
        assert_ne!(incr, set);
        let done = |command, result, usec, n| {
            metrics.forwarded_run(command, result, usec, n, std::time::Duration::ZERO);
        };
        done(set, ForwardResult::Ok, 5, 2);
        done(incr, ForwardResult::Error, 2, 1);
        done(incr, ForwardResult::Rejected, 100, 1);
        done(ForwardedCommand::OTHER, ForwardResult::Error, 1, 1);
        // A GET answered here and one forwarded share one line.
        done(metrics.forwarded_command("get"), ForwardResult::Ok, 4, 1);
        metrics.command_done(0, true, std::time::Duration::from_micros(6));
        let stats = metrics.commandstats(["get"]);
        let figures = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, f)| *f);
        assert_eq!(
            figures("get"),
            Some(CommandFigures {
                calls: 2,
                usec: 10,
                rejected: 0,
                failed: 0
            })
        );
        assert_eq!(
            figures("set"),
            Some(CommandFigures {
                calls: 2,
                usec: 10,
                rejected: 0,
                failed: 0
            })
        );
        assert_eq!(
            figures("incr"),
            Some(CommandFigures {
                calls: 1,
                usec: 2,
                rejected: 1,
                failed: 1
            })
        );
        assert_eq!(figures("other"), None);
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let text = metrics.render();
        let series = "redis_proxy_forwarded_commands_total";
        for line in [
            "{command=\"set\",result=\"ok\"} 2\n",
            "{command=\"set\",result=\"error\"} 0\n",
            "{command=\"incr\",result=\"ok\"} 0\n",
            "{command=\"incr\",result=\"error\"} 1\n",
            "{command=\"incr\",result=\"rejected\"} 1\n",
            "{command=\"other\",result=\"error\"} 1\n",
        ] {
            assert!(text.contains(&format!("{series}{line}")), "{line}: {text}");
        }
    }

    #[test]
    fn a_full_table_counts_new_names_as_other() {
        let metrics = Metrics::new();
        let names: Vec<String> = (0..FORWARDED_SLOTS).map(|i| format!("c{i}")).collect();
        let slots: std::collections::HashSet<ForwardedCommand> = names
            .iter()
            .map(|name| metrics.forwarded_command(name))
            .collect();
        assert_eq!(slots.len(), FORWARDED_SLOTS);
        assert!(!slots.contains(&ForwardedCommand::OTHER));
        assert_eq!(
            metrics.forwarded_command("one-too-many"),
            ForwardedCommand::OTHER
        );
        assert_eq!(
            metrics.forwarded_command("c7"),
            metrics.forwarded_command("c7")
        );
    }
}
