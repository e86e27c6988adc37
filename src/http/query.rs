//! Reading the request target: its origin form, and the `key` parameter in
//! its query string, binary-safe.
//!
//! `url::form_urlencoded` decodes to UTF-8 lossily, which would silently turn
//! one key into another; here names and values are decoded to raw bytes
//! (`+` as a space, then `%XX`), and a malformed escape is kept literally, as
//! browsers and the url crate do.

use percent_encoding::percent_decode;
use std::borrow::Cow;

/// Why the query did not name exactly one usable key.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No `key` parameter.
    Missing,
    /// `key=` with nothing after it.
    Empty,
    /// `key` given more than once.
    Repeated,
    /// Longer than MAX_KEY_BYTES (the `max` passed to [`find_key`]).
    TooLong,
}

impl KeyError {
    /// The sentence for the JSON error body.
    pub fn message(&self, max: usize) -> String {
        match self {
            KeyError::Missing => "missing query parameter 'key'".to_owned(),
            KeyError::Empty => "query parameter 'key' is empty".to_owned(),
            KeyError::Repeated => "query parameter 'key' is given more than once".to_owned(),
            KeyError::TooLong => format!("key too long (max {max} bytes)"),
        }
    }
}

/// The decoded value of the one `key` parameter in `query` (the part of the
/// URL after `?`, without the `#fragment`), at most `max` bytes long.
/// Redis allows far longer keys; the cap (MAX_KEY_BYTES) bounds what one
/// request can make the proxy hash, store and log. A key with nothing to
/// decode is borrowed from the query: no allocation.
pub fn find_key(query: &str, max: usize) -> Result<Cow<'_, [u8]>, KeyError> {
    // What nearly every request sends, `key=K` alone with nothing in K to
    // decode, is found with one vectorised scan of K (a hit's target is
    // read on every hit; the general loop below costs some 400
    // instructions for a 30-byte query).
    if let Some(value) = query.as_bytes().strip_prefix(b"key=") {
        if memchr::memchr3(b'&', b'%', b'+', value).is_none() {
            return checked(Some(Cow::Borrowed(value)), max);
        }
    }
    let mut found: Option<Cow<'_, [u8]>> = None;
    for pair in query.as_bytes().split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if name != b"key" && *decode(name) != *b"key" {
            continue;
        }
        if found.is_some() {
            return Err(KeyError::Repeated);
        }
        found = Some(decode(value));
    }
    checked(found, max)
}

