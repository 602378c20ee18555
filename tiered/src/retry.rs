//! Retrying transient failures within [`RetryBounds`]: [`with_retry`] for
//! single requests, [`PartRetry`] for the parts of a multipart upload (which
//! only object_store can repeat, since a part's number is assigned when it
//! is first sent).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use object_store::client::HttpErrorKind;
use object_store::retry::{RetryContext, RetryFailure, RetryPolicy};

use crate::config::RetryBounds;
use crate::error::Result;
use crate::stats::StoreStats;

/// The wait before attempt `attempt + 1` (`attempt` ≥ 1): the doubled
/// backoff, capped, scaled by a random factor in [0.5, 1].
pub(crate) fn backoff(bounds: &RetryBounds, attempt: u32) -> Duration {
    let doubled = bounds.initial_backoff_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(32));
    let capped = doubled.min(bounds.max_backoff_ms.max(bounds.initial_backoff_ms));
    let jitter = 0.5 + rand::random::<f64>() * 0.5;
    Duration::from_millis((capped as f64 * jitter) as u64)
}

/// Runs `op` until it succeeds, fails for good, or has failed transiently
/// `max_attempts` times (then [`Error::Unavailable`]).
pub(crate) async fn with_retry<T, F, Fut>(bounds: &RetryBounds, stats: &StoreStats, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let max_attempts = bounds.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < max_attempts => {
                let wait = backoff(bounds, attempt);
                tracing::debug!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "object store request failed, retrying");
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e.exhausted(attempt)),
        }
    }
}

/// Our bounds as object_store's per-part retry policy.
#[derive(Debug)]
pub(crate) struct PartRetry {
    pub bounds: RetryBounds,
    pub stats: Arc<StoreStats>,
}

impl PartRetry {
    fn should_retry(&self, context: &RetryContext) -> bool {
        let transient = match context.failure {
            RetryFailure::Status(status) => status.is_server_error() || matches!(status.as_u16(), 408 | 429),
            // A part carries its number, so resending one that may have
            // arrived (timeout, interruption) overwrites it with itself.
            RetryFailure::Transport(kind) => !matches!(kind, HttpErrorKind::Decode),
            _ => false,
        };
        transient && context.attempt < self.bounds.max_attempts.max(1) as usize
    }
}

impl RetryPolicy for PartRetry {
    // `#[async_trait]` spelled out, to keep that macro out of our dependencies.
    fn retry<'life0, 'async_trait>(&'life0 self, context: RetryContext) -> Pin<Box<dyn Future<Output = bool> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if !self.should_retry(&context) {
                return false;
            }
            let attempt = u32::try_from(context.attempt).unwrap_or(u32::MAX);
            tracing::debug!(failure = ?context.failure, attempt, "multipart part failed, retrying");
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(&self.bounds, attempt)).await;
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let b = RetryBounds { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1000 };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000), (u32::MAX, 1000)] {
            for _ in 0..20 {
                let w = backoff(&b, attempt).as_millis() as u64;
                assert!(w >= full / 2 && w <= full, "attempt {attempt}: {w}");
            }
        }
    }

    #[tokio::test]
    async fn only_transient_failures_are_retried_within_the_bound() {
        let bounds = RetryBounds { max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 2 };
        let stats = StoreStats::default();
        let generic = || object_store::Error::Generic { store: "test", source: "connection refused".into() };

        let mut calls = 0;
        let r: Result<()> = with_retry(&bounds, &stats, || {
            calls += 1;
            let e = Error::store("put", "k", generic());
            async move { Err(e) }
        })
        .await;
        assert!(matches!(r, Err(Error::Unavailable { attempts: 3, .. })), "{r:?}");
        assert_eq!((calls, stats.retries.load(Ordering::Relaxed)), (3, 2));

        let mut calls = 0;
        let r: Result<()> = with_retry(&bounds, &stats, || {
            calls += 1;
            let e = Error::store("get", "k", object_store::Error::NotFound { path: "k".into(), source: "404".into() });
            async move { Err(e) }
        })
        .await;
        assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
        assert_eq!(calls, 1, "not found is an answer, not a failure");

        let mut calls = 0;
        let r = with_retry(&bounds, &stats, || {
            calls += 1;
            let result = if calls < 3 { Err(Error::store("put", "k", generic())) } else { Ok(calls) };
            async move { result }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }
}
