//! The standard process series (`process_*`), read from /proc at scrape time
//! under the names and meanings the Prometheus client libraries give them
//! (client_golang's process collector, client_python's `ProcessCollector`),
//! so the usual dashboards and alerts work on the proxy unchanged.
//!
//! Nothing here runs on the request path: a scrape reads a few small files.
//! Where /proc is missing (not Linux), the series are left out rather than
//! reported as zero.

use std::fmt::Write as _;

use super::render::describe;

/// Clock ticks per second in /proc/PID/stat times. Linux reports these in
/// USER_HZ, which is 100 on every architecture it supports for userspace
/// (client_golang's procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// What one scrape reads about the process.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessFigures {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Descriptors open now.
    pub open_fds: u64,
    /// The soft limit on open descriptors (None: unlimited).
    pub max_fds: Option<u64>,
    /// The soft limit on the address space (None: unlimited).
    pub max_virtual_bytes: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessFigures {
    /// The figures of this process now, if /proc can be read.
    pub fn read() -> Option<ProcessFigures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time(&text));
        let stat = Stat::parse(&stat)?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
        Some(ProcessFigures {
            cpu_seconds: (stat.utime + stat.stime) as f64 / USER_HZ,
            virtual_bytes: stat.vsize,
            resident_bytes: resident_bytes_in(&status).unwrap_or(0),
            open_fds,
            max_fds: soft_limit(&limits, "Max open files"),
            max_virtual_bytes: soft_limit(&limits, "Max address space"),
            start_time_seconds: boot.map_or(0.0, |boot| boot + stat.starttime as f64 / USER_HZ),
        })
    }

    /// The `process_*` families, in the exposition format.
    pub fn render(&self, out: &mut String) {
        let series: [(&str, &str, &str, f64); 5] = [
            (
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                "counter",
                self.cpu_seconds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                "gauge",
                self.virtual_bytes as f64,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "gauge",
                self.resident_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                "gauge",
                self.open_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                "gauge",
                self.start_time_seconds,
            ),
        ];
        for (name, help, kind, value) in series {
            describe(out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        // Unlimited is written as client_golang writes it: -1 is not a
        // limit, so the series is the largest value a limit can have.
        let limits = [
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                self.max_fds,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                self.max_virtual_bytes,
            ),
        ];
        for (name, help, limit) in limits {
            describe(out, name, help, "gauge");
            let value = limit.map_or(u64::MAX as f64, |n| n as f64);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// `redis_proxy_memory_limit_bytes`: the memory limit of the proxy's
/// container (its cgroup, v2 or v1, as the container sees it), so an alert
/// can compare the resident memory with it. No limit is written as the
/// largest value, as `process_max_fds` writes an unlimited one, so the
/// series is always there and the ratio stays near zero.
pub fn render_memory_limit(out: &mut String) {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let limit = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|text| text.trim().parse::<u64>().ok())
        // cgroup v1 writes "no limit" as a number near 2^63.
        .filter(|&bytes| bytes < 1 << 62);
    let name = "redis_proxy_memory_limit_bytes";
    describe(
        out,
        name,
        "The memory limit of the proxy's container (cgroup) in bytes; the largest value when there is none.",
        "gauge",
    );
    let value = limit.map_or(u64::MAX as f64, |bytes| bytes as f64);
    let _ = writeln!(out, "{name} {value}");
}

/// `redis_proxy_build_info`: the version as a label on a constant 1, the
/// usual way to put a version on a dashboard or in an alert.
pub fn render_build_info(out: &mut String) {
    let name = "redis_proxy_build_info";
    describe(
        out,
        name,
        "The proxy's version, as a label; always 1.",
        "gauge",
    );
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(out, "{name}{{version=\"{version}\"}} 1");
}

/// The resident set of this process, in bytes (0 where /proc is missing):
/// what RESP `INFO` reports as `used_memory`.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| resident_bytes_in(&status))
        .unwrap_or(0)
}

/// `VmRSS` of a /proc/PID/status text, in bytes.
fn resident_bytes_in(status: &str) -> Option<u64> {
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The fields of /proc/PID/stat the process series need.
#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
}

impl Stat {
    /// Parses /proc/PID/stat. The command name (field 2) is in parentheses
    /// and may hold spaces and parentheses itself, so fields are counted
    /// from the last `)`.
    fn parse(text: &str) -> Option<Stat> {
        let (_, rest) = text.rsplit_once(')')?;
        // `rest` starts at field 3 (state): field N is at index N - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
            vsize: field(23)?,
        })
    }
}

/// The boot time (`btime` in /proc/stat), in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()
}

/// The soft limit on one line of /proc/PID/limits (None: unlimited or
/// not found).
fn soft_limit(limits: &str, name: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 987654 321 18446744073709551615";
        assert_eq!(
            Stat::parse(text),
            Some(Stat {
                utime: 250,
                stime: 50,
                starttime: 12345,
                vsize: 987654
            })
        );
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn limits_read_the_soft_column() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 4096                 files\n\
                      Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024));
        assert_eq!(soft_limit(limits, "Max address space"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let figures = ProcessFigures::read().expect("/proc is there on Linux");
        assert!(figures.resident_bytes > 0 && figures.open_fds > 0);
        assert!(figures.start_time_seconds > 1.0e9);
        let mut out = String::new();
        figures.render(&mut out);
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
