//! The types of single settings: a secret (PROXY_PASSWORD, the Sentinel
//! password), and the choices INVALIDATION, RESP_FORWARD and REDIS_MODE
//! take, each with the name it has in the variable.

use std::fmt;

/// A secret from the configuration: shown as `***` by `Debug`, so a
/// logged configuration never carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    /// The secret itself, for comparing what a client gives with it.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the cache learns of writes in Redis (`INVALIDATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// Tracking if Redis accepts it; TTL only if Redis refuses it.
    Auto,
    /// Always tracking: while the link is down, the cache is bypassed.
    Tracking,
    /// TTL only, as before tracking existed.
    Off,
}

impl Invalidation {
    /// The name the variable takes, for logs and `INFO`.
    pub fn name(self) -> &'static str {
        match self {
            Invalidation::Auto => "auto",
            Invalidation::Tracking => "tracking",
            Invalidation::Off => "off",
        }
    }
}

/// What the RESP port passes on to Redis (`RESP_FORWARD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// Every command the proxy does not answer itself.
    All,
    /// Only commands Redis flags `readonly`.
    Reads,
    /// Nothing: the proxy's own commands and cached reads only.
    Off,
}

impl Forwarding {
    /// The name the variable takes, for logs and `INFO`.
    pub fn name(self) -> &'static str {
        match self {
            Forwarding::All => "all",
            Forwarding::Reads => "reads",
            Forwarding::Off => "off",
        }
    }
}

/// What kind of Redis deployment is behind the proxy (`REDIS_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    /// One Redis (or one master).
    Standalone,
    /// A Redis Cluster: reads go to the master of each key's slot.
    Cluster,
    /// A master and replicas watched by Sentinel: reads go to the master
    /// the sentinels name.
    Sentinel,
}

impl RedisMode {
    /// The name the variable takes, for logs and `INFO`.
    pub fn name(self) -> &'static str {
        match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
            RedisMode::Sentinel => "sentinel",
        }
    }
}
