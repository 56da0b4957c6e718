//! Server configuration: where to listen, which store, which API keys under which plans.
//!
//! API keys are tenants. They come from three places that are merged: `--api-key KEY`
//! (repeatable), the `ONCEONLY_SERVER_API_KEYS` environment variable (comma-separated) and a
//! keys file (`--api-keys-file PATH`), whose format is:
//!
//! ```text
//! # one key per line; blank lines and text after `#` are ignored
//! once_live_team_a_0123456789
//! once_live_team_b_abcdefghij   plan=free make=1000 ai=3000
//! once_live_team_c_9876543210   plan=pro  make=200000 ai=unlimited
//! ```
//!
//! After the key: `plan=NAME` (shown by `GET /me` and `GET /usage`), `make=N` (check-locks
//! per UTC month), `ai=N` (acquired leases and runs per UTC month); each limit is a number or
//! `unlimited` (the default). Error messages name the line, never the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use onceonly_runtime::engine::Plan;
use onceonly_runtime::models::UsageKind;
use onceonly_runtime::{EngineConfig, Quotas, Target};
use secrecy::{ExposeSecret, SecretString};

/// The plan name of a keys-file key with limits but no `plan=`.
pub const CUSTOM_PLAN: &str = "custom";
/// Environment variable with comma-separated API keys.
pub const ENV_API_KEYS: &str = "ONCEONLY_SERVER_API_KEYS";
/// Hosts registered tools may be called on, comma-separated (added to `--allow-tool-host`).
pub const ENV_TOOL_HOSTS: &str = "ONCEONLY_SERVER_TOOL_HOSTS";

/// The outbound allow-list from `--allow-tool-host` values and the [`ENV_TOOL_HOSTS`] list:
/// every entry is `host` or `host:port`. Nothing is allowed by default.
pub fn tool_hosts<'a>(
    flags: impl IntoIterator<Item = &'a str>,
    env: Option<&str>,
) -> Result<Vec<String>, ConfigError> {
    let from_env = env.into_iter().flat_map(|list| list.split(','));
    let mut hosts = Vec::new();
    for (source, entry) in flags
        .into_iter()
        .map(|h| ("--allow-tool-host", h))
        .chain(from_env.map(|h| (ENV_TOOL_HOSTS, h)))
    {
        let entry = entry.trim();
        if entry.is_empty() && source == ENV_TOOL_HOSTS {
            continue;
        }
        onceonly_runtime::__private::tools::ToolHosts::new([entry])
            .map_err(|e| ConfigError(format!("{source} `{entry}`: {e}")))?;
        hosts.push(entry.to_owned());
    }
    Ok(hosts)
}
/// Default largest request body: 256 KiB. `POST /v1/ai/complete` takes more when results may
/// be larger: see [`complete_body_limit`].
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
/// What a `complete` body carries besides its result (key, lease id, digest), at most.
pub const COMPLETE_ENVELOPE: usize = 64 * 1024;

/// The body limit of `POST /v1/ai/complete`: room for the engine's largest result
/// (`max_result_bytes`, measured as compact JSON) as a client may send it, escaped (a Python
/// client writes non-ASCII text as `\uXXXX`, up to three times the bytes) or pretty-printed,
/// hence four times over, plus [`COMPLETE_ENVELOPE`]; never less than `body_limit`. An
/// oversized result is then refused by the engine with a 422 naming the result, rather than
/// cut off by the transport.
pub fn complete_body_limit(body_limit: usize, max_result_bytes: usize) -> usize {
    max_result_bytes
        .saturating_mul(4)
        .saturating_add(COMPLETE_ENVELOPE)
        .max(body_limit)
}
/// Default bound of the `wait_ms` long-poll of `GET /v1/ai/status`: 30 seconds.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest accepted API key, in bytes.
pub const MAX_API_KEY_BYTES: usize = 512;
/// Default time a new connection has to send a complete request head: 10 seconds. A head is
/// a few hundred bytes; 10 s covers slow links while a slowloris connection must start over
/// every 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a kept-alive connection may wait for its next request: 60 seconds, long
/// enough for client connection pools to reuse connections between calls.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a request body has to arrive in full: 30 seconds (the default 256 KiB body
/// at under 9 KB/s).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open connections: 4,096. An idle connection holds a file descriptor and a
/// few KiB (hyper's read buffer and a task), so the cap bounds both at tens of MiB, while
/// clients, which pool a handful of connections each, stay far below it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// A configuration mistake: bad flag, unreadable keys file, no keys at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where the server keeps its state: `--store`, read by the runtime's one URL parser
/// ([`Target`]). Anything but an HTTP URL names a store.
pub fn parse_store(spec: &str) -> Result<Target, ConfigError> {
    let target: Target = spec.parse().map_err(|e| match e {
        onceonly_runtime::Error::Config(msg) => ConfigError(format!("--store: {msg}")),
        other => ConfigError(format!("--store: {other}")),
    })?;
    if !target.is_store() {
        return Err(ConfigError(format!(
            "--store `{spec}` is an HTTP API, not a store: expected memory, redis:// or sqlite:PATH"
        )));
    }
    Ok(target)
}

