//! Requests refused while their head is parsed, before any handler runs, over raw sockets.
//!
//! hyper answers an unparsable head itself, with a status and an empty body, then closes the
//! connection: it offers no hook to write a body there. These tests pin down exactly which
//! answers those are (the server README lists them). A head that parses but whose body is
//! broken reaches the server, which answers with a JSON `detail` as everywhere else.

mod common;

use common::raw::{self, RawAnswer, closed_by_server};
use common::{A, start};
use tokio::io::AsyncWriteExt;

/// A `POST /v1/check-lock` head with `extra` header lines, then `body`.
fn check_lock(extra: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /v1/check-lock HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {A}\r\n\
         Content-Type: application/json\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

/// hyper's own answer: `status`, no body, and the connection closed after it.
async fn assert_bare(addr: std::net::SocketAddr, request: &[u8], status: u16, what: &str) {
    let mut tcp = raw::connect(addr).await;
    // The server may stop reading and close before it has all of a large request.
    let _ = tcp.write_all(request).await;
    let answer: RawAnswer = raw::read_answer(&mut tcp).await;
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    assert!(answer.body.is_empty(), "{what}: {answer:?}");
    closed_by_server(&mut tcp).await;
}

#[tokio::test]
async fn unparsable_heads_get_hypers_bare_answers() {
    let s = start().await;
    let addr = s.server.local_addr();
    let body = r#"{"key":"k"}"#;
    let length = format!("Content-Length: {}\r\n", body.len());

    let control = check_lock(&format!("{length}X-Note: a\x01b\r\n"), body);
    assert_bare(addr, &control, 400, "a control byte in a header value").await;

    let conflicting = check_lock(&format!("{length}Content-Length: 99\r\n"), body);
    assert_bare(addr, &conflicting, 400, "two different Content-Length").await;

    let not_a_number = check_lock("Content-Length: 1x\r\n", body);
    assert_bare(
        addr,
        &not_a_number,
        400,
        "a Content-Length that is no number",
    )
    .await;

    let coding = check_lock("Transfer-Encoding: gzip\r\n", body);
    assert_bare(addr, &coding, 400, "a transfer coding other than chunked").await;

    let long_line = format!(
        "GET /healthz?pad={} HTTP/1.1\r\nHost: test\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_bare(addr, long_line.as_bytes(), 414, "a 70 KiB request line").await;

    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{many}\r\n");
    assert_bare(addr, many.as_bytes(), 431, "150 headers").await;

    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "b".repeat(512 * 1024)
    );
    assert_bare(addr, huge.as_bytes(), 431, "a 512 KiB header").await;

    assert_bare(
        addr,
        b"G@T /healthz HTTP/1.1\r\nHost: test\r\n\r\n",
        400,
        "a method that is not a token",
    )
    .await;

    // An HTTP/2 preface on this HTTP/1.1 server: closed without any answer.
    let mut tcp = raw::connect(addr).await;
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut tcp).await.is_empty());

    // The server is unharmed, and a head of 100 headers (hyper's limit) is served.
    let hundred: String = (0..99).map(|i| format!("X-H{i}: v\r\n")).collect();
    let hundred = format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{hundred}\r\n");
    let answer = raw::exchange(addr, hundred.as_bytes()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn a_broken_chunked_body_reaches_the_server_and_gets_a_json_detail() {
    let s = start().await;
    let addr = s.server.local_addr();
    let request = check_lock(
        "Transfer-Encoding: chunked\r\n",
        "5\r\n{\"key\r\nzz\r\n\"k\"}\r\n0\r\n\r\n",
    );
    let answer = raw::exchange(addr, &request).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["detail"]["error"], "bad_request");

    // A body that ends before its Content-Length: the client half-closes, the server answers.
    let mut tcp = raw::connect(addr).await;
    tcp.write_all(&check_lock("Content-Length: 50\r\n", "{\"key\":"))
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let answer = raw::read_answer(&mut tcp).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["detail"]["error"], "bad_request");
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_from_the_head() {
    let s = start().await;
    // Only the head is sent: the answer must not wait for the 8 MiB it announces.
    let head = check_lock(&format!("Content-Length: {}\r\n", 8 << 20), "");
    let answer = raw::exchange(s.server.local_addr(), &head).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.json()["detail"]["error"], "payload_too_large");
}

/// A body a little over the limit, sent in full, is read and dropped before the 413: the
/// client gets the JSON answer rather than a reset while still sending, and the connection
/// stays usable.
#[tokio::test]
async fn a_body_just_over_the_limit_is_read_then_refused_and_the_connection_kept() {
    let s = start().await;
    let body = format!(
        r#"{{"key":"k","metadata":{{"blob":"{}"}}}}"#,
        "x".repeat(onceonly_server::DEFAULT_BODY_LIMIT)
    );
    let request = check_lock(&format!("Content-Length: {}\r\n", body.len()), &body);
    let mut tcp = raw::connect(s.server.local_addr()).await;
    tcp.write_all(&request)
        .await
        .expect("the whole body is taken");
    let answer = raw::read_answer(&mut tcp).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.json()["detail"]["error"], "payload_too_large");
    let next = raw::get(&mut tcp, "/healthz").await;
    assert_eq!(
        next.status, 200,
        "the same connection serves the next request"
    );

    // The same on `complete`, whose own limit is over 4 MiB: the whole body is read.
    let limit = onceonly_server::complete_body_limit(onceonly_server::DEFAULT_BODY_LIMIT, 1 << 20);
    let body = format!(
        r#"{{"key":"k","lease_id":"l","result":{{"blob":"{}"}}}}"#,
        "x".repeat(limit)
    );
    let head = format!(
        "POST /v1/ai/complete HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {A}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body.as_bytes())
        .await
        .expect("the whole body is taken");
    let answer = raw::read_answer(&mut tcp).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(raw::get(&mut tcp, "/healthz").await.status, 200);
}
