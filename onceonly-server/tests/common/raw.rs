//! Raw HTTP/1.1 over a TCP socket, for what a well-behaved client cannot send: silent and
//! slow connections, malformed heads, bodies that never finish.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any test waits for the server to answer or to close: generous, so a loaded machine
/// does not fail a test; a server that never closes still does.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An answer read off a raw socket.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body (panics, showing the body, when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} with a body that is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Sends `bytes` on a new connection and reads one answer.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> RawAnswer {
    let mut tcp = connect(addr).await;
    tcp.write_all(bytes).await.expect("send");
    read_answer(&mut tcp).await
}

/// `GET path` on `tcp`, kept alive.
pub async fn get(tcp: &mut TcpStream, path: &str) -> RawAnswer {
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("send");
    read_answer(tcp).await
}

/// Reads one answer: the head, then a `Content-Length` body (or up to the close).
pub async fn read_answer<R: AsyncRead + Unpin>(tcp: &mut R) -> RawAnswer {
    tokio::time::timeout(PATIENCE, read_answer_now(tcp))
        .await
        .expect("an answer in time")
}

async fn read_answer_now<R: AsyncRead + Unpin>(tcp: &mut R) -> RawAnswer {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.expect("read the head");
        assert!(
            n > 0,
            "closed before a complete answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>().expect("a length"));
    match length {
        Some(len) => {
            while body.len() < len {
                let mut chunk = [0u8; 4096];
                let n = tcp.read(&mut chunk).await.expect("read the body");
                assert!(n > 0, "closed in the middle of the body");
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            tcp.read_to_end(&mut body).await.expect("read to the close");
        }
    }
    RawAnswer {
        status,
        headers,
        body,
    }
}

/// Waits for the server to close `tcp`; returns what it sent before closing. Panics when it
/// is still open after [`PATIENCE`].
pub async fn closed_by_server<R: AsyncRead + Unpin>(tcp: &mut R) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server closes the connection");
    got
}

/// Whether `tcp` is still open and silent after `wait`: no byte, no close.
pub async fn still_open_after<R: AsyncRead + Unpin>(tcp: &mut R, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(wait, tcp.read(&mut byte))
        .await
        .is_err()
}

/// The value of a Prometheus sample line `name` (with its labels) in `text`.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}
