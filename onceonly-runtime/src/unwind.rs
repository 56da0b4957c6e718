//! Running user code that may panic (a worker's handler, a registered tool function) so that
//! a panic becomes a failure the engine records, not a task that dies holding a lease.

use std::future::Future;
use std::task::Poll;

/// Polls `fut` to its end, or to a panic, whose message is then the `Err`. After a panic the
/// future is never polled again.
pub(crate) async fn unwinding<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into()))),
        }
    })
    .await
}
