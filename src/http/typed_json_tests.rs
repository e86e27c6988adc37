//! The JSON of every type from Redis's replies as Redis 7 sends them, in
//! RESP3 (what the proxy reads in) and RESP2.

use serde_json::json;

use super::*;

fn value(kind: Kind, reply: &[u8]) -> (Json, bool) {
    match render(kind, reply) {
        Ok(Reading::Value { value, base64 }) => (value, base64),
        other => panic!("{kind:?} {:?}: {other:?}", String::from_utf8_lossy(reply)),
    }
}

#[test]
fn type_names_are_read() {
    assert_eq!(parse_type(b"+hash\r\n"), Ok(Type::Known(Kind::Hash)));
    assert_eq!(parse_type(b"+zset\r\n"), Ok(Type::Known(Kind::Zset)));
    assert_eq!(parse_type(b"+stream\r\n"), Ok(Type::Known(Kind::Stream)));
    assert_eq!(parse_type(b"+none\r\n"), Ok(Type::None));
    assert_eq!(parse_type(b"+string\r\n"), Ok(Type::String));
    assert_eq!(
        parse_type(b"+vectorset\r\n"),
        Ok(Type::Other("vectorset".into()))
    );
    assert_eq!(
        parse_type(b"+ReJSON-RL\r\n"),
        Ok(Type::Other("ReJSON-RL".into()))
    );
    assert_eq!(
        parse_type(b"-NOPERM no\r\n"),
        Err(Unexpected("NOPERM no".into()))
    );
    assert!(parse_type(b":1\r\n").is_err());
    assert!(parse_type(b"+hash").is_err(), "cut short");
}

#[test]
fn a_hash_is_an_object_from_a_resp3_map_or_a_resp2_array() {
    let resp3 = b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n";
    let resp2 = b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n";
    for reply in [&resp3[..], &resp2[..]] {
        assert_eq!(
            value(Kind::Hash, reply),
            (json!({"a": "1", "b": ""}), false)
        );
    }
    assert!(render(Kind::Hash, b"*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n").is_err());
}

#[test]
fn lists_and_sets_are_arrays_in_redis_order() {
    let list = b"*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nc\r\n";
    assert_eq!(value(Kind::List, list), (json!(["c", "a", "c"]), false));
    let resp3_set = b"~2\r\n$1\r\nx\r\n$2\r\n42\r\n";
    let resp2_set = b"*2\r\n$1\r\nx\r\n$2\r\n42\r\n";
    for reply in [&resp3_set[..], &resp2_set[..]] {
        assert_eq!(value(Kind::Set, reply), (json!(["x", "42"]), false));
    }
}

#[test]
fn zset_scores_are_numbers_and_infinities_are_redis_words() {
    // RESP3: [member, double] pairs; RESP2: flat, scores as text.
    let resp3 = b"*4\r\n*2\r\n$1\r\nl\r\n,-inf\r\n*2\r\n$1\r\nf\r\n,0.5\r\n\
                  *2\r\n$1\r\ni\r\n,3\r\n*2\r\n$1\r\nh\r\n,inf\r\n";
    let resp2 = b"*8\r\n$1\r\nl\r\n$4\r\n-inf\r\n$1\r\nf\r\n$3\r\n0.5\r\n\
                  $1\r\ni\r\n$1\r\n3\r\n$1\r\nh\r\n$3\r\ninf\r\n";
    for reply in [&resp3[..], &resp2[..]] {
        let (zset, base64) = value(Kind::Zset, reply);
        assert!(!base64);
        assert_eq!(
            zset,
            json!([["l", "-inf"], ["f", 0.5], ["i", 3.0], ["h", "inf"]])
        );
        assert_eq!(
            zset.to_string(),
            r#"[["l","-inf"],["f",0.5],["i",3.0],["h","inf"]]"#
        );
    }
    // Redis's 17 significant digits come back as the same double.
    let (tiny, _) = value(
        Kind::Zset,
        b"*2\r\n$1\r\nm\r\n$22\r\n1.0000000000000001e-05\r\n",
    );
    let exact: f64 = "1.0000000000000001e-05".parse().expect("a double");
    assert_eq!(tiny, json!([["m", exact]]));
    assert!(render(Kind::Zset, b"*2\r\n$1\r\nm\r\n$3\r\nabc\r\n").is_err());
}

