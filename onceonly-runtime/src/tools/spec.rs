//! Reading and checking a tool registration (PROTOCOL §9.1), and the document the engine
//! stores for it.
//!
//! The server hands over whatever JSON it received, so this parses by hand: a wrong JSON type
//! is "`timeout_ms` must be a whole number of milliseconds (got a string)", not a serde
//! message. Every refusal is [`Error::Validation`] naming the field and the rule, and none
//! of them repeats the secret.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, JsonMap, Result};
use crate::models::tools::{DEFAULT_TOOL_MAX_RETRIES, DEFAULT_TOOL_TIMEOUT_MS, GLOBAL_SCOPE};
use crate::models::{Tool, ToolSpec};
use crate::wire::SIGNATURE_ALGORITHM;

/// Longest tool name, in characters (names are ASCII).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest agent id in an `agent:<agent id>` scope, in characters (agent ids are ASCII).
pub const MAX_AGENT_ID_CHARS: usize = 128;
/// Longest tool URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Shortest secret, in characters.
pub const MIN_SECRET_CHARS: usize = 8;
/// Longest secret, in characters.
pub const MAX_SECRET_CHARS: usize = 512;
/// Shortest per-attempt timeout, in milliseconds.
pub const MIN_TIMEOUT_MS: u64 = 250;
/// Longest per-attempt timeout, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 120_000;
/// Most retries of one call.
pub const MAX_RETRIES: u32 = 10;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 512;

/// The prefix of a secret's id.
const SECRET_ID_PREFIX: &str = "sec";

/// The prefix of a scope that names one agent.
const AGENT_SCOPE_PREFIX: &str = "agent:";

/// A registered tool as the engine keeps it, secret included: what it stores as a document
/// ([`to_doc`](Self::to_doc) / [`from_doc`](Self::from_doc)) and what
/// [`ToolCaller::call`](super::ToolCaller::call) needs. Every value in it passed validation.
///
/// `Debug` hides the secret; [`view`](Self::view) is the masked public [`Tool`].
#[derive(Clone)]
pub struct StoredTool {
    /// The name, unique per scope.
    pub name: String,
    /// `global` or `agent:<agent id>`.
    pub scope_id: String,
    /// The endpoint, an absolute `http`/`https` URL (normalised by the URL parser: lower-case
    /// scheme and host, a path of at least `/`).
    pub url: String,
    secret: SecretString,
    /// `sec_` and 32 random hex digits, made when this secret was registered (see
    /// [`secret_id`](Self::secret_id)).
    secret_id: Option<String>,
    /// Per-attempt timeout, 250 to 120,000 ms.
    pub timeout_ms: u64,
    /// Retries after a failed attempt, 0 to 10.
    pub max_retries: u32,
    /// Whether governed calls may run the tool (the toggle changes only this).
    pub enabled: bool,
    /// What the tool does, at most 512 characters.
    pub description: Option<String>,
}

impl fmt::Debug for StoredTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTool")
            .field("name", &self.name)
            .field("scope_id", &self.scope_id)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("secret_id", &self.secret_id)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("enabled", &self.enabled)
            .field("description", &self.description)
            .finish()
    }
}

impl StoredTool {
    /// Reads and checks the body of `POST /tools` as received (any JSON object).
    pub fn from_json(raw: &JsonMap) -> Result<Self> {
        let tool = parse(raw)?;
        routable("name", &tool.name)?;
        if let Some(agent) = tool.scope_id.strip_prefix(AGENT_SCOPE_PREFIX) {
            routable("scope_id's agent id", agent)?;
        }
        Ok(tool.with_new_secret_id())
    }

    /// Checks a typed registration (the embedded engine's `create_tool`).
    pub fn from_spec(spec: &ToolSpec) -> Result<Self> {
        // One set of rules: the typed spec goes through the same parser as raw JSON.
        match serde_json::to_value(spec)? {
            Value::Object(raw) => StoredTool::from_json(&raw),
            _ => unreachable!("a ToolSpec serializes to an object"),
        }
    }

