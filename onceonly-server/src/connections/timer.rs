//! hyper's HTTP/1 request-head timer, with one duration for a new connection and another for
//! a kept-alive one.
//!
//! hyper arms its `header_read_timeout` each time a connection starts waiting for a request
//! head: when the connection opens, and again as soon as it has answered a request and is kept
//! alive. It closes the connection when the head is not complete by then. That is the header
//! timeout for the first request and the idle timeout for the next ones, but hyper takes a
//! single duration. This timer, one per connection, is given to hyper with the header timeout
//! and moves each later deadline to the idle timeout instead. The timing itself stays hyper's
//! and tokio's.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;

use super::stats::Timeout;

/// The timer of one connection.
#[derive(Debug, Clone)]
pub(crate) struct HeadTimer {
    header: Duration,
    idle: Duration,
    /// How many times hyper armed the timer: each arm is a wait for a request head.
    arms: Arc<AtomicU32>,
}

impl HeadTimer {
    /// A timer for a new connection; hyper must be configured with `header` as its
    /// `header_read_timeout`.
    pub(crate) fn new(header: Duration, idle: Duration) -> Self {
        HeadTimer {
            header,
            idle,
            arms: Arc::default(),
        }
    }

    /// Which wait a timeout of this connection ended: the first request's head, or the idle
    /// wait of a kept-alive connection.
    pub(crate) fn last_wait(&self) -> Timeout {
        if self.arms.load(Ordering::Relaxed) > 1 {
            Timeout::Idle
        } else {
            Timeout::Header
        }
    }

    /// hyper asks for `now + header`; after the first arm, answer `now + idle` instead.
    fn deadline(&self, asked: Instant) -> Instant {
        if self.arms.fetch_add(1, Ordering::Relaxed) == 0 {
            return asked;
        }
        asked
            .checked_sub(self.header)
            .and_then(|armed_at| armed_at.checked_add(self.idle))
            .unwrap_or(asked)
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep_until(self.deadline(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        TokioTimer::new().reset(sleep, self.deadline(new_deadline));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_wait_gets_the_header_timeout_the_next_ones_the_idle_timeout() {
        let timer = HeadTimer::new(Duration::from_secs(2), Duration::from_secs(7));
        let now = Instant::now();
        let asked = now + Duration::from_secs(2);
        assert_eq!(timer.deadline(asked), asked);
        assert_eq!(timer.last_wait(), Timeout::Header);
        assert_eq!(timer.deadline(asked), now + Duration::from_secs(7));
        assert_eq!(timer.last_wait(), Timeout::Idle);
        assert_eq!(timer.deadline(asked), now + Duration::from_secs(7));
    }
}
