//! Change notifications across processes: every record write publishes its key on the
//! store's channel, and one background connection per store listens and wakes local waiters.
//!
//! A message can be lost while that connection is down. After it is back (and subscribed
//! again) every waited-on key is notified: a spurious wake only makes a waiter read its key
//! again, so a lost message costs one reconnect delay, never a hang. A connection that stops
//! answering pings counts as lost, so a silent network failure is noticed too.
//!
//! The listener runs on the store's I/O thread (see `io`), not as a task of the runtime that
//! opened the store: a store outlives runtimes, and a task would end with the first of them,
//! silently, leaving waiters to learn of other replicas' writes only at their deadlines.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{PubSubSink, PubSubStream};
use ::redis::{Client, RedisError, RedisResult};
use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::store::Notifier;

/// How often an idle connection is checked, and how long a check may take.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds of the delay between two reconnection attempts.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The background listener; dropping it stops it.
#[derive(Debug)]
pub(super) struct Listener {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the thread is gone already.
            let _ = stop.send(());
        }
    }
}

impl Listener {
    /// Subscribes to `channel` (an error here is the caller's: the store cannot start), then
    /// listens on `io` for as long as the listener lives.
    pub(super) async fn start(
        io: &Handle,
        client: Client,
        channel: String,
        notifier: Arc<Notifier>,
        connect_timeout: Duration,
    ) -> RedisResult<Listener> {
        let (subscribed, first) = oneshot::channel::<RedisResult<()>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let listen_forever = async move {
            let mut conn = match subscribe(&client, &channel, connect_timeout).await {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = subscribed.send(Err(e));
                    return;
                }
            };
            let _ = subscribed.send(Ok(()));
            let forever = async {
                loop {
                    listen(conn, &notifier).await;
                    tracing::warn!(%channel, "redis pub/sub connection lost; reconnecting");
                    conn = resubscribe(&client, &channel, connect_timeout).await;
                    tracing::info!(%channel, "redis pub/sub connection back");
                    notifier.notify_all();
                }
            };
            tokio::select! {
                _ = stopped => {}
                () = forever => {}
            }
        };
        io.spawn(listen_forever);
        match first.await {
            Ok(answer) => answer?,
            Err(_) => return Err(std::io::Error::other("the Redis I/O thread ended").into()),
        }
        Ok(Listener { stop: Some(stop) })
    }
}

async fn subscribe(
    client: &Client,
    channel: &str,
    connect_timeout: Duration,
) -> RedisResult<(PubSubSink, PubSubStream)> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub.split())
    };
    tokio::time::timeout(connect_timeout, connect)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// Tries until subscribed again, backing off up to [`RETRY_MAX`].
async fn resubscribe(
    client: &Client,
    channel: &str,
    connect_timeout: Duration,
) -> (PubSubSink, PubSubStream) {
    let mut delay = RETRY_MIN;
    loop {
        tokio::time::sleep(delay).await;
        match subscribe(client, channel, connect_timeout).await {
            Ok(conn) => return conn,
            Err(e) => tracing::debug!(error = %e, "redis pub/sub reconnection failed"),
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

/// Forwards messages to the notifier until the connection is lost.
async fn listen((mut sink, mut stream): (PubSubSink, PubSubStream), notifier: &Notifier) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => match std::str::from_utf8(msg.get_payload_bytes()) {
                    Ok(key) => notifier.notify(key),
                    Err(_) => tracing::debug!("ignored a non-UTF-8 change notification"),
                },
                None => return,
            },
            _ = ping.tick() => {
                let pong = tokio::time::timeout(PING_TIMEOUT, sink.ping::<::redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}

fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}
