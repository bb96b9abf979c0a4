//! Per-route token buckets (05 §8): continuous refill, start full, one token per request;
//! optionally one bucket per peer IP with least-recently-used eviction.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept per route with `per = "client_ip"`.
const MAX_CLIENT_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket { tokens: capacity, refilled: now }
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self, capacity: f64, per_second: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

/// The limiter of one route.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    per_client: bool,
    route: Mutex<Bucket>,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with full buckets.
    pub fn new(capacity: u32, per_second: f64, per_client: bool) -> RateLimiter {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            capacity,
            per_second,
            per_client,
            route: Mutex::new(Bucket::full(capacity, Instant::now())),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for a request from `peer`; `Err(wait)` when the bucket is empty.
    pub fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        if !self.per_client {
            let mut bucket = self.route.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            return bucket.take(self.capacity, self.per_second, now);
        }
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !clients.contains_key(&peer) && clients.len() >= MAX_CLIENT_BUCKETS {
            // The bucket refilled longest ago belongs to the least recently seen client.
            if let Some(oldest) = clients.iter().min_by_key(|(_, b)| b.refilled).map(|(ip, _)| *ip) {
                clients.remove(&oldest);
            }
        }
        let bucket = clients.entry(peer).or_insert_with(|| Bucket::full(self.capacity, now));
        bucket.take(self.capacity, self.per_second, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_reports_wait() {
        let limiter = RateLimiter::new(2, 1.0, false);
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        let wait = limiter.check(ip).expect_err("empty");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900), "{wait:?}");
    }

    #[test]
    fn client_buckets_are_separate() {
        let limiter = RateLimiter::new(1, 0.001, true);
        assert!(limiter.check(IpAddr::from([10, 0, 0, 1])).is_ok());
        assert!(limiter.check(IpAddr::from([10, 0, 0, 1])).is_err());
        assert!(limiter.check(IpAddr::from([10, 0, 0, 2])).is_ok());
    }
}