    /// A registration's secret gets an id of its own; whatever id the body carried is ignored.
    fn with_new_secret_id(mut self) -> Self {
        self.secret_id = Some(crate::ids::random(SECRET_ID_PREFIX));
        self
    }

    /// When `earlier` (the registration this one replaces) had the same secret, its id is
    /// kept: the id changes when the secret does, and only then.
    pub(crate) fn keep_secret_id_of(&mut self, earlier: &StoredTool) {
        // Digests compared, not the secrets: equal-length work whatever the secrets share.
        let digest = |t: &StoredTool| Sha256::digest(t.secret.expose_secret().as_bytes());
        if earlier.secret_id.is_some() && digest(self) == digest(earlier) {
            self.secret_id.clone_from(&earlier.secret_id);
        }
    }

    /// The document the engine stores: the registration with every default filled in,
    /// secret included.
    pub fn to_doc(&self) -> JsonMap {
        let mut auth = JsonMap::new();
        auth.insert("type".into(), SIGNATURE_ALGORITHM.into());
        auth.insert("secret".into(), self.secret.expose_secret().into());
        if let Some(id) = &self.secret_id {
            auth.insert("secret_id".into(), id.clone().into());
        }
        let mut doc = JsonMap::new();
        doc.insert("name".into(), self.name.clone().into());
        doc.insert("scope_id".into(), self.scope_id.clone().into());
        doc.insert("url".into(), self.url.clone().into());
        doc.insert("auth".into(), Value::Object(auth));
        doc.insert("timeout_ms".into(), self.timeout_ms.into());
        doc.insert("max_retries".into(), self.max_retries.into());
        doc.insert("enabled".into(), self.enabled.into());
        if let Some(d) = &self.description {
            doc.insert("description".into(), d.clone().into());
        }
        doc
    }

    /// Reads a document written by [`to_doc`](Self::to_doc). One that no longer passes
    /// validation is a corrupted record: [`Error::Store`].
    pub fn from_doc(doc: &JsonMap) -> Result<Self> {
        let mut tool = parse(doc).map_err(|e| match e {
            Error::Validation(msg) => {
                Error::Store(format!("stored tool document is invalid: {msg}").into())
            }
            other => other,
        })?;
        tool.secret_id = doc
            .get("auth")
            .and_then(|auth| auth.get("secret_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(tool)
    }

    /// The tool as the API shows it: no secret, only its id and mask.
    pub fn view(&self) -> Tool {
        Tool {
            name: self.name.clone(),
            scope_id: self.scope_id.clone(),
            url: self.url.clone(),
            timeout_ms: self.timeout_ms,
            max_retries: self.max_retries,
            enabled: self.enabled,
            description: self.description.clone(),
            has_secret: true,
            secret_id: self.secret_id.clone(),
            secret_mask: Some(self.secret_mask()),
            auth_type: SIGNATURE_ALGORITHM.to_owned(),
        }
    }

    /// The secret's id: `sec_` and 32 random hex digits, made when the secret was registered
    /// and kept while registrations of the tool bring the same secret. It tells two secrets
    /// apart and says nothing about either: a digest of the secret would let anyone who can
    /// list tools test guesses of a short secret offline. `None` for a tool stored by a
    /// release that derived the id from the secret, until its secret is registered again.
    pub fn secret_id(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }

    /// `***` and the last 3 characters of the secret.
    pub fn secret_mask(&self) -> String {
        let secret = self.secret.expose_secret();
        let tail: String = {
            let mut last: Vec<char> = secret.chars().rev().take(3).collect();
            last.reverse();
            last.into_iter().collect()
        };
        format!("***{tail}")
    }

    /// The shared secret calls are signed with.
    pub(crate) fn secret(&self) -> &SecretString {
        &self.secret
    }
}

/// A tool name: 1 to 128 characters of `a-z A-Z 0-9 _ . : -`. For registration and for every
/// path that names a tool (run, get, toggle, delete).
pub fn validate_tool_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::validation("name must not be empty"));
    }
    if !name.bytes().all(is_name_byte) {
        return Err(Error::validation(format!(
            "name `{}` must match ^[a-zA-Z0-9_.:-]+$ (letters, digits, `_`, `.`, `:`, `-`)",
            excerpt(name)
        )));
    }
    if name.len() > MAX_NAME_CHARS {
        return Err(Error::validation(format!(
            "name is {} characters long; the maximum is {MAX_NAME_CHARS}",
            name.len()
        )));
    }
    Ok(())
}

