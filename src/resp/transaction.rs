//! A client's transaction state, mirrored from the commands it sends so
//! the connection knows when it must hold a Redis connection of its own:
//! from MULTI or WATCH until EXEC, DISCARD, UNWATCH or its close. The
//! rules are Redis's (`multi.c`): MULTI inside MULTI and WATCH inside MULTI
//! are refused and change nothing; EXEC and DISCARD end a transaction and
//! every WATCH; outside one, they are errors that change nothing. An EXEC
//! Redis refuses (wrong arity, ACL, ...) is no exception: its
//! `rejectCommand` answers `-EXECABORT` and discards the transaction and
//! every WATCH, inside MULTI or not; a refused DISCARD, MULTI or WATCH
//! changes nothing.

use crate::service::{Batch, Held, Queued};

/// Most bytes of a transaction's queued commands remembered for their
/// keys; past it, EXEC drops the whole cache instead.
const QUEUED_KEEP: usize = 1024 * 1024;

/// One connection's transaction state.
#[derive(Default)]
pub struct Transaction {
    /// Inside MULTI: Redis queues what it is sent.
    pub multi: bool,
    /// Keys are watched.
    pub watching: bool,
    /// The Redis connection held between batches (None while a worker
    /// has it, or when none is held).
    pub held: Option<Held>,
    /// The commands queued since MULTI, whose keys EXEC changes.
    queued: Batch,
    /// More was queued than `QUEUED_KEEP`: EXEC drops everything.
    overflow: bool,
}

impl Transaction {
    /// Whether request `argv` takes the path it takes with no transaction
    /// even while the connection holds its own Redis connection: QUIT,
    /// and a bare RESET (which Redis runs at once, not queued, and which
    /// drops the held connection: Redis then discards MULTI and WATCH);
    /// and, outside MULTI (after WATCH), the proxy's own answers about the
    /// connection, as Redis answers them there: HELLO, AUTH, CLIENT and
    /// SELECT (whose database the held connection is switched to before
    /// its next command, as Redis switches the watching connection's;
    /// HELLO's protocol likewise). Inside MULTI the service refuses those
    /// four: the proxy's own SELECT or HELLO of the held connection would
    /// be queued, and what they leave could not be known after EXEC.
    pub fn answered_here(argv: &[&[u8]], multi: bool) -> bool {
        let Some(name) = argv.first() else {
            return false;
        };
        let is = |word: &[u8]| name.eq_ignore_ascii_case(word);
        super::execute::is_reset(argv)
            || is(b"quit")
            || (!multi && (is(b"hello") || is(b"auth") || is(b"client") || is(b"select")))
            // ACL WHOAMI too: Redis would name the proxy's own user.
            || (!multi
                && is(b"acl")
                && argv
                    .get(1)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"whoami")))
    }

    /// Inside MULTI or watching keys: state Redis keeps on the connection.
    pub fn engaged(&self) -> bool {
        self.multi || self.watching
    }

    /// Whether the connection's commands must go to its own Redis
    /// connection (and never come from the cache).
    pub fn pinned(&self) -> bool {
        self.multi || self.watching || self.held.is_some()
    }

    /// Whether [`Transaction::note`] of a request named `name` may change
    /// anything outside MULTI (the words it looks for there): when false,
    /// it returns `(false, None)` and changes nothing, so the event loop
    /// asks once per run of one name rather than per request.
    pub fn noted_outside_multi(name: &[u8]) -> bool {
        ["multi", "watch", "unwatch", "exec", "discard"]
            .iter()
            .any(|word| name.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// Notes request `argv` (the command name first) as it is sent:
    /// whether Redis queues it, and what an EXEC or DISCARD among them
    /// ends (the queued commands, for EXEC).
    pub fn note(&mut self, argv: &[&[u8]]) -> (bool, Option<Queued>) {
        let name = argv.first().copied().unwrap_or_default();
        let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
        let bare = argv.len() == 1;
        if self.multi {
            // Any EXEC ends the transaction at Redis, run or refused (then
            // nothing ran); a refused DISCARD does not. A bare EXEC's
            // commands are taken to have run even if Redis refused it.
            if is("exec") || (is("discard") && bare) {
                self.multi = false;
                self.watching = false;
                let queued = std::mem::take(&mut self.queued);
                let overflow = std::mem::take(&mut self.overflow);
                let ran = match (is("exec") && bare, overflow) {
                    (false, _) => None,
                    (true, true) => Some(Queued::Unknown),
                    (true, false) => Some(Queued::Commands(queued)),
                };
                return (false, ran);
            }
            if is("discard") || is("multi") || is("watch") {
                return (false, None);
            }
            if self.queued.bytes_len() < QUEUED_KEEP {
                self.queued.push(argv, false);
            } else {
                self.overflow = true;
            }
            return (true, None);
        }
        if is("multi") && bare {
            self.multi = true;
        } else if is("watch") && argv.len() >= 2 {
            // As it is sent: a first WATCH that fails is undone when its
            // batch gives no connection back (`returned(None)`).
            self.watching = true;
        } else if (is("unwatch") && bare) || (is("exec") && !bare) {
            // A refused EXEC unwatches too (`execCommandAbort`); a bare one
            // outside MULTI, `EXEC without MULTI`, does not (if an ACL
            // refuses it, Redis unwatches while the proxy still thinks
            // keys are watched: it keeps the connection, which is safe).
            self.watching = false;
        }
        (false, None)
    }

    /// The held connection came back from a worker, or none did: it was
    /// lost (then Redis has dropped the transaction and the watched keys
    /// with it), or the WATCH that was to begin watching failed (then
    /// Redis watches nothing: `Batch::mark_first_watch`).
    pub fn returned(&mut self, held: Option<Held>) {
        if held.is_none() {
            self.multi = false;
            self.watching = false;
            self.queued = Batch::default();
            self.overflow = false;
        }
        self.held = held;
    }
}