/// One API key and the plan its tenant is on. `Debug` never shows the key.
#[derive(Clone)]
pub struct ApiKey {
    key: SecretString,
    plan: Plan,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"[redacted]")
            .field("plan", &self.plan)
            .finish()
    }
}

impl ApiKey {
    /// A key on an unlimited plan. Keys are 1 to 512 visible ASCII characters (no spaces, no
    /// commas), as they travel in an `Authorization: Bearer` header.
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        check_key(&key).map_err(ConfigError)?;
        Ok(ApiKey {
            key: SecretString::from(key),
            plan: Plan::unlimited(),
        })
    }

    /// Puts the key on `plan`.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// The key's plan.
    pub fn plan_ref(&self) -> &Plan {
        &self.plan
    }

    pub(crate) fn secret(&self) -> &str {
        self.key.expose_secret()
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("an API key must not be empty".into());
    }
    if key.len() > MAX_API_KEY_BYTES {
        return Err(format!(
            "an API key is at most {MAX_API_KEY_BYTES} bytes long"
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(
            "an API key may only contain visible ASCII characters (no spaces or commas)".into(),
        );
    }
    Ok(())
}

/// Everything [`Server::bind`](crate::Server::bind) needs.
///
/// ```
/// use onceonly_server::{ApiKey, ServerConfig};
///
/// let config = ServerConfig::new("127.0.0.1:0".parse().unwrap())
///     .api_key(ApiKey::new("once_test_key_1").unwrap());
/// assert_eq!(config.api_keys.len(), 1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The store (never [`Target::Http`]: see [`parse_store`]).
    pub store: Target,
    /// The API keys (tenants). At least one is required.
    pub api_keys: Vec<ApiKey>,
    /// Largest accepted request body, in bytes (413 beyond it).
    pub body_limit: usize,
    /// Upper bound of the `wait_ms` long-polls of `GET /v1/ai/status` and
    /// `POST /v1/ai/jobs/claim`.
    pub max_wait: Duration,
    /// TTL defaults, retention and limits of the engine; [`Quotas::server_default`] daily
    /// quotas per account unless set otherwise.
    pub engine: EngineConfig,
    /// How long a new connection has to send a complete request head before it is closed
    /// (silent and slowloris connections).
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next complete request head after an
    /// answer before it is closed.
    pub idle_timeout: Duration,
    /// How long a request body has to arrive in full, counted from when the handler starts
    /// reading it; later, the answer is 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Most connections open at once; past it, new connections wait in the kernel's listen
    /// backlog until open ones close.
    pub max_connections: usize,
}