/// A name being given to something new (a tool, a policy's or kill switch's agent): one that
/// travels as a URL path segment (`/tools/{name}`, `/agents/{agent_id}/disable`) must not be
/// `.` or `..`, which HTTP clients (both official SDKs among them) drop from a URL before
/// sending it, so the thing could be made but never reached again. Checked only when it is
/// made: one stored by an earlier release can still be read, listed and deleted.
pub(crate) fn routable(field: &str, name: &str) -> Result<()> {
    if name == "." || name == ".." {
        return Err(Error::validation(format!(
            "{field} must not be `.` or `..`: clients drop such a segment from URLs"
        )));
    }
    Ok(())
}

/// A scope: `global`, or `agent:` followed by an agent id ([`validate_agent_id`]).
pub fn validate_scope(scope: &str) -> Result<()> {
    if scope == GLOBAL_SCOPE {
        return Ok(());
    }
    match scope.strip_prefix(AGENT_SCOPE_PREFIX) {
        Some(agent) => validate_agent_id(agent).map_err(|e| match e {
            Error::Validation(msg) => Error::validation(format!("scope_id: {msg}")),
            other => other,
        }),
        None => Err(Error::validation(format!(
            "scope_id `{}` must be `global` or `agent:<agent id>`",
            excerpt(scope)
        ))),
    }
}

/// An agent id, as it appears in an `agent:<agent id>` scope: 1 to 128 characters of
/// `a-z A-Z 0-9 _ . : @ -`.
pub fn validate_agent_id(agent_id: &str) -> Result<()> {
    if agent_id.is_empty() {
        return Err(Error::validation("agent id must not be empty"));
    }
    if !agent_id.bytes().all(|b| is_name_byte(b) || b == b'@') {
        return Err(Error::validation(format!(
            "agent id `{}` may only contain letters, digits, `_`, `.`, `:`, `@` and `-`",
            excerpt(agent_id)
        )));
    }
    if agent_id.len() > MAX_AGENT_ID_CHARS {
        return Err(Error::validation(format!(
            "agent id is {} characters long; the maximum is {MAX_AGENT_ID_CHARS}",
            agent_id.len()
        )));
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
}

/// At most 64 characters of a refused value, for messages.
fn excerpt(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// What a JSON value is, for "got a string" messages (never the value itself).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The member `field` of `obj`; `null` counts as absent.
fn member<'a>(obj: &'a JsonMap, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn string<'a>(obj: &'a JsonMap, field: &str, label: &str) -> Result<Option<&'a str>> {
    match member(obj, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::validation(format!(
            "{label} must be a string (got {})",
            kind(other)
        ))),
    }
}

fn required<'a>(obj: &'a JsonMap, field: &str, label: &str) -> Result<&'a str> {
    string(obj, field, label)?.ok_or_else(|| Error::validation(format!("{label} is required")))
}

