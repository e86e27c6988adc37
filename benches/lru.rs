//! The hand-written LRU against the `lru` crate on the same skewed key
//! stream: a Zipf(1.0) draw over four times as many keys as the capacity,
//! used read-through (get; on a miss, insert, evicting when full), at 10k and
//! 1M capacity. Plus pure hits and pure inserts-with-eviction.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use redis_proxy::cache::{Lookup, Lru, Time};

/// Operations per measured iteration.
const STREAM: usize = 100_000;

fn key(n: u64) -> [u8; 16] {
    // Keys shaped like short Redis keys: a prefix and a number.
    let mut key = *b"user:0000000000\0";
    key[5..13].copy_from_slice(&n.to_be_bytes());
    key
}

fn zipf_stream(keys: u64, len: usize) -> Vec<[u8; 16]> {
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(keys, 1.0).expect("valid zipf");
    (0..len)
        .map(|_| key(zipf.sample(&mut rng) as u64))
        .collect()
}

fn ours(capacity: usize) -> Lru<u64> {
    Lru::new(
        NonZeroUsize::new(capacity).expect("positive"),
        Duration::from_secs(3600),
    )
}

fn theirs(capacity: usize) -> lru::LruCache<Box<[u8]>, u64> {
    lru::LruCache::new(NonZeroUsize::new(capacity).expect("positive"))
}

fn read_through(c: &mut Criterion) {
    for capacity in [10_000usize, 1_000_000] {
        let stream = zipf_stream(capacity as u64 * 4, STREAM);
        let mut group = c.benchmark_group(format!("read_through_{capacity}"));
        group.throughput(Throughput::Elements(STREAM as u64));
        if capacity >= 1_000_000 {
            group.sample_size(20);
        }

        let now = Time::ZERO;
        let mut cache = ours(capacity);
        for n in 0..capacity as u64 {
            cache.insert(&key(n * 4 + 1), n, now);
        }
        group.bench_function(BenchmarkId::new("redis_proxy::Lru", capacity), |b| {
            b.iter(|| {
                for k in &stream {
                    if let Lookup::Miss = cache.get(k, now) {
                        black_box(cache.insert(k, 1, now));
                    }
                }
            })
        });

        let mut cache = theirs(capacity);
        for n in 0..capacity as u64 {
            cache.put(key(n * 4 + 1).into(), n);
        }
        group.bench_function(BenchmarkId::new("lru::LruCache", capacity), |b| {
            b.iter(|| {
                for k in &stream {
                    if cache.get(&k[..]).is_none() {
                        black_box(cache.put(Box::from(&k[..]), 1));
                    }
                }
            })
        });
        group.finish();
    }
}

fn hits_and_evictions(c: &mut Criterion) {
    let capacity = 10_000usize;
    let now = Time::ZERO;
    let hot: Vec<[u8; 16]> = zipf_stream(capacity as u64, STREAM);
    let fresh: Vec<[u8; 16]> = (0..STREAM as u64).map(|n| key(n + 1_000_000_000)).collect();

    let mut group = c.benchmark_group("hits_10000");
    group.throughput(Throughput::Elements(STREAM as u64));
    let mut cache = ours(capacity);
    let mut other = theirs(capacity);
    for n in 1..=capacity as u64 {
        cache.insert(&key(n), n, now);
        other.put(key(n).into(), n);
    }
    group.bench_function("redis_proxy::Lru", |b| {
        b.iter(|| {
            for k in &hot {
                black_box(cache.get(k, now));
            }
        })
    });
    group.bench_function("lru::LruCache", |b| {
        b.iter(|| {
            for k in &hot {
                black_box(other.get(&k[..]));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("insert_evict_10000");
    group.throughput(Throughput::Elements(STREAM as u64));
    group.bench_function("redis_proxy::Lru", |b| {
        b.iter(|| {
            for k in &fresh {
                black_box(cache.insert(k, 1, now));
            }
        })
    });
    group.bench_function("lru::LruCache", |b| {
        b.iter(|| {
            for k in &fresh {
                black_box(other.push(Box::from(&k[..]), 1));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, read_through, hits_and_evictions);
criterion_main!(benches);
