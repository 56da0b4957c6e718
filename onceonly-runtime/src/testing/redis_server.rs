//! A private `redis-server` for tests: a free loopback port, its own temporary directory,
//! killed when dropped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a started server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server without persistence. See [`RedisServer::start_with`].
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `["--appendonly", "yes"]`).
    ///
    /// Returns `None`, after saying so loudly, when `redis-server` is not installed: the caller
    /// skips its test. Under `CI=true` a missing binary panics instead, so CI never skips.
    pub fn start_with(args: &[&str]) -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        // A free port can be taken by someone else before the server binds it: try again.
        for _ in 0..5 {
            let port = free_port();
            let mut child = match spawn(port, dir.path(), &args) {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return missing_binary(),
                Err(e) => panic!("could not start redis-server: {e}"),
            };
            if wait_ready(port, &mut child) {
                return Some(RedisServer {
                    port,
                    args,
                    dir,
                    child: Some(child),
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start; see its log in a temporary directory");
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (no shutdown, no final save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server with SIGSTOP: connections stay open and requests get no answer, as
    /// with a server stuck on a slow disk or a host that stopped scheduling it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([which, &child.id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill {which} redis-server failed");
    }

    /// Starts the server again on the same port and directory (killing it first if it runs).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let mut child =
                spawn(self.port, self.dir.path(), &self.args).expect("restart redis-server");
            if wait_ready(self.port, &mut child) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn missing_binary() -> Option<RedisServer> {
    let msg = "redis-server is not installed (Debian package `redis-server`)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}: CI must run the Redis tests");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg}; this Redis test did not run !!!!!!!!\n");
    None
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn(port: u16, dir: &std::path::Path, args: &[String]) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--logfile", "redis.log", "--daemonize", "no"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Waits until the server answers `PING`; false if it exited or never answered.
fn wait_ready(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0; 7];
    conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
