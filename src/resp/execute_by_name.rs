//! What a request's name alone decides in the event loop, worked out once
//! per run of one name (a pipeline mostly repeats one) rather than once per
//! request. Apart from `execute.rs`, which had grown past 400 lines.

use crate::commands::{packed_exact, BLOCK_BY_ARGUMENTS};
use crate::service::Service;

use super::super::cmd::own_index;
use super::super::lanes::BLOCKING;
use super::super::transaction::Transaction;

/// What a request's name alone decides (which of the proxy's own commands
/// it is, whether CACHE_COMMANDS names it, whether it may be RESET, go to
/// a connection of its own or change the transaction's state), kept from
/// one request to the next, and from one turn to the next (a connection
/// keeps one: none of it changes while the proxy runs): a pipeline mostly
/// repeats one name, which these checks would otherwise compare with each
/// list per request.
#[derive(Default)]
pub(in crate::resp) struct ByName {
    /// The last name checked, its bytes as they came packed in one
    /// number (compared without a call to `memcmp`); None for a name too
    /// long to pack, which is checked again each time.
    last: Option<u128>,
    facts: Named,
}

/// What [`ByName`] knows of a name.
#[derive(Clone, Copy)]
pub(super) struct Named {
    /// [`own_index`]: which of the proxy's own commands it is.
    pub own: Option<usize>,
    /// [`Service::names_cached`]: CACHE_COMMANDS names it.
    pub cached: bool,
    /// It may be a bare RESET ([`super::is_reset`]).
    pub reset: bool,
    /// [`may_dedicate`].
    pub lane: bool,
    /// [`Transaction::noted_outside_multi`].
    pub noted: bool,
    /// AUTH or HELLO: may authenticate the connection.
    pub auth: bool,
}

impl Default for Named {
    /// What a request without a name is taken for: anything may apply.
    fn default() -> Named {
        Named {
            own: None,
            cached: false,
            reset: true,
            lane: true,
            noted: true,
            auth: true,
        }
    }
}

impl ByName {
    /// What request name `name` decides ([`own_index`],
    /// [`Service::names_cached`], ...).
    /// And whether it is the same bytes as the last name asked about.
    #[inline]
    pub(super) fn of(&mut self, name: &[u8], service: &Service) -> (Named, bool) {
        let key = packed_exact(name);
        let same = key.is_some() && key == self.last;
        if !same {
            self.learn(name, key, service);
        }
        (self.facts, same)
    }

    /// Works out what a name other than the last one decides.
    #[cold]
    fn learn(&mut self, name: &[u8], key: Option<u128>, service: &Service) {
        self.facts = Named {
            own: own_index(name),
            cached: service.names_cached(&[name]),
            reset: name.eq_ignore_ascii_case(b"reset"),
            lane: may_dedicate(name),
            noted: Transaction::noted_outside_multi(name),
            auth: name.eq_ignore_ascii_case(b"auth") || name.eq_ignore_ascii_case(b"hello"),
        };
        self.last = key;
    }
}

/// Whether a request named `name` may go to a connection of its own
/// while the client has no subscription at Redis (`lanes.rs`: a blocking
/// command, a subscription): when false, `Conn::dedicated_lane` of such a
/// client is `Dedication::None` whatever the arguments.
fn may_dedicate(name: &[u8]) -> bool {
    let is = |known: &&str| name.eq_ignore_ascii_case(known.as_bytes());
    BLOCK_BY_ARGUMENTS.iter().any(is)
        || BLOCKING.iter().any(is)
        || ["subscribe", "psubscribe", "ssubscribe"].iter().any(is)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandTable;
    use crate::resp::lanes::{may_block, subscribes};

    /// Commands (those of the 7.0 fixture, and every one the lists name),
    /// in upper and lower case, with
    /// arguments that make a command of a name block or subscribe.
    fn requests() -> Vec<Vec<Vec<u8>>> {
        let fixture = include_bytes!("../../tests/fixtures/command-info-7.0.resp2");
        let value = redis::parse_redis_value(fixture).expect("the fixture is RESP");
        let table = CommandTable::parse(&value).expect("a COMMAND INFO reply");
        let mut names: Vec<String> = table.iter().map(|c| c.name.clone()).collect();
        let listed = BLOCKING.iter().chain(BLOCK_BY_ARGUMENTS.iter()).chain(&[
            "subscribe",
            "psubscribe",
            "ssubscribe",
            "unsubscribe",
            "multi",
            "exec",
            "discard",
            "watch",
            "unwatch",
            "set",
            "hset",
            "lpush",
            "incr",
        ]);
        names.extend(listed.map(|name| name.to_string()));
        names.extend(names.clone().iter().map(|name| name.to_uppercase()));
        let tails: &[&[&str]] = &[
            &[],
            &["k"],
            &["BLOCK", "0", "STREAMS", "s", "$"],
            &["k", "v", "0"],
            &["channel"],
        ];
        let mut requests = Vec::new();
        for name in &names {
            for tail in tails {
                let mut argv = vec![name.as_bytes().to_vec()];
                argv.extend(tail.iter().map(|arg| arg.as_bytes().to_vec()));
                requests.push(argv);
            }
        }
        requests
    }

    #[test]
    fn a_name_not_named_takes_no_lane_and_changes_no_transaction() {
        let (mut lanes, mut noted) = (0, 0);
        for request in requests() {
            let argv: Vec<&[u8]> = request.iter().map(Vec::as_slice).collect();
            if may_dedicate(argv[0]) {
                lanes += 1;
            } else {
                assert!(!may_block(&argv) && !subscribes(&argv), "{request:?}");
            }
            if Transaction::noted_outside_multi(argv[0]) {
                noted += 1;
            } else {
                let mut transaction = Transaction::default();
                assert!(matches!(transaction.note(&argv), (false, None)));
                assert!(!transaction.engaged(), "{request:?}");
            }
        }
        // The names that matter were found, in both cases.
        assert!(lanes >= 2 * 5 * 15 && noted >= 2 * 5 * 5, "{lanes} {noted}");
    }
}
