//! What a test sees of a running proxy, wherever it runs (a child process
//! or this one): its addresses, and the requests that observe it.

use std::net::SocketAddr;

use super::eventually;
use super::http::{encode, request, Reply};

/// Every series of one /metrics scrape, with its labels, and its value.
pub struct Scrape(Vec<(String, f64)>);

impl Scrape {
    /// Every series, in the order the proxy wrote them.
    pub fn iter(&self) -> impl Iterator<Item = &(String, f64)> {
        self.0.iter()
    }

    /// The value of `series`; panics if the proxy does not export it. A
    /// name without labels whose family is labelled (hits and misses are
    /// counted per `protocol`) gives the sum over its labels.
    pub fn value(&self, series: &str) -> f64 {
        if let Some((_, value)) = self.0.iter().find(|(name, _)| name == series) {
            return *value;
        }
        let labelled = format!("{series}{{");
        let mut found = self
            .0
            .iter()
            .filter(|(name, _)| !series.contains('{') && name.starts_with(&labelled))
            .peekable();
        assert!(found.peek().is_some(), "{series} missing from /metrics");
        found.map(|(_, value)| value).sum()
    }
}

/// A running proxy's addresses and the observations every test makes
/// through them. [`super::Proxy`] (the binary) and [`super::InProcess`]
/// both dereference to it, so a helper taking `&Endpoints` serves either,
/// and a test moves from one to the other by changing its constructor.
pub struct Endpoints {
    /// The HTTP address.
    pub addr: SocketAddr,
    /// The RESP address, when the test turned it on with `RESP_PORT=auto`.
    pub resp: Option<SocketAddr>,
}

impl Endpoints {
    /// The invalidation link's state as `/readyz` reports it.
    pub fn link_state(&self) -> String {
        let ready = self.get("/readyz").json();
        ready["invalidation"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `/readyz` reports the invalidation link `state`.
    pub fn wait_for_link(&self, state: &str) {
        eventually(&format!("the invalidation link to be {state}"), || {
            (self.link_state() == state).then_some(())
        });
    }

    /// Waits until the link has applied at least `keys` announced keys in
    /// all: a write's announcement comes after its reply, and one that
    /// lands during the next read's fetch keeps that fill out of the cache
    /// (as it must), so a test that counts fetches waits for it first.
    #[allow(dead_code)] // Not every test binary counts fetches after a write.
    pub fn wait_for_invalidations(&self, keys: f64) {
        eventually("the link to apply the writes' announcements", || {
            (self.metric("redis_proxy_invalidations_total") >= keys).then_some(())
        });
    }

    /// Waits until the invalidation link has settled (up, or off), so reads
    /// are cached from the first.
    pub fn wait_for_settled_link(&self) {
        eventually("the invalidation link to settle", || {
            let state = self.link_state();
            (state == "up" || state == "off").then_some(())
        });
    }

    /// The RESP address; panics if the test did not ask for one.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp.expect("start the proxy with RESP_PORT=auto")
    }

    /// A `redis://` URL for the RESP front end.
    pub fn resp_url(&self) -> String {
        format!("redis://{}", self.resp_addr())
    }

    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[])
    }

    /// `GET /proxy?key=...` with the key percent-encoded.
    pub fn get_key(&self, key: impl AsRef<[u8]>) -> Reply {
        self.get(&format!("/proxy?key={}", encode(key.as_ref())))
    }

    /// One scrape of /metrics.
    pub fn scrape(&self) -> Scrape {
        Scrape(
            self.get("/metrics")
                .text()
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Reads of keys the proxy has done (hits and misses): unlike the HTTP
    /// request counts, scraping /metrics to read it does not add to it.
    pub fn reads(&self) -> f64 {
        let scrape = self.scrape();
        scrape.value("redis_proxy_cache_hits_total")
            + scrape.value("redis_proxy_cache_misses_total")
    }

    /// The value of one series of /metrics now, labels included as written
    /// (`redis_proxy_requests_total{protocol="resp",status="error"}`).
    pub fn metric(&self, series: &str) -> f64 {
        self.scrape().value(series)
    }
}