impl ServerConfig {
    /// A configuration listening on `listen`, memory store, no keys yet, default limits.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            store: Target::Memory,
            api_keys: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            max_wait: DEFAULT_MAX_WAIT,
            engine: EngineConfig::default().quotas(Quotas::server_default()),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Adds an API key.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_keys.push(key);
        self
    }

    /// Sets the request body limit.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets the long-poll bound.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets the engine configuration.
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// Sets the header timeout.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets the idle timeout of kept-alive connections.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the request-body timeout.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets the cap on open connections.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Checks the connection limits: every timeout and the cap above zero.
    pub(crate) fn check_limits(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("header timeout", self.header_timeout),
            ("idle timeout", self.idle_timeout),
            ("body timeout", self.body_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError(format!("the {name} must be above zero")));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max connections must be at least 1".into()));
        }
        Ok(())
    }

    /// Checks the keys: at least one, and no key listed twice with different plans (the same
    /// key with the same plan is kept once).
    pub(crate) fn checked_keys(&self) -> Result<Vec<ApiKey>, ConfigError> {
        if self.api_keys.is_empty() {
            return Err(ConfigError(format!(
                "no API keys configured: pass --api-key KEY, set {ENV_API_KEYS}, or use \
                 --api-keys-file PATH"
            )));
        }
        let mut out: Vec<ApiKey> = Vec::new();
        for (i, key) in self.api_keys.iter().enumerate() {
            match out.iter().find(|k| k.secret() == key.secret()) {
                Some(seen) if seen.plan == key.plan => {}
                Some(_) => {
                    return Err(ConfigError(format!(
                        "API key #{} is configured twice with different plans",
                        i + 1
                    )));
                }
                None => out.push(key.clone()),
            }
        }
        Ok(out)
    }
}

/// Keys from the `ONCEONLY_SERVER_API_KEYS` format: comma-separated, blanks ignored.
pub fn parse_key_list(list: &str) -> Result<Vec<ApiKey>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .enumerate()
        .map(|(i, k)| {
            ApiKey::new(k).map_err(|e| ConfigError(format!("{ENV_API_KEYS} entry #{}: {e}", i + 1)))
        })
        .collect()
}

/// The part of a keys-file line before its comment.
fn strip_comment(line: &str) -> &str {
    let mut prev_is_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_is_space {
            return &line[..i];
        }
        prev_is_space = c.is_whitespace();
    }
    line
}

/// Keys from a keys file. `source` names the file in error messages (which name the line,
/// never the key).
///
/// One key per line; blank lines and comments are ignored (a comment starts with `#` at the
/// start of a line or after whitespace; a `#` inside a key is part of the key). After the key, optionally:
/// `plan=NAME` (shown by `GET /me` and `GET /usage`), `make=N` (check-locks per UTC month),
/// `ai=N` (acquired leases and runs per UTC month); a limit is a number or `unlimited`, the
/// default. A key with a limit and no `plan=` is on the plan named `custom`.
///
/// ```
/// let keys = onceonly_server::parse_keys_file(
///     "# tenants\nonce_live_team_a_01\nonce_live_team_b_02  plan=free make=1000 ai=3000\n",
///     "keys.txt",
/// )
/// .unwrap();
/// assert_eq!(keys.len(), 2);
/// assert_eq!(keys[1].plan_ref().make_limit, Some(1000));
/// assert_eq!(keys[0].plan_ref().name, "unlimited");
/// let limited = onceonly_server::parse_keys_file("once_live_team_c_03 make=10", "keys.txt").unwrap();
/// assert_eq!(limited[0].plan_ref().name, "custom");
/// ```
pub fn parse_keys_file(text: &str, source: &str) -> Result<Vec<ApiKey>, ConfigError> {
    let mut keys = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        // A comment starts a line or follows whitespace: a `#` inside a key is part of it.
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let err = |msg: String| ConfigError(format!("{source}:{}: {msg}", n + 1));
        let mut parts = line.split_whitespace();
        let key = parts.next().unwrap_or_default();
        let mut api_key = ApiKey::new(key).map_err(|e| err(e.0))?;
        let mut plan = Plan::unlimited();
        let mut named = false;
        for part in parts {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("expected plan=NAME, make=N or ai=N, got `{part}`")))?;
            match name {
                "plan" if !value.is_empty() => {
                    plan.name = value.to_owned();
                    named = true;
                }
                kind => {
                    let kind: UsageKind = kind.parse().map_err(|_| {
                        err(format!(
                            "unknown setting `{part}`: expected plan=NAME, make=N or ai=N"
                        ))
                    })?;
                    let limit = parse_limit(value).map_err(&err)?;
                    match kind {
                        UsageKind::Make => plan.make_limit = limit,
                        UsageKind::Ai => plan.ai_limit = limit,
                    }
                }
            }
        }
        // A key with limits is not on the unlimited plan, whatever the line leaves out.
        if !named && (plan.make_limit.is_some() || plan.ai_limit.is_some()) {
            plan.name = CUSTOM_PLAN.to_owned();
        }
        api_key = api_key.plan(plan);
        keys.push(api_key);
    }
    Ok(keys)
}

