//! The writes a read-your-writes test puts through the proxy, one of each
//! kind Redis has for a key a GET can read (strings, keys moved, renamed,
//! copied, flushed, overwritten by another type, scripts and functions),
//! with how each key must read afterwards.

/// How a key must read after a write.
pub enum Want {
    Value(&'static str),
    Nil,
    WrongType,
    /// What Redis itself holds (binary: PFCOUNT's HyperLogLog).
    AsRedis,
}

/// One write through the proxy: Redis prepared directly (`before`), the
/// proxy's cache warmed with `warm`, Redis changed behind its back
/// (`behind`: no link tells the proxy), then `write`; `$` in a line is the
/// case's own key prefix.
pub struct Case {
    pub before: &'static [&'static str],
    pub warm: &'static [&'static str],
    pub behind: &'static [&'static str],
    pub write: &'static str,
    pub want: &'static [(&'static str, Want)],
}

const fn case(
    before: &'static [&'static str],
    warm: &'static [&'static str],
    write: &'static str,
    want: &'static [(&'static str, Want)],
) -> Case {
    Case {
        before,
        warm,
        behind: &[],
        write,
        want,
    }
}

pub const FUNCTION: &str = "FUNCTION LOAD \"#!lua name=fwdtest\nredis.register_function('setit', function(keys, args) return redis.call('SET', keys[1], args[1]) end)\"";

pub const CASES: &[Case] = &[
    case(
        &["SET $k old"],
        &["$k"],
        "SET $k new",
        &[("$k", Want::Value("new"))],
    ),
    case(
        &["SET $k 1"],
        &["$k"],
        "INCR $k",
        &[("$k", Want::Value("2"))],
    ),
    case(&["SET $k old"], &["$k"], "DEL $k", &[("$k", Want::Nil)]),
    case(
        &["SET $k old"],
        &["$k"],
        "APPEND $k er",
        &[("$k", Want::Value("older"))],
    ),
    case(&["SET $k old"], &["$k"], "GETDEL $k", &[("$k", Want::Nil)]),
    case(
        &["SET $k old"],
        &["$k"],
        "EXPIRE $k 0",
        &[("$k", Want::Nil)],
    ),
    case(
        &["SET $a old", "SET $b old"],
        &["$a", "$b"],
        "MSET $a 1 $b 2",
        &[("$a", Want::Value("1")), ("$b", Want::Value("2"))],
    ),
    Case {
        before: &["SET $k old"],
        warm: &["$k"],
        behind: &["DEL $k"],
        write: "HSET $k f v",
        want: &[("$k", Want::WrongType)],
    },
    case(
        &["SET $k old", "RPUSH $l 2 1"],
        &["$k"],
        "SORT $l STORE $k",
        &[("$k", Want::WrongType)],
    ),
    case(&["SET $k old"], &["$k"], "FLUSHALL", &[("$k", Want::Nil)]),
    case(&["SET $k old"], &["$k"], "FLUSHDB", &[("$k", Want::Nil)]),
    case(
        &["SET $k zero", "SELECT 1", "SET $k one", "SELECT 0"],
        &["$k"],
        "SWAPDB 0 1",
        &[("$k", Want::Value("one"))],
    ),
    case(&["SET $k old"], &["$k"], "MOVE $k 1", &[("$k", Want::Nil)]),
    case(
        &["SET $k old", "SET $src new"],
        &["$k"],
        "COPY $src $k REPLACE",
        &[("$k", Want::Value("new"))],
    ),
    case(
        &["SET $k old", "SET $src new"],
        &["$k", "$src"],
        "RENAME $src $k",
        &[("$k", Want::Value("new")), ("$src", Want::Nil)],
    ),
    case(
        &["SET $k old"],
        &["$k"],
        "EVAL \"return redis.call('SET', KEYS[1], ARGV[1])\" 1 $k new",
        &[("$k", Want::Value("new"))],
    ),
    case(
        &["SET $k old"],
        &["$k"],
        "FCALL setit 1 $k new",
        &[("$k", Want::Value("new"))],
    ),
    // Flagged readonly, yet it rewrites the cardinality its key caches
    // (its key spec says RW).
    case(&["PFADD $k a b c"], &["$k"], "PFCOUNT $k", &[("$k", Want::AsRedis)]),
    case(&["SET $k old"], &["$k"], "sEt $k new", &[("$k", Want::Value("new"))]),
    case(&["SET $k 10"], &["$k"], "DECRBY $k 3", &[("$k", Want::Value("7"))]),
    case(&["SET $k old"], &["$k"], "SETRANGE $k 1 ne", &[("$k", Want::Value("one"))]),
    case(&["SET $k a"], &["$k"], "SETBIT $k 6 1", &[("$k", Want::Value("c"))]),
    case(&["SET $k old"], &["$k"], "GETSET $k new", &[("$k", Want::Value("new"))]),
    case(&["SET $k old"], &["$k"], "EXPIREAT $k 1", &[("$k", Want::Nil)]),
    case(&["SET $k old"], &["$k"], "PEXPIRE $k 0", &[("$k", Want::Nil)]),
    case(
        &["SET $k old", "SET $a a", "SET $b b"],
        &["$k"],
        "BITOP OR $k $a $b",
        &[("$k", Want::Value("c"))],
    ),
    case(
        &["SET $k old", "SADD $s x"],
        &["$k"],
        "SUNIONSTORE $k $s",
        &[("$k", Want::WrongType)],
    ),
    case(
        &["SET $k old", "ZADD $z 1 x"],
        &["$k"],
        "ZUNIONSTORE $k 1 $z",
        &[("$k", Want::WrongType)],
    ),
    Case {
        before: &["SET $k old", "SET $src new"],
        warm: &["$k", "$src"],
        behind: &["DEL $k"],
        write: "RENAMENX $src $k",
        want: &[("$k", Want::Value("new")), ("$src", Want::Nil)],
    },
    Case {
        before: &["SET $a old", "SET $b old"],
        warm: &["$a", "$b"],
        behind: &["DEL $a $b"],
        write: "MSETNX $a 1 $b 2",
        want: &[("$a", Want::Value("1")), ("$b", Want::Value("2"))],
    },
    case(
        &["SET $a old", "SET $b old"],
        &["$a", "$b"],
        "EVAL \"redis.call('DEL', KEYS[1]); return redis.call('SET', KEYS[2], ARGV[1])\" 2 $a $b new",
        &[("$a", Want::Nil), ("$b", Want::Value("new"))],
    ),
];