/// The key found, if any, unless it is empty or longer than `max`.
fn checked(found: Option<Cow<'_, [u8]>>, max: usize) -> Result<Cow<'_, [u8]>, KeyError> {
    match found {
        None => Err(KeyError::Missing),
        Some(key) if key.is_empty() => Err(KeyError::Empty),
        Some(key) if key.len() > max => Err(KeyError::TooLong),
        Some(key) => Ok(key),
    }
}

/// The origin form (`/path?query`) of a request target. An absolute-form
/// target (`http://host:port/path?query`), which RFC 9112 section 3.2.2 says
/// a server MUST accept, loses its scheme and authority (the host it names
/// is not checked: the proxy serves one origin); an empty path is `/`.
/// Anything else is returned as it is.
pub fn origin_form(target: &str) -> Cow<'_, str> {
    if target.starts_with('/') {
        return Cow::Borrowed(target);
    }
    let scheme = |prefix: &str| {
        target
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    let rest = if scheme("http://") {
        &target[7..]
    } else if scheme("https://") {
        &target[8..]
    } else {
        return Cow::Borrowed(target);
    };
    match rest.find(['/', '?', '#']) {
        Some(at) if rest.as_bytes()[at] == b'/' => Cow::Borrowed(&rest[at..]),
        Some(at) => Cow::Owned(format!("/{}", &rest[at..])),
        None => Cow::Borrowed("/"),
    }
}

/// `target`'s path and its query (without a `#fragment`): split at the
/// first `?`, and the query cut at its first `#`.
pub fn split_target(target: &str) -> (&str, &str) {
    // The path is a few bytes long: a plain loop finds the `?` sooner than
    // a vectorised search gets going; the query can be long.
    let Some(at) = target.bytes().position(|b| b == b'?') else {
        return (target, "");
    };
    let query = &target[at + 1..];
    let end = memchr::memchr(b'#', query.as_bytes()).unwrap_or(query.len());
    (&target[..at], &query[..end])
}

/// Form decoding: `+` is a space, `%XX` a byte. A component with neither
/// is borrowed as it is (the common case: one pass over its bytes).
fn decode(component: &[u8]) -> Cow<'_, [u8]> {
    let Some(at) = memchr::memchr2(b'%', b'+', component) else {
        return Cow::Borrowed(component);
    };
    if memchr::memchr(b'+', &component[at..]).is_some() {
        let spaced: Vec<u8> = component
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_decode(&spaced).collect())
    } else {
        percent_decode(component).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    #[test]
    fn targets_split_into_path_and_query_without_fragment() {
        assert_eq!(split_target("/proxy?key=k"), ("/proxy", "key=k"));
        assert_eq!(split_target("/proxy?key=k#f?g"), ("/proxy", "key=k"));
        assert_eq!(split_target("/proxy?key=k?x"), ("/proxy", "key=k?x"));
        assert_eq!(split_target("/proxy"), ("/proxy", ""));
        assert_eq!(split_target("/proxy#f?key=k"), ("/proxy#f", "key=k"));
        assert_eq!(split_target("/?"), ("/", ""));
    }

    #[test]
    fn absolute_form_targets_lose_scheme_and_authority() {
        let form = |target| origin_form(target).into_owned();
        assert_eq!(form("/proxy?key=k"), "/proxy?key=k");
        assert_eq!(form("http://127.0.0.1:8080/proxy?key=k"), "/proxy?key=k");
        assert_eq!(form("HTTPS://example.com/healthz"), "/healthz");
        assert_eq!(form("http://example.com"), "/");
        assert_eq!(form("http://example.com?key=k"), "/?key=k");
        assert_eq!(form("http://u@h:1/a/b?c=http://x"), "/a/b?c=http://x");
        assert_eq!(form("*"), "*");
        assert_eq!(form("ftp://h/x"), "ftp://h/x");
    }

    #[test]
    fn decodes_plus_and_percent_escapes() {
        assert_eq!(find_key("key=a+b%20c", MAX).as_deref(), Ok(&b"a b c"[..]));
        assert_eq!(
            find_key("key=%26%3D%2F%25%2B", MAX).as_deref(),
            Ok(&b"&=/%+"[..])
        );
        assert_eq!(
            find_key("key=%E2%9C%93", MAX).as_deref(),
            Ok("✓".as_bytes())
        );
        assert_eq!(find_key("key=%FF%00", MAX).as_deref(), Ok(&b"\xff\x00"[..]));
    }

    #[test]
    fn a_key_with_nothing_to_decode_is_borrowed_from_the_query() {
        assert!(matches!(
            find_key("key=k:42&x=1", MAX),
            Ok(Cow::Borrowed(b"k:42"))
        ));
        assert!(matches!(find_key("key=a+b", MAX), Ok(Cow::Owned(_))));
        assert!(matches!(find_key("key=a%20b", MAX), Ok(Cow::Owned(_))));
    }

    #[test]
    fn a_lone_key_is_found_as_the_general_loop_finds_it() {
        // The one-scan path for `key=K` and the loop agree, `=` in K kept.
        assert!(matches!(
            find_key("key=a=b", MAX),
            Ok(Cow::Borrowed(b"a=b"))
        ));
        assert!(matches!(
            find_key("key=k:42", MAX),
            Ok(Cow::Borrowed(b"k:42"))
        ));
        assert_eq!(find_key("key=a%2", MAX).as_deref(), Ok(&b"a%2"[..]));
        assert_eq!(find_key("key=a&b=1", MAX).as_deref(), Ok(&b"a"[..]));
        assert_eq!(find_key("key=&key=b", MAX), Err(KeyError::Repeated));
        let long = format!("key={}", "k".repeat(9));
        assert_eq!(find_key(&long, 8), Err(KeyError::TooLong));
    }

    #[test]
    fn ignores_other_parameters_and_finds_encoded_names() {
        assert_eq!(find_key("a=1&key=x&b", MAX).as_deref(), Ok(&b"x"[..]));
        assert_eq!(find_key("%6Bey=x", MAX).as_deref(), Ok(&b"x"[..]));
    }

    #[test]
    fn keeps_malformed_escapes_literally() {
        assert_eq!(find_key("key=100%", MAX).as_deref(), Ok(&b"100%"[..]));
        assert_eq!(find_key("key=%zz", MAX).as_deref(), Ok(&b"%zz"[..]));
    }

    #[test]
    fn rejects_missing_empty_repeated_and_long_keys() {
        assert_eq!(find_key("", MAX), Err(KeyError::Missing));
        assert_eq!(find_key("keys=a", MAX), Err(KeyError::Missing));
        assert_eq!(find_key("key=", MAX), Err(KeyError::Empty));
        assert_eq!(find_key("key", MAX), Err(KeyError::Empty));
        assert_eq!(find_key("key=a&key=b", MAX), Err(KeyError::Repeated));
        assert_eq!(find_key("key=a&key=a", MAX), Err(KeyError::Repeated));
        let long = format!("key={}", "k".repeat(MAX + 1));
        assert_eq!(find_key(&long, MAX), Err(KeyError::TooLong));
        let exact = format!("key={}", "k".repeat(MAX));
        assert!(find_key(&exact, MAX).is_ok());
    }
}
