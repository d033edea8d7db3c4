//! GCRA in Redis, so that every node charges the same buckets: one Lua script (run with EVALSHA,
//! loaded on first use) reads the key's theoretical arrival time, decides, and writes it back
//! with an expiry, atomically, using the Redis server's clock so that node clocks never matter.
//! The caller falls back to its in-process limiter when Redis fails or is slow.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Outcome, Rate};

/// KEYS[1]: the bucket. ARGV[1]: emission interval (µs). ARGV[2]: burst.
/// Returns {allowed (0|1), remaining, retry_after_us, reset_us}.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

/// How long a failed connection attempt keeps the limiter on its local fallback.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub(crate) struct SharedLimiter {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    script: redis::Script,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    last_failure: Mutex<Option<Instant>>,
}

impl SharedLimiter {
    /// Validates the URL; connects on first use.
    pub(crate) fn new(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("rate_limit.redis_url is not a valid Redis URL: {e}"))?;
        Ok(SharedLimiter {
            client,
            prefix: prefix.to_owned(),
            timeout,
            script: redis::Script::new(GCRA),
            connection: tokio::sync::OnceCell::new(),
            last_failure: Mutex::new(None),
        })
    }

    async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let recently_failed = self
            .last_failure
            .lock()
            .ok()
            .and_then(|slot| *slot)
            .is_some_and(|at| at.elapsed() < RECONNECT_AFTER);
        anyhow::ensure!(!recently_failed, "redis connection failed recently");
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let result = self
            .connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await;
        match result {
            Ok(connection) => Ok(connection.clone()),
            Err(e) => {
                if let Ok(mut slot) = self.last_failure.lock() {
                    *slot = Some(Instant::now());
                }
                Err(anyhow::anyhow!("redis connect: {e}"))
            }
        }
    }

    /// Charges one request to `limit`/`key` in Redis.
    pub(crate) async fn check(
        &self,
        limit: &str,
        rate: Rate,
        key: &str,
    ) -> anyhow::Result<Outcome> {
        let mut connection = self.connection().await?;
        let interval_us = u64::try_from(rate.emission_interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let burst = rate.burst.max(1);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}:{limit}:{key}", self.prefix))
            .arg(interval_us)
            .arg(burst);
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| anyhow::anyhow!("redis timed out"))??;
        let [allowed, remaining, retry_after_us, reset_us] = reply[..] else {
            anyhow::bail!("unexpected reply from the rate-limit script");
        };
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Outcome {
            allowed: allowed == 1,
            limit: burst,
            remaining: u32::try_from(remaining).unwrap_or(0).min(burst),
            retry_after: micros(retry_after_us),
            reset: micros(reset_us),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_url() -> String {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn unique_prefix() -> String {
        use std::hash::BuildHasher as _;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!(
            "nova-unit-{:016x}",
            std::hash::RandomState::new().hash_one(nanos)
        )
    }

    /// The Lua script has the same semantics as the in-process limiter: the burst at once, the
    /// remaining count going down to 0, then a refusal for about one interval; keys independent
    /// and expiring once their bucket is full again. Needs Redis (CI starts it).
    #[tokio::test]
    async fn the_script_admits_the_burst_then_refuses_for_one_interval() {
        let prefix = unique_prefix();
        let limiter =
            SharedLimiter::new(&redis_url(), &prefix, Duration::from_secs(2)).expect("valid url");
        let rate = Rate::per_minute(6, 3);
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let outcome = limiter
                .check("t", rate, "k")
                .await
                .expect("redis reachable");
            assert!(outcome.allowed, "{outcome:?}");
            assert_eq!(outcome.limit, 3);
            remaining.push(outcome.remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check("t", rate, "k").await.expect("redis");
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::from_secs(9)
                && refused.retry_after <= Duration::from_secs(10),
            "{refused:?}"
        );
        assert!(refused.reset >= refused.retry_after, "{refused:?}");
        assert!(
            limiter
                .check("t", rate, "other")
                .await
                .expect("redis")
                .allowed
        );

        let client = redis::Client::open(redis_url()).expect("url");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}:t:k"))
            .query_async(&mut connection)
            .await
            .expect("pttl");
        assert!(
            ttl > 20_000 && ttl <= 30_001,
            "expires when the bucket is full: {ttl} ms"
        );
        let _: () = redis::cmd("DEL")
            .arg(format!("{prefix}:t:k"))
            .arg(format!("{prefix}:t:other"))
            .query_async(&mut connection)
            .await
            .expect("del");
    }

    #[test]
    fn an_invalid_url_is_refused_at_start_up() {
        assert!(SharedLimiter::new("not a url", "p", Duration::from_millis(50)).is_err());
    }
}
