//! `onceonly-server`: the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use onceonly_runtime::Quotas;
use onceonly_server::{
    ApiKey, ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ENV_API_KEYS, ENV_TOOL_HOSTS, Server,
    ServerConfig, parse_key_list, parse_limit, parse_store, read_keys_file, tool_hosts,
};
use tracing_subscriber::EnvFilter;

/// A self-hostable server speaking the OnceOnly HTTP API (exactly-once execution for AI agents
/// and webhook handlers). Every API key is an isolated tenant.
// No `Debug`: the struct holds API keys.
#[derive(Parser)]
#[command(name = "onceonly-server", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Where state lives: `memory`, `redis://HOST[:PORT][/DB]` or `sqlite:PATH` (the last two
    /// when built with the `redis` / `sqlite` features).
    #[arg(long, value_name = "STORE", default_value = "memory")]
    store: String,

    /// An API key (repeatable); unlimited plan. Prefer the environment or a keys file, which
    /// do not show up in the process list.
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,

    /// A keys file: one key per line, optionally followed by `plan=NAME make=N ai=N`.
    #[arg(long = "api-keys-file", value_name = "PATH")]
    api_keys_file: Option<PathBuf>,

    /// Largest accepted request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    body_limit: usize,

    /// Upper bound of the `wait_ms` long-polls of `GET /v1/ai/status` and
    /// `POST /v1/ai/jobs/claim`, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    max_wait_ms: u64,

    /// Seconds a new connection has to send a complete request head (closes silent and
    /// slowloris connections).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs(), value_parser = at_least_one::<u64>)]
    header_timeout: u64,

    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = at_least_one::<u64>)]
    idle_timeout: u64,

    /// Seconds a request body has to arrive in full (408 after that).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_BODY_TIMEOUT.as_secs(), value_parser = at_least_one::<u64>)]
    body_timeout: u64,

    /// Most connections open at once; past it, new ones wait in the listen backlog. Keep it
    /// below the open-file limit (`ulimit -n`).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one::<usize>)]
    max_connections: usize,

    /// A host registered HTTP tools may be called on, `HOST` or `HOST:PORT` (repeatable; also
    /// `ONCEONLY_SERVER_TOOL_HOSTS`, comma-separated). None by default: outbound tool calls
    /// are refused until their host is allowed.
    #[arg(long = "allow-tool-host", value_name = "HOST")]
    allow_tool_hosts: Vec<String>,

    /// Check-locks each API key may make per UTC day (a number or `unlimited`; default
    /// 1000000); 429 past it.
    #[arg(long, value_name = "N", value_parser = quota)]
    quota_check_locks: Option<Quota>,

    /// Leases and runs each API key may acquire or queue per UTC day (or `unlimited`; default
    /// 1000000).
    #[arg(long, value_name = "N", value_parser = quota)]
    quota_acquisitions: Option<Quota>,

    /// Bytes of results each API key may store per UTC day (or `unlimited`; default 1 GiB).
    #[arg(long, value_name = "BYTES", value_parser = quota)]
    quota_result_bytes: Option<Quota>,

    /// Log filter (`info`, `debug`, `onceonly_server=debug`, ...). `RUST_LOG` wins when set.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
}

/// A quota flag: a whole number, or `unlimited`.
#[derive(Debug, Clone, Copy)]
struct Quota(Option<u64>);

fn quota(s: &str) -> Result<Quota, String> {
    parse_limit(s).map(Quota)
}

/// A whole number of at least 1 (seconds, connections).
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got `{s}`")),
    }
}

fn config(cli: &Cli) -> Result<ServerConfig, ConfigError> {
    let store = parse_store(&cli.store)?;
    let mut config = ServerConfig::new(cli.listen)
        .body_limit(cli.body_limit)
        .max_wait(Duration::from_millis(cli.max_wait_ms))
        .header_timeout(Duration::from_secs(cli.header_timeout))
        .idle_timeout(Duration::from_secs(cli.idle_timeout))
        .body_timeout(Duration::from_secs(cli.body_timeout))
        .max_connections(cli.max_connections);
    config.store = store;
    // A flag given replaces its default, `unlimited` included.
    let mut quotas = Quotas::server_default();
    let given = |flag: Option<Quota>, default: Option<u64>| flag.map_or(default, |q| q.0);
    quotas.check_locks_per_day = given(cli.quota_check_locks, quotas.check_locks_per_day);
    quotas.acquisitions_per_day = given(cli.quota_acquisitions, quotas.acquisitions_per_day);
    quotas.result_bytes_per_day = given(cli.quota_result_bytes, quotas.result_bytes_per_day);
    config.engine = config.engine.quotas(quotas);
    let env_hosts = std::env::var(ENV_TOOL_HOSTS).ok();
    for host in tool_hosts(
        cli.allow_tool_hosts.iter().map(String::as_str),
        env_hosts.as_deref(),
    )? {
        config.engine = config.engine.allow_tool_host(host);
    }
    for (i, key) in cli.api_keys.iter().enumerate() {
        let key = ApiKey::new(key.trim())
            .map_err(|e| ConfigError(format!("--api-key #{}: {e}", i + 1)))?;
        config = config.api_key(key);
    }
    if let Ok(list) = std::env::var(ENV_API_KEYS) {
        for key in parse_key_list(&list)? {
            config = config.api_key(key);
        }
    }
    if let Some(path) = &cli.api_keys_file {
        for key in read_keys_file(path)? {
            config = config.api_key(key);
        }
    }
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let config = match config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("onceonly-server: {e}");
            return ExitCode::from(2);
        }
    };
    let tenants = config.api_keys.len();
    let store = config.store.to_string();
    let (header, idle, body, max_connections) = (
        config.header_timeout.as_secs(),
        config.idle_timeout.as_secs(),
        config.body_timeout.as_secs(),
        config.max_connections,
    );
    let server = match Server::bind(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("onceonly-server: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        listen = %server.local_addr(),
        %store,
        api_keys = tenants,
        header_timeout_secs = header,
        idle_timeout_secs = idle,
        body_timeout_secs = body,
        max_connections,
        "onceonly-server listening"
    );
    println!("onceonly-server listening on {}", server.base_url());
    match server.run_until(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("onceonly-server stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("onceonly-server: {e}");
            ExitCode::FAILURE
        }
    }
}
