//! The allow-list of hosts the engine may call tools on (the SSRF guard).

use std::fmt;

use url::{Host, Url};

use crate::error::{Error, Result};

/// Hosts that registered tools may be called on. Empty by default: nothing is allowed.
///
/// An entry is `host` (any port of that host) or `host:port` (that port only). Hosts are
/// domain names, IPv4 addresses or IPv6 addresses (`[::1]`, `[::1]:8080`, or a bare `::1`);
/// they are compared after the same normalisation URLs get (lower case, IDNA, one trailing
/// dot ignored), so `Tools.Example.COM` allows `https://tools.example.com/x`. There are no
/// wildcards: list every host.
///
/// The server fills it from `--allow-tool-host` / `ONCEONLY_SERVER_TOOL_HOSTS`; the embedded
/// engine from the `allow_tool_host` setting of its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolHosts {
    entries: Vec<HostEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostEntry {
    /// Normalised: lower case, IPv6 in brackets, no trailing dot.
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl ToolHosts {
    /// An allow-list that allows nothing.
    pub fn none() -> Self {
        ToolHosts::default()
    }

    /// An allow-list of `entries` (`host` or `host:port` each).
    pub fn new<I>(entries: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut hosts = ToolHosts::none();
        for entry in entries {
            hosts.push(entry.as_ref())?;
        }
        Ok(hosts)
    }

    /// Adds `entry` (`host` or `host:port`).
    pub fn push(&mut self, entry: &str) -> Result<()> {
        let entry = parse_entry(entry)?;
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a call to `url` may go out: its host is listed, with its port or without one.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host() else { return false };
        let host = normalize(&host);
        let port = url.port_or_known_default();
        self.entries
            .iter()
            .any(|e| e.host == host && (e.port.is_none() || e.port == port))
    }
}

impl fmt::Display for ToolHosts {
    /// The entries, comma-separated, in their normalised spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&e.host)?;
            if let Some(port) = e.port {
                write!(f, ":{port}")?;
            }
        }
        Ok(())
    }
}

fn normalize<S: AsRef<str>>(host: &Host<S>) -> String {
    let mut s = host.to_string().to_ascii_lowercase();
    if matches!(host, Host::Domain(_)) && s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    s
}

fn parse_entry(raw: &str) -> Result<HostEntry> {
    let entry = raw.trim();
    let invalid = |why: &str| {
        Error::Config(format!(
            "tool host `{entry}` is not `host` or `host:port`: {why}"
        ))
    };
    if entry.is_empty() {
        return Err(Error::Config("a tool host must not be empty".into()));
    }
    if entry.contains("://") || entry.contains(['/', '@', '?', '#']) {
        return Err(invalid(
            "give the host alone, without scheme, path or credentials",
        ));
    }
    if entry.contains('*') {
        return Err(invalid("wildcards are not supported; list every host"));
    }
    if entry.chars().any(char::is_whitespace) {
        return Err(invalid("it contains a space"));
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(invalid("an IPv6 address needs its closing `]`"));
        };
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| invalid("unexpected text after `]`"))?,
            ),
        };
        (format!("[{ip}]"), port)
    } else if entry.matches(':').count() > 1 {
        // A bare IPv6 address: no port possible without brackets.
        (format!("[{entry}]"), None)
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (entry.to_owned(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => return Err(invalid("the port must be a number from 1 to 65535")),
        },
    };
    let parsed = Host::parse(&host).map_err(|e| invalid(&e.to_string()))?;
    let host = normalize(&parsed);
    Ok(HostEntry { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn empty_allows_nothing() {
        let hosts = ToolHosts::default();
        assert!(hosts.is_empty());
        assert!(!hosts.allows(&url("http://127.0.0.1/")));
    }

    #[test]
    fn hosts_and_ports() {
        let hosts = ToolHosts::new([
            "Tools.Example.COM",
            "127.0.0.1:8080",
            "[::1]:9000",
            "::2",
            "internal.",
        ])
        .unwrap();
        assert_eq!(
            hosts.to_string(),
            "tools.example.com,127.0.0.1:8080,[::1]:9000,[::2],internal"
        );
        for ok in [
            "https://tools.example.com/send",
            "http://TOOLS.example.com:81/x",
            "https://tools.example.com./x",
            "http://127.0.0.1:8080/",
            // the URL parser reads other spellings of an IPv4 address as that address
            "http://2130706433:8080/",
            "http://[::1]:9000/",
            "http://[::2]:1/",
            "http://internal/",
        ] {
            assert!(hosts.allows(&url(ok)), "{ok}");
        }
        for refused in [
            "https://example.com/",
            "https://evil.tools.example.com/",
            "https://tools.example.com.evil.net/",
            "http://127.0.0.1/",
            "http://127.0.0.1:8081/",
            "http://localhost:8080/",
            "http://[::1]:9001/",
            "http://tools.example.com@evil.net/",
        ] {
            assert!(!hosts.allows(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn idna_hosts_compare_in_ascii() {
        let hosts = ToolHosts::new(["bücher.example"]).unwrap();
        assert!(hosts.allows(&url("https://BÜCHER.example/")));
        assert!(hosts.allows(&url("https://xn--bcher-kva.example/")));
    }

    #[test]
    fn bad_entries() {
        for bad in [
            "",
            "  ",
            "https://x.example",
            "x.example/path",
            "user@x.example",
            "*.example.com",
            "x.example:0",
            "x.example:70000",
            "x.example:http",
            "[::1",
            "[::1]x",
            "a b",
        ] {
            match ToolHosts::new([bad]) {
                Err(Error::Config(msg)) => assert!(msg.contains("tool host"), "{msg}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