#[test]
fn a_stream_is_entries_of_id_and_fields() {
    let reply = b"*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n\
                  *2\r\n$3\r\n2-0\r\n*2\r\n$1\r\na\r\n$1\r\n3\r\n";
    assert_eq!(
        value(Kind::Stream, reply),
        (
            json!([["1-0", {"a": "1", "b": "2"}], ["2-0", {"a": "3"}]]),
            false
        )
    );
    // Fields as a RESP3 map are read as well.
    let mapped = b"*1\r\n*2\r\n$3\r\n1-0\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n";
    assert_eq!(value(Kind::Stream, mapped).0, json!([["1-0", {"a": "1"}]]));
    // An empty stream is a value; an empty hash, list, set or zset is a key
    // that went.
    assert_eq!(value(Kind::Stream, b"*0\r\n"), (json!([]), false));
    assert_eq!(render(Kind::Hash, b"%0\r\n"), Ok(Reading::Gone));
    assert_eq!(render(Kind::List, b"*0\r\n"), Ok(Reading::Gone));
    assert_eq!(render(Kind::Set, b"~0\r\n"), Ok(Reading::Gone));
    assert_eq!(render(Kind::Zset, b"*0\r\n"), Ok(Reading::Gone));
}

#[test]
fn one_binary_string_makes_every_string_of_the_value_base64() {
    // Field "a", value 0xFF 0x00; field "b", value "x".
    let hash = b"%2\r\n$1\r\na\r\n$2\r\n\xff\x00\r\n$1\r\nb\r\n$1\r\nx\r\n";
    assert_eq!(
        value(Kind::Hash, hash),
        (json!({"YQ==": "/wA=", "Yg==": "eA=="}), true)
    );
    // Scores stay numbers.
    let zset = b"*1\r\n*2\r\n$1\r\n\xfe\r\n,1.5\r\n";
    assert_eq!(value(Kind::Zset, zset), (json!([["/g==", 1.5]]), true));
    let stream = b"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\n\x80\r\n$1\r\nv\r\n";
    assert_eq!(
        value(Kind::Stream, stream),
        (json!([["MS0w", {"gA==": "dg=="}]]), true)
    );
    let list = b"*2\r\n$2\r\n\xc3\xa9\r\n$1\r\n\xe9\r\n";
    assert_eq!(value(Kind::List, list), (json!(["w6k=", "6Q=="]), true));
    // UTF-8 that is not ASCII is text.
    assert_eq!(
        value(Kind::Set, "~1\r\n$2\r\n\u{e9}\r\n".as_bytes()),
        (json!(["\u{e9}"]), false)
    );
}

#[test]
fn error_replies_say_what_happened() {
    let wrong = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(render(Kind::Hash, wrong), Ok(Reading::WrongType));
    assert_eq!(
        render(Kind::List, b"-NOPERM this user has no permissions\r\n"),
        Ok(Reading::Error("NOPERM this user has no permissions".into()))
    );
    assert_eq!(
        render(Kind::Set, b"!8\r\nERR blob\r\n"),
        Ok(Reading::Error("ERR blob".into()))
    );
    assert!(render(Kind::List, b"$3\r\nabc\r\n").is_err());
    assert!(
        render(Kind::List, b"*2\r\n$1\r\na\r\n").is_err(),
        "cut short"
    );
    assert!(render(Kind::List, b"*1\r\n:1\r\n").is_err());
}

#[test]
fn each_kind_reads_its_whole_value() {
    let key = &b"k"[..];
    assert_eq!(Kind::Hash.read(key), [&b"HGETALL"[..], key]);
    assert_eq!(Kind::List.read(key), [&b"LRANGE"[..], key, b"0", b"-1"]);
    assert_eq!(Kind::Set.read(key), [&b"SMEMBERS"[..], key]);
    assert_eq!(
        Kind::Zset.read(key),
        [&b"ZRANGE"[..], key, b"0", b"-1", b"WITHSCORES"]
    );
    assert_eq!(Kind::Stream.read(key), [&b"XRANGE"[..], key, b"-", b"+"]);
}