/// Reads a keys file.
pub fn read_keys_file(path: &Path) -> Result<Vec<ApiKey>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    parse_keys_file(&text, &path.display().to_string())
}

/// A limit or quota as flags and the keys file write it: a whole number, or `unlimited`
/// (`None`).
pub fn parse_limit(value: &str) -> Result<Option<u64>, String> {
    if value.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    value
        .parse::<u64>()
        .map(Some)
        .map_err(|_| format!("a limit is a whole number or `unlimited`, got `{value}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_lines() {
        let keys = parse_keys_file(
            "# team keys\n\nonce_a\nonce_b plan=free make=10 ai=unlimited # trial\n",
            "keys.txt",
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].plan, Plan::unlimited());
        assert_eq!(keys[1].plan, Plan::new("free").make_limit(10));
        assert_eq!(keys[1].secret(), "once_b");
    }

    #[test]
    fn repro_hash_inside_a_key_is_not_a_comment() {
        let keys = parse_keys_file("once_live_ab#Xy9  # team a\n#c\n", "keys.txt").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret(), "once_live_ab#Xy9");
    }

    #[test]
    fn keys_file_errors_name_the_line_not_the_key() {
        let e = parse_keys_file("ok_key\nsecret_key make=ten\n", "k.txt").unwrap_err();
        assert!(e.0.starts_with("k.txt:2:"), "{e}");
        assert!(!e.0.contains("secret_key"), "{e}");
        let e = parse_keys_file("secret_key color=blue\n", "k.txt").unwrap_err();
        assert!(e.0.contains("unknown setting"), "{e}");
    }

    #[test]
    fn key_lists_and_checks() {
        assert_eq!(parse_key_list(" a1, ,b2 ").unwrap().len(), 2);
        assert!(ApiKey::new("has space").is_err());
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("k".repeat(513)).is_err());
        let dbg = format!("{:?}", ApiKey::new("top_secret").unwrap());
        assert!(!dbg.contains("top_secret"), "{dbg}");
    }

    #[test]
    fn duplicate_keys() {
        let base = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        assert!(base.clone().checked_keys().is_err(), "no keys");
        let twice = base
            .clone()
            .api_key(ApiKey::new("k1").unwrap())
            .api_key(ApiKey::new("k1").unwrap());
        assert_eq!(twice.checked_keys().unwrap().len(), 1);
        let clash = base
            .api_key(ApiKey::new("k1").unwrap())
            .api_key(ApiKey::new("k1").unwrap().plan(Plan::new("free")));
        assert!(clash.checked_keys().is_err());
    }

    #[test]
    fn tool_hosts_come_from_flags_and_the_environment() {
        let hosts = tool_hosts(
            ["tools.internal", "127.0.0.1:9000"],
            Some("a.example, b.example:8443,"),
        )
        .unwrap();
        assert_eq!(
            hosts,
            [
                "tools.internal",
                "127.0.0.1:9000",
                "a.example",
                "b.example:8443"
            ]
        );
        assert!(tool_hosts([], None).unwrap().is_empty(), "none by default");
        let e = tool_hosts(["http://x/"], None).unwrap_err();
        assert!(e.0.starts_with("--allow-tool-host `http://x/`"), "{e}");
        let e = tool_hosts([], Some("ok.example,bad host")).unwrap_err();
        assert!(
            e.0.starts_with("ONCEONLY_SERVER_TOOL_HOSTS `bad host`"),
            "{e}"
        );
    }

    #[test]
    fn stores() {
        assert_eq!(parse_store("memory").unwrap(), Target::Memory);
        assert_eq!(parse_store("memory:").unwrap(), Target::Memory);
        let e = parse_store("http://127.0.0.1:8080/v1").unwrap_err();
        assert!(e.0.contains("not a store"), "{e}");
        let e = parse_store("postgres://x").unwrap_err();
        assert!(
            e.0.starts_with("--store: ") && e.0.contains("postgres://x"),
            "{e}"
        );
    }
}
