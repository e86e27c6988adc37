//! The databases entries belong to: how many entries each database other
//! than 0 holds, so a key announced changed without a database (Redis's
//! invalidations name none) is looked for only in the databases that hold
//! entries, and `INFO keyspace` can say what each holds without a walk.
//!
//! Database 0 is not counted (it holds whatever the others do not), so a
//! cache used in database 0 alone never touches the map.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::{Db, Lru, Weigh};

/// Entries per database other than 0; a database leaves the map with its
/// last entry, so walking it costs O(databases in use).
#[derive(Debug, Default)]
pub(super) struct Databases {
    counts: HashMap<Db, usize, RandomState>,
    /// Room to list the databases in while removing from them, kept so a
    /// removal from several allocates nothing once warm.
    scratch: Vec<Db>,
}

impl Databases {
    /// An entry of `db` went in.
    #[inline]
    pub(super) fn added(&mut self, db: Db) {
        if db != 0 {
            *self.counts.entry(db).or_insert(0) += 1;
        }
    }

    /// An entry of `db` went out.
    #[inline]
    pub(super) fn removed(&mut self, db: Db) {
        if db == 0 {
            return;
        }
        if let Some(count) = self.counts.get_mut(&db) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&db);
            }
        }
    }
}

impl<V: Weigh> Lru<V> {
    /// Removes `key` from every database that holds entries, `hash` being
    /// its hash in database 0 ([`super::KeyHasher::hash`]), and pushes the
    /// values removed onto `out`: for a change announced without a
    /// database. O(databases in use); one probe when only database 0 is.
    ///
    /// With `files`, for a cache whose database numbers carry the kind
    /// bits: a file database's entry of `key` (see [`super::FILE`]) is
    /// pushed onto `files` with its database rather than onto `out`, so
    /// the caller can drop the replies it lists, and reply databases
    /// ([`super::REPLY`]) are not looked in (their keys are requests).
    pub fn remove_everywhere_filed(
        &mut self,
        hash: u64,
        key: &[u8],
        out: &mut Vec<V>,
        mut files: Option<&mut Vec<(Db, V)>>,
    ) {
        out.extend(self.remove_hashed(hash, 0, key));
        if self.dbs.counts.is_empty() {
            return;
        }
        let mut dbs = std::mem::take(&mut self.dbs.scratch);
        dbs.clear();
        // Filed: the kind bits mean something (see `key.rs`).
        let filed = files.is_some();
        let skip = |db: Db| filed && db & super::REPLY != 0;
        dbs.extend(self.dbs.counts.keys().filter(|&&db| !skip(db)));
        for &db in &dbs {
            let hash = self.hasher.hash_in(db, key);
            let removed = self.remove_hashed(hash, db, key);
            match (&mut files, removed) {
                (Some(files), Some(value)) if db & super::FILE != 0 => files.push((db, value)),
                (_, removed) => out.extend(removed),
            }
        }
        self.dbs.scratch = dbs;
    }

    /// Whether `key` of database `db` is held (fresh, stale or expired but
    /// not yet reclaimed), `hash` its hash there; nothing moves.
    pub fn contains_hashed(&self, hash: u64, db: Db, key: &[u8]) -> bool {
        self.find(hash, db, key).is_some()
    }

    /// The value held for `key` of database `db` (fresh or not), `hash`
    /// its hash there; nothing moves.
    pub fn peek_hashed(&self, hash: u64, db: Db, key: &[u8]) -> Option<&V> {
        self.find(hash, db, key).map(|slot| &self.nodes[slot].value)
    }

    /// How many entries each database holds (expired ones not yet
    /// reclaimed included), by database, those holding none left out.
    /// O(databases in use).
    pub fn entries_by_db(&self) -> Vec<(Db, usize)> {
        let others: usize = self.dbs.counts.values().sum();
        let mut counts: Vec<(Db, usize)> =
            self.dbs.counts.iter().map(|(&db, &n)| (db, n)).collect();
        let home = self.len() - others;
        if home > 0 {
            counts.push((0, home));
        }
        counts.sort_unstable();
        counts
    }
}
