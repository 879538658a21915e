//! The one retry policy (after go-containerregistry's): a whole operation is tried again on 408, 429, 5xx,
//! dropped connections and timeouts, with exponential backoff and jitter, honouring `Retry-After`, a few times.
//! It wraps public operations only, so retries never nest; operations it wraps must be replayable as a whole
//! (an upload restarts from a new POST and reopens its file).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::{RegistryClient, RegistryError};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; doubled each time.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` we honour; a registry asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): `base * 2^(retry-1)`, capped, then scaled by a random
    /// factor in [0.5, 1) so that parallel transfers do not come back in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        exp.min(self.max_delay).mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }

    /// The wait before retrying after `err`: what the registry asked for, else the backoff.
    pub fn delay_for(&self, retry: u32, err: &RegistryError) -> Duration {
        match err.retry_after() {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl RegistryClient {
    /// Counts a retry made outside [`RegistryClient::retrying`] (the push pipeline's manifest repair).
    pub(crate) fn count_retry(&self) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `op` under the policy. `what` names the operation in the warning each retry logs.
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let policy = &self.inner.options.retry;
        let attempts = policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_temporary() && attempt < attempts => {
                    let delay = policy.delay_for(attempt, &e);
                    self.count_retry();
                    self.progress().warning(&format!(
                        "{what} failed ({e}); trying again in {:.1} s ({}/{attempts})",
                        delay.as_secs_f64(),
                        attempt + 1
                    ));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 2015-10-21T07:27:50Z
        let table: &[(&str, Option<Duration>)] = &[
            ("1", Some(Duration::from_secs(1))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(Duration::from_secs(10))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_retry_after(input, now), *want, "input: {input:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(100), "{d1:?}");
            let d2 = p.backoff(2);
            assert!(d2 >= Duration::from_millis(100) && d2 < Duration::from_millis(200), "{d2:?}");
            let d9 = p.backoff(9);
            assert!(d9 >= Duration::from_millis(150) && d9 < Duration::from_millis(300), "{d9:?}");
        }
        let asked = RegistryError::Registry {
            registry: "r".into(),
            status: 429,
            request: "GET u".into(),
            code: String::new(),
            message: String::new(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(p.delay_for(1, &asked), Duration::from_secs(5), "capped at max_retry_after");
    }
}