/// A whole number in `min..=max`, or `default` when absent.
fn bounded(
    obj: &JsonMap,
    field: &str,
    min: u64,
    max: u64,
    default: u64,
    unit: &str,
) -> Result<u64> {
    let Some(v) = member(obj, field) else {
        return Ok(default);
    };
    let out_of_range = |shown: &dyn fmt::Display| {
        Error::validation(format!(
            "{field} must be between {min} and {max}{unit} (got {shown})"
        ))
    };
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(x), _) if (min..=max).contains(&x) => Ok(x),
            (Some(x), _) => Err(out_of_range(&x)),
            (None, Some(x)) => Err(out_of_range(&x)),
            (None, None) => Err(Error::validation(format!(
                "{field} must be a whole number{unit} (got {n})"
            ))),
        },
        other => Err(Error::validation(format!(
            "{field} must be a whole number{unit} (got {})",
            kind(other)
        ))),
    }
}

fn parse(raw: &JsonMap) -> Result<StoredTool> {
    let name = required(raw, "name", "name")?;
    validate_tool_name(name)?;

    let scope_id = string(raw, "scope_id", "scope_id")?.unwrap_or(GLOBAL_SCOPE);
    validate_scope(scope_id)?;

    let url = parse_url(required(raw, "url", "url")?)?;

    let auth = match member(raw, "auth") {
        None => {
            return Err(Error::validation(
                "auth is required: {\"type\": \"hmac_sha256\", \"secret\": \"...\"}",
            ));
        }
        Some(Value::Object(auth)) => auth,
        Some(other) => {
            return Err(Error::validation(format!(
                "auth must be an object {{\"type\": \"hmac_sha256\", \"secret\": \"...\"}} (got {})",
                kind(other)
            )));
        }
    };
    let auth_type = required(auth, "type", "auth.type")?;
    if auth_type != SIGNATURE_ALGORITHM {
        return Err(Error::validation(format!(
            "auth.type `{}` is not supported; the only type is `{SIGNATURE_ALGORITHM}`",
            excerpt(auth_type)
        )));
    }
    let secret = required(auth, "secret", "auth.secret")?;
    let secret_chars = secret.chars().count();
    if secret_chars < MIN_SECRET_CHARS {
        return Err(Error::validation(format!(
            "auth.secret must be at least {MIN_SECRET_CHARS} characters long"
        )));
    }
    if secret_chars > MAX_SECRET_CHARS {
        return Err(Error::validation(format!(
            "auth.secret must be at most {MAX_SECRET_CHARS} characters long"
        )));
    }

    let timeout_ms = bounded(
        raw,
        "timeout_ms",
        MIN_TIMEOUT_MS,
        MAX_TIMEOUT_MS,
        DEFAULT_TOOL_TIMEOUT_MS,
        " milliseconds",
    )?;
    let max_retries = bounded(
        raw,
        "max_retries",
        0,
        u64::from(MAX_RETRIES),
        u64::from(DEFAULT_TOOL_MAX_RETRIES),
        "",
    )?;
    let enabled = match member(raw, "enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(Error::validation(format!(
                "enabled must be true or false (got {})",
                kind(other)
            )));
        }
    };
    let description = string(raw, "description", "description")?;
    if let Some(d) = description {
        let chars = d.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(Error::validation(format!(
                "description is {chars} characters long; the maximum is {MAX_DESCRIPTION_CHARS}"
            )));
        }
    }

    Ok(StoredTool {
        name: name.to_owned(),
        scope_id: scope_id.to_owned(),
        url,
        secret: SecretString::from(secret.to_owned()),
        timeout_ms,
        max_retries: u32::try_from(max_retries).expect("at most MAX_RETRIES"),
        enabled,
        description: description.map(str::to_owned),
        secret_id: None,
    })
}

