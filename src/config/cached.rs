//! CACHE_COMMANDS: which reads the cache keeps replies of (issue #22).
//!
//! Validated here only as names (the command table, read from Redis later,
//! decides at run time whether a name is a read that may be cached: see
//! `Service::lookup_reply` and `Service::read_reply`).

use super::parse::Raw;
use super::ConfigError;
use crate::commands::MAX_NAME;

/// The documented default list: reads whose reply depends only on their
/// keys' contents. GET and MGET are served by the cache's own path.
pub const DEFAULT_CACHE_COMMANDS: &[&str] = &[
    "get",
    "mget",
    "getrange",
    "strlen",
    "hget",
    "hmget",
    "hgetall",
    "hkeys",
    "hvals",
    "hlen",
    "hexists",
    "hstrlen",
    "smembers",
    "sismember",
    "smismember",
    "scard",
    "sinter",
    "sunion",
    "sdiff",
    "zrange",
    "zrangebyscore",
    "zrangebylex",
    "zrevrange",
    "zrevrangebyscore",
    "zrevrangebylex",
    "zscore",
    "zmscore",
    "zcard",
    "zcount",
    "zrank",
    "zrevrank",
    "lrange",
    "lindex",
    "llen",
    "lpos",
    "xrange",
    "xrevrange",
    "xlen",
    "getbit",
    "bitcount",
    "bitpos",
    "exists",
    "type",
];

/// The lower-case names CACHE_COMMANDS asks for: empty for the default
/// list; `none` for nothing, standing alone (with any other item it is an
/// error: no command is named NONE, and `none,+hget` would be ambiguous);
/// `-NAME` drops a name from the default list, `+NAME` adds one; a list of
/// bare names replaces the default (signed items then apply to it). Names
/// are letters, digits and `_`.
pub(super) fn parse_cache_commands(raw: Raw) -> Result<Vec<String>, ConfigError> {
    let mut items: Vec<&str> = raw.value.split(',').map(str::trim).collect();
    if items == [""] {
        items.clear();
    } else if items.contains(&"") {
        // As INVALIDATION_PREFIXES: an empty item is a typo (`get,,mget`)
        // or a list cut short, not a way to say the default.
        return Err(raw.error("comma-separated command names, none of them empty"));
    }
    let is_none = |item: &&str| {
        item.trim_start_matches(['+', '-'])
            .eq_ignore_ascii_case("none")
    };
    match items.iter().position(is_none) {
        Some(_) if items.len() == 1 && !items[0].starts_with(['+', '-']) => return Ok(Vec::new()),
        // No command is named NONE: with other items (or a sign) it can
        // only be a mistake, and what was meant is not clear.
        Some(_) => {
            return Err(raw.error(
                "none to stand alone (it caches no reply: to cache only some reads, list their \
                 names, e.g. hget,hmget)",
            ))
        }
        None => {}
    }
    let replaces = items.iter().any(|item| !item.starts_with(['+', '-']));
    let mut names: Vec<String> = match replaces {
        true => Vec::new(),
        false => DEFAULT_CACHE_COMMANDS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let expected =
        "none, or comma-separated command names, each optionally prefixed with + (add) or - (drop)";
    for item in &items {
        let (sign, name) = match item.as_bytes()[0] {
            b'+' | b'-' => (Some(item.as_bytes()[0]), &item[1..]),
            _ => (None, *item),
        };
        // Longer than the command table looks up: Redis's are far shorter.
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(raw.error(expected));
        }
        let name = name.to_ascii_lowercase();
        match sign {
            Some(b'-') => names.retain(|known| *known != name),
            _ if names.contains(&name) => {}
            _ => names.push(name),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Vec<String>, ConfigError> {
        parse_cache_commands(Raw {
            name: "CACHE_COMMANDS",
            value: value.to_owned(),
        })
    }

    #[test]
    fn default_narrowed_extended_replaced_or_none() {
        let default = parse("").expect("default");
        assert_eq!(default.len(), DEFAULT_CACHE_COMMANDS.len());
        let narrowed = parse("-HGETALL, +sort_ro").expect("signed");
        assert!(!narrowed.contains(&"hgetall".to_owned()));
        assert!(narrowed.contains(&"sort_ro".to_owned()));
        assert_eq!(parse("hget,LRANGE").expect("list"), ["hget", "lrange"]);
        assert!(parse("none").expect("none").is_empty());
        for bad in [
            "+",
            "h get",
            "hget;",
            "-",
            "+a|b",
            ",,",
            "get,,mget",
            "none,",
            ",hget",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn none_stands_alone() {
        assert!(parse(" None ").expect("none alone").is_empty());
        for bad in ["none,+hget", "hget,none", "NONE,-get", "+none", "-none"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(
                err.contains("CACHE_COMMANDS") && err.contains("none"),
                "{bad}: {err}"
            );
            assert!(err.contains("none to stand alone"), "{bad}: {err}");
        }
    }
}
