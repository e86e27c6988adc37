//! `Accept` (RFC 9110 section 12.5.1): whether a client asks for a string
//! value as JSON rather than as its raw bytes.
//!
//! Parsed as media ranges, not searched as text: `application/jsonp` is not
//! `application/json`, and `q=0` means "not acceptable". Runs on every hit
//! (curl and browsers always send `Accept`), so it works on the header's
//! bytes in place: no allocation.

/// True when the `Accept` values (each header's, in order) prefer JSON:
/// a range naming `application/json` exactly (any case) has a weight above
/// 0 and at least that of any range naming a raw type exactly
/// (`text/plain`, `application/octet-stream`). Wildcards (`*/*`,
/// `application/*`) choose neither: without a named preference the raw
/// bytes are served, as they are without `Accept`.
pub fn prefers_json<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let mut json: Option<u16> = None;
    let mut raw: Option<u16> = None;
    for value in values {
        for_each_range(value, |range| weigh(range, &mut json, &mut raw));
    }
    json.is_some_and(|q| q > 0 && q >= raw.unwrap_or(0))
}

/// Calls `f` with each comma-separated element of `value`; a comma inside
/// a quoted parameter value (RFC 9110 section 5.6.4) is not a separator.
/// Jumps from comma to comma (`memchr2`), as most headers quote nothing.
fn for_each_range(value: &str, mut f: impl FnMut(&str)) {
    let bytes = value.as_bytes();
    let (mut start, mut at) = (0, 0);
    while let Some(found) = memchr::memchr2(b',', b'"', &bytes[at..]) {
        let i = at + found;
        if bytes[i] == b',' {
            f(&value[start..i]);
            start = i + 1;
            at = i + 1;
        } else {
            at = after_quoted(bytes, i + 1);
        }
    }
    f(&value[start..]);
}

/// Where the quoted string whose content starts at `from` ends (after
/// its closing quote; a backslash escapes the next byte), or the end.
fn after_quoted(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Notes the weight of one media range if it names JSON or a raw type
/// (only then are its parameters read). A range whose `q` is not a qvalue
/// (RFC 9110 section 12.4.2) is left out rather than guessed at.
fn weigh(range: &str, json: &mut Option<u16>, raw: &mut Option<u16>) {
    // The type cannot hold a quote, so its end is the first `;`.
    let end = memchr::memchr(b';', range.as_bytes()).unwrap_or(range.len());
    let media = range[..end].trim_ascii();
    // By length first: most ranges are neither, and are passed over.
    let slot = match media.len() {
        16 if media.eq_ignore_ascii_case("application/json") => json,
        10 if media.eq_ignore_ascii_case("text/plain") => raw,
        24 if media.eq_ignore_ascii_case("application/octet-stream") => raw,
        _ => return,
    };
    if let Some(q) = weight(range[end..].strip_prefix(';').unwrap_or("")) {
        *slot = (*slot).max(Some(q));
    }
}

/// The weight in thousandths (`q=1` is 1000, the default) that a range's
/// parameters give it; None when its `q` is not a qvalue.
fn weight(parameters: &str) -> Option<u16> {
    if parameters.is_empty() {
        return Some(1000);
    }
    for parameter in split_outside_quotes(parameters, b';') {
        let (name, value) = parameter.split_once('=')?;
        if name.trim_ascii().eq_ignore_ascii_case("q") {
            // Parameters after the weight are accept-ext, not the range's.
            return qvalue(value.trim_ascii());
        }
    }
    Some(1000)
}

/// A qvalue in thousandths: `0`, `0.` and up to three digits, `1`, or
/// `1.` and up to three zeros.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The pieces of `text` between `separator`s that are not inside a quoted
/// string (RFC 9110 section 5.6.4: a parameter's value may be quoted, and
/// hold the separator, or a backslash-escaped quote).
fn split_outside_quotes(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, byte) in current.bytes().enumerate() {
            match byte {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if byte == separator && !quoted => {
                    rest = Some(&current[i + 1..]);
                    return Some(&current[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(accept: &str) -> bool {
        prefers_json(std::iter::once(accept))
    }

    #[test]
    fn json_is_chosen_only_by_a_range_naming_it_with_a_weight() {
        for accept in [
            "application/json",
            "APPLICATION/JSON",
            "text/html, application/json",
            "application/json; charset=utf-8",
            " application/json ;q=0.5",
            "application/json;Q=1.000",
            "text/plain;q=0.5, application/json;q=0.5",
            "application/json;q=0.001, */*;q=0.9",
            "text/x;p=\"a,b;q=0\", application/json",
            "text/x;p=\"a\\\",b\", application/json",
        ] {
            assert!(json(accept), "{accept}");
        }
        for accept in [
            "",
            "*/*",
            "application/*",
            "text/plain",
            "application/jsonp",
            "application/json-seq",
            "xapplication/json",
            "application/json;q=0",
            "application/json;q=0.000, text/plain",
            "application/json;q=0, text/plain",
            "text/plain, application/json;q=0.1",
            "application/octet-stream, application/json;q=0.999",
            // Not a qvalue: the range is left out.
            "application/json;q=2",
            "application/json;q=0.5000",
            "application/json;q=abc",
            "application/json;q",
            // The comma is inside a quoted parameter, not between ranges.
            "text/x;p=\"a, application/json\"",
            "text/x;p=\"a\\\", application/json\"",
        ] {
            assert!(!json(accept), "{accept}");
        }
    }

    #[test]
    fn every_accept_header_counts() {
        let headers = ["text/plain;q=0.2", "application/json;q=0.3"];
        assert!(prefers_json(headers.into_iter()));
        let headers = ["application/json;q=0.3", "text/plain"];
        assert!(!prefers_json(headers.into_iter()));
    }

    #[test]
    fn qvalues_are_read_in_thousandths() {
        let cases = [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("0.1234", None),
            ("", None),
            ("-0", None),
            ("0.-1", None),
            (".5", None),
        ];
        for (text, wanted) in cases {
            assert_eq!(qvalue(text), wanted, "{text:?}");
        }
    }
}
