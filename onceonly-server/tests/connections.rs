//! Connection limits over real sockets: silent, slowloris and idle connections are closed by
//! their timeouts, a body that never finishes gets a 408, and past `max_connections` new
//! connections wait while open ones keep being served.
//!
//! Timeouts are short (1 to 4 s); every wait for the server has a generous upper bound
//! ([`raw::PATIENCE`]), and "still open" checks only fail if the server closes early.

mod common;

use std::time::Duration;

use common::raw::{self, PATIENCE, closed_by_server, metric, still_open_after};
use common::{A, start_with};
use tokio::io::AsyncWriteExt;

const SECOND: Duration = Duration::from_secs(1);

/// Connections closed by the header timeout and by the idle timeout, from `/metrics`.
fn timeouts(metrics: &str) -> (u64, u64) {
    (
        metric(
            metrics,
            "onceonly_connection_timeouts_total{kind=\"header\"}",
        ),
        metric(metrics, "onceonly_connection_timeouts_total{kind=\"idle\"}"),
    )
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let s = start_with(|c| c.header_timeout(SECOND).idle_timeout(PATIENCE * 2)).await;
    let mut tcp = raw::connect(s.server.local_addr()).await;
    let sent = closed_by_server(&mut tcp).await;
    assert!(sent.is_empty(), "closed without an answer: {sent:?}");
    assert_eq!(timeouts(&s.metrics().await), (1, 0));
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_after_the_header_timeout() {
    let s = start_with(|c| c.header_timeout(SECOND).idle_timeout(PATIENCE * 2)).await;
    let tcp = raw::connect(s.server.local_addr()).await;
    let (mut reader, mut writer) = tcp.into_split();
    // One byte of a never-ending header every 250 ms: progress that must not keep it open.
    let drip = tokio::spawn(async move {
        writer.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
        loop {
            writer.write_all(b"x").await?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let sent = closed_by_server(&mut reader).await;
    drip.abort();
    assert!(sent.is_empty(), "closed without an answer: {sent:?}");
    assert_eq!(timeouts(&s.metrics().await), (1, 0));
}

#[tokio::test]
async fn a_kept_alive_connection_gets_the_idle_timeout_then_is_closed() {
    let header = SECOND;
    let idle = Duration::from_secs(5);
    let s = start_with(|c| c.header_timeout(header).idle_timeout(idle)).await;
    let mut tcp = raw::connect(s.server.local_addr()).await;
    assert_eq!(raw::get(&mut tcp, "/healthz").await.status, 200);
    // Idle for well past the header timeout: the idle timeout applies, so it stays open...
    assert!(
        still_open_after(&mut tcp, header * 5 / 2).await,
        "a kept-alive connection was closed before its idle timeout"
    );
    // ...and serves the next request, after which it idles out.
    assert_eq!(raw::get(&mut tcp, "/healthz").await.status, 200);
    let sent = closed_by_server(&mut tcp).await;
    assert!(sent.is_empty(), "closed without an answer: {sent:?}");
    assert_eq!(timeouts(&s.metrics().await), (0, 1));
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_with_a_json_detail() {
    let s = start_with(|c| c.body_timeout(SECOND)).await;
    let mut tcp = raw::connect(s.server.local_addr()).await;
    let head = format!(
        "POST /v1/check-lock HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {A}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"key\":"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    // A byte every 200 ms: steady progress that never completes 200 bytes within 1 s.
    let drip = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let answer = raw::read_answer(&mut reader).await;
    drip.abort();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.json()["detail"]["error"], "request_timeout");
    let m = s.metrics().await;
    assert_eq!(metric(&m, "onceonly_request_body_timeouts_total"), 1);
}

#[tokio::test]
async fn past_max_connections_new_ones_wait_while_open_ones_keep_being_served() {
    let s = start_with(|c| {
        c.max_connections(3)
            .header_timeout(Duration::from_secs(4))
            .idle_timeout(PATIENCE * 2)
    })
    .await;
    let addr = s.server.local_addr();
    // Slot 1: a kept-alive client. Slots 2 and 3: silent connections.
    let mut kept = raw::connect(addr).await;
    assert_eq!(raw::get(&mut kept, "/healthz").await.status, 200);
    let mut silent = [raw::connect(addr).await, raw::connect(addr).await];
    // Past the cap the kernel completes the handshake; the server does not accept yet.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut tcp = raw::connect(addr).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        waiting.push(tcp);
    }

    assert_eq!(
        raw::get(&mut kept, "/healthz").await.status,
        200,
        "an open connection is served at the cap"
    );
    assert!(
        still_open_after(&mut waiting[0], Duration::from_millis(300)).await,
        "a connection past the cap was answered while the cap was reached"
    );
    let m = raw::get(&mut kept, "/metrics").await;
    let m = String::from_utf8(m.body).unwrap();
    assert_eq!(metric(&m, "onceonly_connections_open"), 3);
    assert!(metric(&m, "onceonly_connection_limit_reached_total") >= 1);

    // The silent ones time out; the waiting ones are then accepted and answered.
    for tcp in &mut silent {
        closed_by_server(tcp).await;
    }
    for tcp in &mut waiting {
        assert_eq!(raw::read_answer(tcp).await.status, 200);
    }
    assert_eq!(raw::get(&mut kept, "/healthz").await.status, 200);
}
