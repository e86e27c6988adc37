//! Turning one variable's raw value into a typed setting, or an error that
//! names the variable, the value and what it accepts.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigError, Forwarding, Invalidation, RedisMode, Secret, SentinelSettings, TlsFiles};

/// A raw value with the name it came from, for error messages.
pub(super) struct Raw {
    pub name: &'static str,
    pub value: String,
}

impl Raw {
    pub(super) fn error(&self, expected: &str) -> ConfigError {
        ConfigError {
            variable: self.name,
            value: self.value.clone(),
            expected: expected.to_owned(),
        }
    }

    pub(super) fn parse_in<T>(&self, min: T, max: T, expected: &str) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd,
    {
        match self.value.trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(self.error(expected)),
        }
    }

    pub(super) fn parse_non_zero(
        &self,
        max: usize,
        expected: &str,
    ) -> Result<NonZeroUsize, ConfigError> {
        let n = self.parse_in::<usize>(1, max, expected)?;
        NonZeroUsize::new(n).ok_or_else(|| self.error(expected))
    }
}

/// A duration in seconds, fractions allowed, from 1 ms to a year. Below
/// 1 ms is refused rather than rounded: the timeouts are set on sockets and
/// checked in milliseconds, where a few nanoseconds become 0, which turned
/// an idle timeout off or made every entry expire at once (0.0000000001
/// passed a "> 0" check).
pub(super) fn parse_seconds(raw: Raw) -> Result<Duration, ConfigError> {
    const EXPECTED: &str = "seconds from 0.001 (1 ms) to a year (31536000), fractions allowed";
    let secs: f64 = raw.value.trim().parse().map_err(|_| raw.error(EXPECTED))?;
    if !secs.is_finite() || !(0.001..=31_536_000.0).contains(&secs) {
        return Err(raw.error(EXPECTED));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| raw.error(EXPECTED))
}

pub(super) fn parse_bool(raw: Raw) -> Result<bool, ConfigError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(raw.error("true or false")),
    }
}

/// [`parse_seconds`], or 0 for "never" (STALE_IF_ERROR_SECS, and
/// CLIENT_IDLE_TIMEOUT_SECS as Redis's own `timeout 0`): only the 0 itself,
/// so a tiny fraction is still refused rather than read as "never".
pub(super) fn parse_seconds_or_never(raw: Raw) -> Result<Duration, ConfigError> {
    if raw.value.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_seconds(raw).map_err(|mut err| {
        err.expected = "0, or seconds from 0.001 (1 ms) to a year, fractions allowed".to_owned();
        err
    })
}

/// Milliseconds 1..=3600000 (as REDIS_TIMEOUT_MS), or 0 for no bound
/// (`None`): FORWARD_TIMEOUT_MS.
pub(super) fn parse_millis_or_never(raw: Raw) -> Result<Option<Duration>, ConfigError> {
    let ms = raw.parse_in::<u64>(0, 3_600_000, "0 (no timeout), or milliseconds 1..=3600000")?;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

pub(super) fn parse_invalidation(raw: Raw) -> Result<Invalidation, ConfigError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Invalidation::Auto),
        "tracking" => Ok(Invalidation::Tracking),
        "off" => Ok(Invalidation::Off),
        _ => Err(raw.error("auto, tracking or off")),
    }
}

pub(super) fn parse_forwarding(raw: Raw) -> Result<Forwarding, ConfigError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "all" => Ok(Forwarding::All),
        "reads" => Ok(Forwarding::Reads),
        "off" => Ok(Forwarding::Off),
        _ => Err(raw.error("all, reads or off")),
    }
}

/// RESP_REPORTED_VERSION: `redis` (`None`: Redis's own version), or a
/// version as Redis writes its own, `MAJOR.MINOR.PATCH` of digits (clients
/// compare the parts as numbers: anything else could break their parsing).
pub(super) fn parse_reported_version(raw: Raw) -> Result<Option<String>, ConfigError> {
    let value = raw.value.trim();
    if value.eq_ignore_ascii_case("redis") {
        return Ok(None);
    }
    let parts: Vec<&str> = value.split('.').collect();
    let number = |part: &&str| {
        (1..=5).contains(&part.len()) && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    if parts.len() == 3 && parts.iter().all(number) {
        return Ok(Some(value.to_owned()));
    }
    Err(raw.error("redis (the backing Redis's own version), or a version MAJOR.MINOR.PATCH of digits, such as 7.4.0"))
}

pub(super) fn parse_prefixes(raw: Raw) -> Result<Vec<Vec<u8>>, ConfigError> {
    let value = raw.value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let prefixes: Vec<Vec<u8>> = value
        .split(',')
        .map(|p| p.trim().as_bytes().to_vec())
        .collect();
    if prefixes.iter().any(Vec::is_empty) {
        return Err(raw.error("comma-separated non-empty key prefixes"));
    }
    // Redis refuses `CLIENT TRACKING ... PREFIX` with prefixes of which one
    // begins another (a repeat included), so the link could never start.
    let overlap = prefixes.iter().enumerate().any(|(i, a)| {
        prefixes
            .iter()
            .enumerate()
            .any(|(j, b)| i != j && a.starts_with(b))
    });
    if overlap {
        return Err(raw.error(
            "comma-separated key prefixes, none beginning another (Redis refuses overlapping ones)",
        ));
    }
    Ok(prefixes)
}

pub(super) fn parse_resp_port(raw: Raw) -> Result<Option<u16>, ConfigError> {
    let value = raw.value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    raw.parse_in::<u16>(0, u16::MAX, "a port number 0..=65535, or off")
        .map(Some)
}

pub(super) fn parse_redis_address(raw: Raw) -> Result<Url, ConfigError> {
    const EXPECTED: &str =
        "host:port, or redis:// or rediss:// then [user:password@]host:port[/db]";
    let value = raw.value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("redis://{value}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| raw.error(EXPECTED))?;
    let db_ok = matches!(url.path(), "" | "/") || url.path()[1..].parse::<u32>().is_ok();
    let valid = matches!(url.scheme(), "redis" | "rediss")
        && url.host_str().is_some_and(|h| !h.is_empty())
        // Port 0 is no server's: connecting to it can only fail.
        && url.port().is_some_and(|port| port != 0)
        && db_ok
        && url.query().is_none()
        && url.fragment().is_none();
    if valid {
        Ok(url)
    } else {
        Err(raw.error(EXPECTED))
    }
}

pub(super) fn parse_mode(raw: Raw) -> Result<RedisMode, ConfigError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "standalone" => Ok(RedisMode::Standalone),
        "cluster" => Ok(RedisMode::Cluster),
        "sentinel" => Ok(RedisMode::Sentinel),
        _ => Err(raw.error("standalone, cluster or sentinel")),
    }
}