/// An absolute `http`/`https` URL with a host and no credentials; returned normalised.
fn parse_url(raw: &str) -> Result<String> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Error::validation(format!(
            "url is {} bytes long; the maximum is {MAX_URL_BYTES}",
            raw.len()
        )));
    }
    // The URL parser drops tabs and newlines silently: a URL that carries them was mangled
    // (or built to smuggle something), so it is refused rather than stored cleaned.
    if crate::validate::has_control(raw) || raw.trim() != raw {
        return Err(Error::validation(
            "url must not contain control characters or surrounding whitespace",
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| {
        Error::validation(format!(
            "url `{}` is not an absolute http(s) URL: {e}",
            excerpt(raw)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::validation(format!(
            "url must use http or https (got `{}:`)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::validation(format!(
            "url `{}` must name a host",
            excerpt(raw)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // They would be shown back in every answer; calls are authenticated by the signature.
        return Err(Error::validation(
            "url must not contain credentials (`user:password@`); calls are authenticated by the signature",
        ));
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "sup3r-secret-value";

    fn valid() -> JsonMap {
        match json!({
            "name": "send_email",
            "scope_id": "agent:support-bot",
            "url": "https://Tools.Example.com/send",
            "auth": {"type": "hmac_sha256", "secret": SECRET},
            "timeout_ms": 5000,
            "max_retries": 3,
            "enabled": false,
            "description": "Sends one email",
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn with(field: &str, value: Value) -> JsonMap {
        let mut m = valid();
        m.insert(field.into(), value);
        m
    }

    fn without(field: &str) -> JsonMap {
        let mut m = valid();
        m.remove(field);
        m
    }

    fn with_auth(auth: Value) -> JsonMap {
        with("auth", auth)
    }

    /// The refusal message; asserts it is a validation error that names `field` and does not
    /// carry the secret.
    #[track_caller]
    fn refused(raw: &JsonMap, field: &str) -> String {
        match StoredTool::from_json(raw) {
            Err(Error::Validation(msg)) => {
                assert!(msg.contains(field), "`{msg}` does not name {field}");
                assert!(!msg.contains(SECRET), "`{msg}` shows the secret");
                msg
            }
            other => panic!("expected a validation error naming {field}, got {other:?}"),
        }
    }

    #[test]
    fn a_full_registration_is_accepted_and_normalised() {
        let t = StoredTool::from_json(&valid()).unwrap();
        assert_eq!(t.name, "send_email");
        assert_eq!(t.scope_id, "agent:support-bot");
        assert_eq!(t.url, "https://tools.example.com/send");
        assert_eq!(t.timeout_ms, 5000);
        assert_eq!(t.max_retries, 3);
        assert!(!t.enabled);
        assert_eq!(t.description.as_deref(), Some("Sends one email"));
        assert_eq!(t.secret().expose_secret(), SECRET);
    }

    #[test]
    fn defaults() {
        let mut m = JsonMap::new();
        m.insert("name".into(), "t".into());
        m.insert("url".into(), "http://127.0.0.1:8080".into());
        m.insert(
            "auth".into(),
            json!({"type": "hmac_sha256", "secret": "12345678"}),
        );
        m.insert("description".into(), Value::Null);
        m.insert("timeout_ms".into(), Value::Null);
        let t = StoredTool::from_json(&m).unwrap();
        assert_eq!(t.scope_id, "global");
        assert_eq!(t.url, "http://127.0.0.1:8080/");
        assert_eq!(t.timeout_ms, 15_000);
        assert_eq!(t.max_retries, 2);
        assert!(t.enabled);
        assert_eq!(t.description, None);
    }

    #[test]
    fn the_typed_spec_follows_the_same_rules() {
        let spec = ToolSpec::new("lookup", "https://x.example/lookup", SECRET)
            .scope_id("agent:bot-1")
            .timeout_ms(250)
            .max_retries(0)
            .enabled(true)
            .description("d");
        let t = StoredTool::from_spec(&spec).unwrap();
        assert_eq!((t.timeout_ms, t.max_retries), (250, 0));
        let bad = ToolSpec::new("lookup", "https://x.example", SECRET).timeout_ms(249);
        assert!(matches!(
            StoredTool::from_spec(&bad),
            Err(Error::Validation(m)) if m.contains("timeout_ms")
        ));
    }

    #[test]
    fn names() {
        for ok in ["a", "send_email", "crm.v2:lookup-user", &"n".repeat(128)] {
            validate_tool_name(ok).unwrap();
        }
        refused(&with("name", "".into()), "name");
        refused(&with("name", "send email".into()), "name");
        refused(&with("name", "a/b".into()), "name");
        refused(&with("name", "é".into()), "name");
        refused(&with("name", "n".repeat(129).into()), "name");
        refused(&with("name", ".".into()), "name");
        refused(&with("name", "..".into()), "name");
        validate_tool_name("...").unwrap();
        validate_tool_name(".env").unwrap();
        // Refused when made, not when read: a stored one can still be listed and deleted.
        let legacy = StoredTool::from_json(&valid()).unwrap();
        let mut doc = legacy.to_doc();
        doc.insert("name".into(), "..".into());
        assert_eq!(StoredTool::from_doc(&doc).unwrap().name, "..");
        validate_tool_name("..").unwrap();
        refused(&with("name", 5.into()), "name");
        let m = refused(&without("name"), "name");
        assert!(m.contains("required"), "{m}");
    }

    #[test]
    fn scopes() {
        for ok in [
            "global",
            "agent:a",
            "agent:support-bot",
            "agent:ops@example.com",
        ] {
            validate_scope(ok).unwrap();
        }
        for bad in [
            "",
            "Global",
            "agent:",
            "agent:has space",
            "agent:a/b",
            "team:x",
            &format!("agent:{}", "a".repeat(129)),
        ] {
            refused(&with("scope_id", bad.into()), "scope_id");
        }
        refused(&with("scope_id", json!(["global"])), "scope_id");
    }

    #[test]
    fn urls() {
        for bad in [
            "tools.example.com/send",
            "/send",
            "ftp://tools.example.com/",
            "file:///etc/passwd",
            "https://",
            "https://user:pw@tools.example.com/",
            "https://user@tools.example.com/",
            "http://exa mple.com/",
            "https://tools.example.com/se\nnd",
            "https://tools.example.com/\tsend",
            " https://tools.example.com/send",
        ] {
            refused(&with("url", bad.into()), "url");
        }
        refused(
            &with(
                "url",
                format!("https://x.example/{}", "a".repeat(2048)).into(),
            ),
            "url",
        );
        refused(&with("url", json!({"href": "https://x.example"})), "url");
        refused(&without("url"), "url");
        let t = StoredTool::from_json(&with("url", "HTTP://[::1]:9000/a?b=c".into())).unwrap();
        assert_eq!(t.url, "http://[::1]:9000/a?b=c");
    }

    #[test]
    fn auth() {
        refused(&without("auth"), "auth");
        refused(&with_auth(SECRET.into()), "auth");
        refused(&with_auth(json!({"secret": SECRET})), "auth.type");
        let m = refused(
            &with_auth(json!({"type": "basic", "secret": SECRET})),
            "auth.type",
        );
        assert!(m.contains("hmac_sha256"), "{m}");
        refused(&with_auth(json!({"type": "hmac_sha256"})), "auth.secret");
        refused(
            &with_auth(json!({"type": "hmac_sha256", "secret": 12345678})),
            "auth.secret",
        );
        refused(
            &with_auth(json!({"type": "hmac_sha256", "secret": "1234567"})),
            "auth.secret",
        );
        refused(
            &with_auth(json!({"type": "hmac_sha256", "secret": "s".repeat(513)})),
            "auth.secret",
        );
        // Characters, not bytes.
        StoredTool::from_json(&with_auth(
            json!({"type": "hmac_sha256", "secret": "éééééééé"}),
        ))
        .unwrap();
    }

    #[test]
    fn numbers_and_flags() {
        for bad in [
            json!(249),
            json!(120_001),
            json!(-1),
            json!(1.5),
            json!("5000"),
            json!(true),
        ] {
            refused(&with("timeout_ms", bad), "timeout_ms");
        }
        for ok in [250, 120_000] {
            StoredTool::from_json(&with("timeout_ms", ok.into())).unwrap();
        }
        for bad in [json!(11), json!(-1), json!("2"), json!(2.5)] {
            refused(&with("max_retries", bad), "max_retries");
        }
        let m = refused(&with("max_retries", json!(11)), "max_retries");
        assert!(m.contains("between 0 and 10") && m.contains("11"), "{m}");
        refused(&with("enabled", "yes".into()), "enabled");
        refused(&with("enabled", 1.into()), "enabled");
        refused(&with("description", "d".repeat(513).into()), "description");
        refused(&with("description", json!(["d"])), "description");
        StoredTool::from_json(&with("description", "é".repeat(512).into())).unwrap();
    }

    #[test]
    fn the_secret_is_masked_everywhere() {
        let t = StoredTool::from_json(&valid()).unwrap();
        let view = t.view();
        assert_eq!(view.secret_mask.as_deref(), Some("***lue"));
        let id = view.secret_id.clone().unwrap();
        assert!(id.starts_with("sec_") && id.len() == 4 + 32, "{id}");
        assert_eq!(Some(id.as_str()), t.clone().secret_id(), "stable");
        // Random, not a digest of the secret: a short secret cannot be found from its id.
        let digest = hex::encode(Sha256::digest(SECRET.as_bytes()));
        assert!(!digest.contains(&id[4..12]), "{id}");
        assert!(view.has_secret);
        assert_eq!(view.auth_type, "hmac_sha256");
        let shown = serde_json::to_string(&view).unwrap();
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!format!("{view:?} {t:?} {t:#?}").contains(SECRET));

        let other = StoredTool::from_json(&with_auth(
            json!({"type": "hmac_sha256", "secret": "another-secret"}),
        ))
        .unwrap();
        assert_ne!(other.secret_id(), Some(id.as_str()));
    }

    #[test]
    fn a_secret_id_is_kept_while_the_secret_is() {
        let first = StoredTool::from_json(&valid()).unwrap();
        let stored = StoredTool::from_doc(&first.to_doc()).unwrap();
        assert_eq!(
            stored.secret_id(),
            first.secret_id(),
            "the document keeps it"
        );

        // A registration brings no id of its own, whatever its body says.
        let mut forged = valid();
        forged["auth"]["secret_id"] = "sec_chosen".into();
        let mut same = StoredTool::from_json(&forged).unwrap();
        assert_ne!(same.secret_id(), Some("sec_chosen"));
        assert_ne!(same.secret_id(), first.secret_id());
        same.keep_secret_id_of(&stored);
        assert_eq!(same.secret_id(), first.secret_id(), "same secret, same id");

        let mut rotated = StoredTool::from_json(&with_auth(
            json!({"type": "hmac_sha256", "secret": "another-secret"}),
        ))
        .unwrap();
        let new_id = rotated.secret_id().map(str::to_owned);
        rotated.keep_secret_id_of(&stored);
        assert_eq!(
            rotated.secret_id(),
            new_id.as_deref(),
            "a new secret, a new id"
        );

        // A tool stored before ids were random shows none until its secret comes again.
        let mut legacy = first.to_doc();
        legacy["auth"].as_object_mut().unwrap().remove("secret_id");
        assert_eq!(
            StoredTool::from_doc(&legacy).unwrap().view().secret_id,
            None
        );
    }

    #[test]
    fn documents_round_trip() {
        let t = StoredTool::from_json(&valid()).unwrap();
        let doc = t.to_doc();
        assert_eq!(doc["auth"]["secret"], SECRET);
        let back = StoredTool::from_doc(&doc).unwrap();
        assert_eq!(back.view(), t.view());
        assert_eq!(back.secret().expose_secret(), SECRET);
        let mut broken = doc;
        broken.insert("timeout_ms".into(), "soon".into());
        match StoredTool::from_doc(&broken) {
            Err(Error::Store(e)) => assert!(e.to_string().contains("timeout_ms"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
