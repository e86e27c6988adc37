//! The headers of a response, rendered once into one buffer as they go on
//! the wire, and handed to tiny_http as they are (vendor patch 16).
//!
//! tiny_http's own `Header` owns its name and its value: two allocations
//! per header, six headers on a hit. Here a response's headers cost one
//! buffer, sized up front for the answers that carry the most.

/// Header lines, each `Name: value\r\n`, in the order they were added.
#[derive(Debug, Default)]
pub struct Headers {
    lines: Vec<u8>,
}

impl Headers {
    /// No headers yet, with room for `bytes` of them.
    pub fn with_capacity(bytes: usize) -> Headers {
        Headers {
            lines: Vec::with_capacity(bytes),
        }
    }

    /// Adds `name: value`. Names are the proxy's constants and values
    /// ASCII it made (literals, digits, hex, a configured origin); a value
    /// that is not printable ASCII would be a bug (the tests compare every
    /// header of an answer), and is left out rather than written, so no
    /// line break ever reaches the wire from a value.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.push_parts(name, &[value]);
    }

    /// Adds a header whose value is `parts` one after the other (a fixed
    /// prefix and a number, without putting them together first).
    pub fn push_parts(&mut self, name: &[u8], parts: &[&[u8]]) {
        debug_assert!(
            !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic() && *b != b':'),
            "header name {:?}",
            String::from_utf8_lossy(name)
        );
        if !parts.iter().all(|part| printable(part)) {
            return;
        }
        let value_len: usize = parts.iter().map(|part| part.len()).sum();
        self.lines.reserve(name.len() + value_len + 4);
        self.lines.extend_from_slice(name);
        self.lines.extend_from_slice(b": ");
        for part in parts {
            self.lines.extend_from_slice(part);
        }
        self.lines.extend_from_slice(b"\r\n");
    }

    /// Adds whole header lines (each ending in `\r\n`) made only of the
    /// proxy's own literals, hex and decimal digits, which cannot hold a
    /// line break, so they are copied without the check [`Headers::push`]
    /// makes (debug builds still check). For the headers every found
    /// value's answer carries.
    pub fn push_own(&mut self, lines: &[u8]) {
        debug_assert!(
            lines.ends_with(b"\r\n")
                && lines
                    .split(|&b| b == b'\n')
                    .all(|line| line.is_empty() || line.strip_suffix(b"\r").is_some_and(printable)),
            "header lines {:?}",
            String::from_utf8_lossy(lines)
        );
        self.lines.extend_from_slice(lines);
    }

    /// Adds a whole line of the proxy's own, `Name: value\r\n`, written as
    /// one copy (a header that is always the same, such as `Vary: Accept`).
    pub fn push_line(&mut self, line: &'static [u8]) {
        debug_assert!(
            line.ends_with(b"\r\n")
                && line.windows(2).any(|pair| pair == b": ")
                && printable(&line[..line.len() - 2]),
            "header line {:?}",
            String::from_utf8_lossy(line)
        );
        self.lines.extend_from_slice(line);
    }

    /// Removes every header.
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// Each header's name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        // Only printable ASCII is ever pushed, so this is UTF-8.
        let text = std::str::from_utf8(&self.lines).unwrap_or_default();
        text.split_terminator("\r\n")
            .filter_map(|line| line.split_once(": "))
    }

    /// The first value of the header `name` (any case), for the access log.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The rendered lines, for tiny_http's `Response::with_raw_headers`.
    pub fn into_lines(self) -> Vec<u8> {
        self.lines
    }
}

/// Whether `bytes` are all printable ASCII, spaces or tabs (no line
/// break). Without an early exit, so the compiler checks many bytes at once.
fn printable(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (matches!(b, b' '..=b'~') | (b == b'\t'))
    })
}

#[cfg(test)]
mod tests {
    use super::Headers;

    #[test]
    fn lines_are_rendered_in_order_and_read_back() {
        let mut headers = Headers::with_capacity(64);
        headers.push(b"Content-Type", b"text/plain; charset=utf-8");
        headers.push_parts(b"Cache-Control", &[b"max-age=", b"60"]);
        headers.push_line(b"Vary: Accept\r\n");
        headers.push(b"Vary", b"Origin");
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Cache-Control", "max-age=60"),
                ("Vary", "Accept"),
                ("Vary", "Origin"),
            ]
        );
        assert_eq!(headers.get("vary"), Some("Accept"));
        assert_eq!(headers.get("Age"), None);
        assert_eq!(
            headers.into_lines(),
            b"Content-Type: text/plain; charset=utf-8\r\nCache-Control: max-age=60\r\n\
              Vary: Accept\r\nVary: Origin\r\n"
        );
    }

    #[test]
    fn a_value_with_a_line_break_is_never_written() {
        let mut headers = Headers::default();
        headers.push(b"X-Cache", b"HIT\r\nSet-Cookie: a=b");
        headers.push(b"Age", b"\n");
        headers.push_parts(b"Cache-Control", &[b"max-age=", "\u{e9}".as_bytes()]);
        assert!(headers.into_lines().is_empty());
    }
}
