//! Reading the texts Redis and the proxy answer `INFO` and `CLIENT LIST`
//! with, however the test asked for them (the redis crate, a raw
//! connection of its own, a tracking client).

/// The value of `field` in an INFO text (`field:value` lines), trimmed.
pub fn info_value<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// The number `field` has in an INFO text; panics if it has none.
pub fn info_number(info: &str, field: &str) -> u64 {
    info_value(info, field)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no number for {field} in INFO: {info}"))
}

/// `stat` (`calls`, `rejected_calls`, ...) of `command`'s line in an
/// `INFO commandstats` text; 0 when the command has no line yet.
pub fn command_stat(info: &str, command: &str, stat: &str) -> u64 {
    info_value(info, &format!("cmdstat_{}", command.to_lowercase()))
        .and_then(|line| {
            line.split(',')
                .find_map(|pair| pair.strip_prefix(stat)?.strip_prefix('='))
        })
        .map_or(0, |n| n.parse().expect("a commandstats number"))
}

/// The lines of a `CLIENT LIST` text that satisfy `what`.
pub fn client_lines(list: &str, what: impl Fn(&str) -> bool) -> Vec<String> {
    list.lines()
        .filter(|line| what(line))
        .map(str::to_owned)
        .collect()
}
