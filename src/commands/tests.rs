//! The table read from `COMMAND INFO` replies captured from redis-server
//! 7.0.15 (tests/fixtures), in RESP2 and RESP3.

use super::*;

const RESP2: &[u8] = include_bytes!("../../tests/fixtures/command-info-7.0.resp2");
const RESP3: &[u8] = include_bytes!("../../tests/fixtures/command-info-7.0.resp3");

fn table(bytes: &[u8]) -> CommandTable {
    let value = redis::parse_redis_value(bytes).expect("the fixture is RESP");
    CommandTable::parse(&value).expect("the fixture is a COMMAND INFO reply")
}

fn keys_of(table: &CommandTable, line: &str) -> Result<Vec<(String, u16)>, NoKeys> {
    let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    let command = table.lookup(&argv).expect("a known command");
    let mut out = Vec::new();
    command.keys(&argv, &mut out)?;
    Ok(out
        .iter()
        .map(|k| (String::from_utf8_lossy(argv[k.index]).into_owned(), k.flags))
        .collect())
}

fn names(found: Result<Vec<(String, u16)>, NoKeys>) -> Vec<String> {
    found
        .expect("keys found")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn both_protocols_read_the_same() {
    let (two, three) = (table(RESP2), table(RESP3));
    assert_eq!(two.len(), three.len());
    for command in two.iter() {
        assert_eq!(Some(command), three.get(command.name.as_bytes()));
    }
    // 12 commands, CONFIG's subcommands among them.
    assert!(two.get(b"config|set").is_some());
    assert!(two.len() > 12);
}

#[test]
fn names_are_found_in_any_case_without_a_subcommand_or_with_one() {
    let t = table(RESP3);
    assert_eq!(t.get(b"GeT").map(|c| c.arity), Some(2));
    assert!(t.get(b"nope").is_none());
    assert!(t.get(&[b'g'; 200]).is_none());
    let config = t.lookup(&[b"CONFIG"]).expect("the container");
    assert!(config.container);
    let set = t
        .lookup(&[b"config", b"SET", b"a", b"b"])
        .expect("config|set");
    assert_eq!(set.name, "config|set");
    assert!(t.lookup(&[b"config", b"nope"]).is_none());
    assert!(!config.has_keys());
}

#[test]
fn keys_from_the_specs() {
    let t = table(RESP2);
    assert_eq!(names(keys_of(&t, "get a")), ["a"]);
    assert_eq!(names(keys_of(&t, "mset a 1 b 2 c 3")), ["a", "b", "c"]);
    assert_eq!(names(keys_of(&t, "eval s 2 k1 k2 a1")), ["k1", "k2"]);
    assert_eq!(keys_of(&t, "eval s 5 k1"), Err(NoKeys::Invalid));
    assert_eq!(keys_of(&t, "eval s x k1"), Err(NoKeys::Invalid));
    assert_eq!(keys_of(&t, "eval s -1 k1"), Err(NoKeys::Invalid));
    assert_eq!(
        names(keys_of(&t, "zunionstore d 2 a b WEIGHTS 1 2")),
        ["d", "a", "b"]
    );
    assert_eq!(
        names(keys_of(&t, "xread COUNT 2 STREAMS s1 s2 0 0")),
        ["s1", "s2"]
    );
    assert_eq!(keys_of(&t, "ping"), Ok(vec![]));
    // LMOVE: the source is read and deleted from, the destination inserted to.
    let lmove = keys_of(&t, "lmove a b LEFT RIGHT").expect("keys");
    assert!(KeyRef {
        index: 1,
        flags: lmove[0].1
    }
    .written());
    assert_eq!(names(Ok(lmove)), ["a", "b"]);
    let get = keys_of(&t, "get a").expect("keys");
    assert!(!KeyRef {
        index: 1,
        flags: get[0].1
    }
    .written());
}

#[test]
fn keys_from_redis_own_finders() {
    let t = table(RESP3);
    assert_eq!(
        names(keys_of(&t, "sort l BY w_* GET store STORE d")),
        ["l", "d"]
    );
    assert_eq!(names(keys_of(&t, "sort l LIMIT 0 1")), ["l"]);
    assert_eq!(names(keys_of(&t, "migrate h 1 k 0 10")), ["k"]);
    assert_eq!(
        names(keys_of(&t, "migrate h 1  0 10 COPY AUTH pw KEYS a b")),
        ["a", "b"]
    );
    assert_eq!(
        keys_of(&t, "migrate h 1 k 0 10 KEYS a b"),
        Err(NoKeys::Invalid)
    );
    // SET is read too only with GET.
    let plain = keys_of(&t, "set k v EX 10").expect("keys");
    let get = keys_of(&t, "set k v GET").expect("keys");
    assert_ne!(plain[0].1, get[0].1);
}

#[test]
fn keys_found_by_count_lie_where_the_count_alone_says() {
    let t = table(RESP2);
    let by_count = |name: &str| t.get(name.as_bytes()).expect("known").keys_by_count;
    for name in ["set", "mset", "lmove", "get", "ttl", "ping"] {
        assert!(by_count(name), "{name}");
    }
    for name in ["xread", "eval", "zunionstore", "sort", "migrate"] {
        assert!(!by_count(name), "{name}");
    }
    // Every such command finds its keys at the same positions for any
    // arguments of one count, keywords and numbers included.
    let words: [&[u8]; 8] = [
        b"k", b"2", b"GET", b"STORE", b"STREAMS", b"KEYS", b"BLOCK", b"0",
    ];
    for command in t.iter().filter(|c| c.keys_by_count) {
        for argc in 1..8 {
            let mut found = Vec::new();
            for shift in 0..words.len() {
                let argv: Vec<&[u8]> = (0..argc)
                    .map(|i| {
                        if i == 0 {
                            command.name.as_bytes()
                        } else {
                            words[(i + shift) % 8]
                        }
                    })
                    .collect();
                let mut out = Vec::new();
                let result = command.keys(&argv, &mut out);
                found.push((result, out.iter().map(|k| k.index).collect::<Vec<_>>()));
            }
            assert!(
                found.windows(2).all(|w| w[0] == w[1]),
                "{} {argc}: {found:?}",
                command.name
            );
        }
    }
}

#[test]
fn classes() {
    let t = table(RESP2);
    let class = |line: &str| {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        t.lookup(&argv).expect("known").class(&argv)
    };
    assert_eq!(class("get a"), Class::Cacheable);
    assert_eq!(class("ttl a"), Class::Read);
    assert_eq!(class("set a b"), Class::Write);
    assert_eq!(class("eval s 1 k"), Class::Write);
    assert_eq!(class("xread STREAMS s 0"), Class::Cacheable);
    assert_eq!(class("xread BLOCK 0 STREAMS s 0"), Class::Blocking);
    assert_eq!(class("config set a b"), Class::Refused);
    assert_eq!(class("config get a"), Class::Other);
    assert_eq!(class("ping"), Class::Other);
}

#[test]
fn bad_replies_are_errors_not_panics() {
    for bytes in [
        &b"+OK\r\n"[..],
        b"*1\r\n:1\r\n",
        b"*1\r\n*2\r\n$3\r\nget\r\n:2\r\n",
    ] {
        let value = redis::parse_redis_value(bytes).expect("RESP");
        assert!(CommandTable::parse(&value).is_err());
    }
    // A nil entry (COMMAND INFO of an unknown name) is skipped.
    let value = redis::parse_redis_value(b"*1\r\n$-1\r\n").expect("RESP");
    assert!(CommandTable::parse(&value).expect("a table").is_empty());
}