/// REDIS_ADDRESS: one address, or in cluster mode a comma-separated list of
/// seed nodes (no database number: a cluster has only db 0).
pub(super) fn parse_redis_addresses(raw: Raw, mode: RedisMode) -> Result<Vec<Url>, ConfigError> {
    let parts: Vec<&str> = raw.value.split(',').map(str::trim).collect();
    if mode == RedisMode::Standalone && parts.len() > 1 {
        return Err(raw.error("one address (REDIS_MODE=cluster or sentinel takes a list of nodes)"));
    }
    let mut nodes = Vec::with_capacity(parts.len());
    for part in parts {
        let one = Raw {
            name: raw.name,
            value: part.to_owned(),
        };
        let url = parse_redis_address(one).map_err(|mut err| {
            err.value = raw.value.clone();
            err
        })?;
        if mode != RedisMode::Standalone && !matches!(url.path(), "" | "/" | "/0") {
            return Err(raw.error(match mode {
                RedisMode::Sentinel => {
                    "sentinel addresses without a database number (a sentinel has no databases; the master's db 0 is used)"
                }
                _ => "cluster seed nodes without a database number (a cluster has db 0 only)",
            }));
        }
        nodes.push(url);
    }
    Ok(nodes)
}

/// The URL with its password, if any, replaced by `***`.
pub(super) fn masked(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Setting a password only fails for URLs that cannot have one, and
        // this one already does.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// TLS_CERT_FILE and TLS_KEY_FILE (or REDIS_TLS_CERT_FILE and
/// REDIS_TLS_KEY_FILE): both or neither. The files are read at start-up,
/// where a bad one stops the proxy naming its variable.
pub(super) fn parse_tls(cert: Raw, key: Raw) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert.value.trim(), key.value.trim()) {
        ("", "") => Ok(None),
        (_, "") => Err(key.error(&format!("a PEM key file, since {} is set", cert.name))),
        ("", _) => Err(cert.error(&format!(
            "a PEM certificate file, since {} is set",
            key.name
        ))),
        (c, k) => Ok(Some(TlsFiles {
            cert: PathBuf::from(c),
            key: PathBuf::from(k),
        })),
    }
}

/// REDIS_SENTINEL_MASTER (required in sentinel mode) and
/// REDIS_SENTINEL_PASSWORD.
pub(super) fn parse_sentinel(
    mode: RedisMode,
    master: Raw,
    password: Raw,
) -> Result<Option<SentinelSettings>, ConfigError> {
    if mode != RedisMode::Sentinel {
        return Ok(None);
    }
    let name = master.value.trim();
    if name.is_empty() {
        return Err(master.error("the master set's name, with REDIS_MODE=sentinel"));
    }
    Ok(Some(SentinelSettings {
        master: name.to_owned(),
        password: Some(password.value).filter(|p| !p.is_empty()).map(Secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_number_is_refused_in_the_words_of_the_mode() {
        let raw = |value: &str| Raw {
            name: "REDIS_ADDRESS",
            value: value.to_owned(),
        };
        let sentinel = parse_redis_addresses(raw("redis://h:1/2,h:2"), RedisMode::Sentinel)
            .expect_err("a database number");
        assert!(
            sentinel.expected.contains("sentinel addresses"),
            "{}",
            sentinel.expected
        );
        assert!(
            !sentinel.expected.contains("cluster"),
            "{}",
            sentinel.expected
        );
        let cluster = parse_redis_addresses(raw("redis://h:1/2,h:2"), RedisMode::Cluster)
            .expect_err("a database number");
        assert!(cluster.expected.contains("cluster seed nodes"));
    }
}
