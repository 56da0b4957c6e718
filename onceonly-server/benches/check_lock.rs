//! Load test: `POST /v1/check-lock` against a bare axum POST route, and the same server over
//! each store (memory, SQLite, Redis) against the server over memory: same load generator, same
//! process, same run.
//!
//! The load generator keeps a fixed number of HTTP/1.1 keep-alive connections, each sending
//! its next request as soon as the previous answer is read, for a fixed time. Rounds
//! alternate between the targets so drift (thermal, other processes) hits both alike; the
//! best round of each target is reported with the ratio.
//!
//! ```text
//! cargo bench -p onceonly-server --bench check_lock -- [--seconds 5] [--connections 32] [--rounds 3]
//! ```
//!
//! Targets:
//! - `bare`: an axum `POST` route that reads the body and answers a small JSON object;
//! - `check-lock fresh`: every request locks a new key (first delivery of a webhook);
//! - `check-lock duplicate`: every request hits a key that is already locked (redelivery);
//! - `sqlite fresh`, `redis fresh`: first deliveries through a server over a SQLite file (WAL,
//!   `synchronous = FULL`) and over a private `redis-server` (skipped when it is not installed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use axum::serve::ListenerExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use onceonly_server::{ApiKey, Server, ServerConfig};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "once_bench_key_000001";

#[derive(Clone, Copy)]
enum Target {
    Bare,
    Fresh,
    Duplicate,
    SqliteFresh,
    RedisFresh,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Bare => "bare axum POST",
            Target::Fresh => "check-lock fresh",
            Target::Duplicate => "check-lock duplicate",
            Target::SqliteFresh => "sqlite fresh",
            Target::RedisFresh => "redis fresh",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Target::Bare => "/bare",
            _ => "/v1/check-lock",
        }
    }

    fn body(self, conn: usize, i: u64) -> Bytes {
        let key = match self {
            Target::Duplicate => format!("bench:dup:{}", conn % 4),
            _ => format!("bench:{conn}:{i}"),
        };
        Bytes::from(format!(r#"{{"key":"{key}","ttl":600}}"#))
    }
}

struct Args {
    seconds: u64,
    connections: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 5,
        connections: 32,
        rounds: 3,
    };
    let argv: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        argv.iter()
            .position(|x| x == name)
            .and_then(|i| argv.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(v) = value("--seconds") {
        a.seconds = v.max(1);
    }
    if let Some(v) = value("--connections") {
        a.connections = v.max(1) as usize;
    }
    if let Some(v) = value("--rounds") {
        a.rounds = v.max(1) as usize;
    }
    a
}

async fn bare_server() -> SocketAddr {
    let app = Router::new().route(
        "/bare",
        post(|body: Bytes| async move {
            axum::Json(serde_json::json!({"ok": true, "len": body.len()}))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn connection(addr: SocketAddr, target: Target, conn: usize, deadline: Instant) -> u64 {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, driver) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(driver);
    let auth = format!("Bearer {KEY}");
    let host = addr.to_string();
    let mut done = 0;
    while Instant::now() < deadline {
        let req = Request::post(target.path())
            .header("host", &host)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(Full::new(target.body(conn, done)))
            .unwrap();
        sender.ready().await.unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(
            res.status(),
            200,
            "{} answered {}",
            target.name(),
            res.status()
        );
        res.into_body().collect().await.unwrap();
        done += 1;
    }
    done
}

/// Requests per second of one round.
async fn round(addr: SocketAddr, target: Target, args: &Args) -> f64 {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|c| tokio::spawn(connection(addr, target, c, deadline)))
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args = args();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = onceonly_runtime::testing::RedisServer::start();
    let (bare, onceonly, sqlite, redis_addr) = servers.block_on(async {
        let serve = |store: Option<String>| async move {
            // No daily quotas: a run makes far more check-locks than the default allows.
            let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap())
                .api_key(ApiKey::new(KEY).unwrap())
                .engine(onceonly_runtime::EngineConfig::default());
            if let Some(store) = store {
                config.store = onceonly_server::parse_store(&store).unwrap();
            }
            let server = Server::bind(config).await.unwrap();
            let addr = server.local_addr();
            std::mem::forget(server); // serves until the runtime stops
            addr
        };
        let sqlite = format!("sqlite:{}", dir.path().join("bench.db").display());
        let redis_addr = match &redis {
            Some(r) => Some(serve(Some(r.url())).await),
            None => None,
        };
        (
            bare_server().await,
            serve(None).await,
            serve(Some(sqlite)).await,
            redis_addr,
        )
    });
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let args = Arc::new(args);
    println!(
        "{} connections, {} s per round, {} rounds, best round reported",
        args.connections, args.seconds, args.rounds
    );
    let mut targets = vec![
        (Target::Bare, bare),
        (Target::Fresh, onceonly),
        (Target::Duplicate, onceonly),
        (Target::SqliteFresh, sqlite),
    ];
    match redis_addr {
        Some(addr) => targets.push((Target::RedisFresh, addr)),
        None => println!("redis-server is not installed: the Redis target is skipped"),
    }
    let mut best = vec![0f64; targets.len()];
    load.block_on(async {
        // Warm-up: connections, allocator, the tenant's maps.
        for &(target, addr) in &targets {
            let warm = Args {
                seconds: 1,
                connections: args.connections,
                rounds: 1,
            };
            round(addr, target, &warm).await;
        }
        for r in 0..args.rounds {
            for (i, &(target, addr)) in targets.iter().enumerate() {
                let rps = round(addr, target, &args).await;
                println!("round {}: {:<22} {:>10.0} req/s", r + 1, target.name(), rps);
                best[i] = best[i].max(rps);
            }
        }
    });
    println!();
    for (i, &(target, _)) in targets.iter().enumerate() {
        println!(
            "{:<22} {:>10.0} req/s   {:>5.2} x bare   {:>5.2} x memory fresh",
            target.name(),
            best[i],
            best[i] / best[0],
            best[i] / best[1]
        );
    }
    drop(load);
    servers.shutdown_timeout(Duration::from_secs(1));
}
