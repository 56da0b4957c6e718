//! The tools registry: registering a tool (`POST /tools`), the tool as the API shows it, and
//! the answer of a delete.
//!
//! A registered tool is an HTTPS (or HTTP) endpoint that a governed call runs: the engine
//! POSTs the call to its URL, signed with the tool's shared secret (`X-OnceOnly-Signature`).
//! The secret goes in once, with [`ToolSpec`]; no answer shows it again ([`Tool`] carries a
//! mask and a stable id instead).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire::SIGNATURE_ALGORITHM;

/// The scope of a tool every agent sees.
pub(crate) const GLOBAL_SCOPE: &str = "global";
/// Per-call timeout of a tool that does not set one, in milliseconds.
pub(crate) const DEFAULT_TOOL_TIMEOUT_MS: u64 = 15_000;
/// Retries of a tool that does not set them.
pub(crate) const DEFAULT_TOOL_MAX_RETRIES: u32 = 2;

fn global_scope() -> String {
    GLOBAL_SCOPE.to_owned()
}

/// Register (or replace) a tool: the body of `POST /tools`, an upsert keyed by
/// `(name, scope_id)`.
///
/// ```
/// use onceonly_runtime::models::ToolSpec;
///
/// let spec = ToolSpec::new("send_email", "https://tools.example.com/send_email", "tool-secret")
///     .scope_id("agent:support-bot")
///     .timeout_ms(5_000)
///     .max_retries(1)
///     .description("Sends one email");
/// assert!(!format!("{spec:?}").contains("tool-secret"));
/// let wire = serde_json::to_value(&spec).unwrap();
/// assert_eq!(wire["auth"]["type"], "hmac_sha256");
/// assert_eq!(wire["auth"]["secret"], "tool-secret");
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolSpec {
    /// The tool's name, unique per scope: `^[a-zA-Z0-9_.:-]+$`, at most 128 characters.
    pub name: String,
    /// `global` (every agent) or `agent:<agent id>` (one agent). Default `global`.
    #[serde(default = "global_scope")]
    pub scope_id: String,
    /// The endpoint the engine POSTs calls to: an absolute `http` or `https` URL.
    pub url: String,
    /// How calls are signed.
    pub auth: ToolAuth,
    /// Per-attempt timeout, 250 to 120,000 ms; `None`: 15,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt, 0 to 10; `None`: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Whether governed calls may run the tool; `None`: `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// What the tool does, at most 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ToolSpec {
    /// A global tool at `url`, signed with `secret` (HMAC-SHA256), with the default timeout,
    /// retries and `enabled`.
    pub fn new(name: impl Into<String>, url: impl Into<String>, secret: impl Into<String>) -> Self {
        ToolSpec {
            name: name.into(),
            scope_id: global_scope(),
            url: url.into(),
            auth: ToolAuth::hmac_sha256(secret),
            timeout_ms: None,
            max_retries: None,
            enabled: None,
            description: None,
        }
    }

    /// Sets the scope: `global` or `agent:<agent id>`.
    pub fn scope_id(mut self, scope_id: impl Into<String>) -> Self {
        self.scope_id = scope_id.into();
        self
    }

    /// Sets the per-attempt timeout in milliseconds (250 to 120,000).
    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    /// Sets how many times a failed attempt is retried (0 to 10).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Registers the tool enabled or disabled.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Sets the description (at most 512 characters).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// How calls to a tool are signed: `{"type": "hmac_sha256", "secret": "..."}`.
///
/// `Debug` never shows the secret; serializing does (this is what registration sends).
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolAuth {
    /// The algorithm; `hmac_sha256` is the only one.
    #[serde(rename = "type")]
    pub auth_type: String,
    /// The shared secret (at least 8 characters) the tool endpoint verifies signatures with.
    #[serde(serialize_with = "expose", deserialize_with = "conceal")]
    pub secret: SecretString,
}

impl ToolAuth {
    /// HMAC-SHA256 with `secret`.
    pub fn hmac_sha256(secret: impl Into<String>) -> Self {
        ToolAuth {
            auth_type: SIGNATURE_ALGORITHM.to_owned(),
            secret: SecretString::from(secret.into()),
        }
    }
}

impl fmt::Debug for ToolAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolAuth")
            .field("type", &self.auth_type)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn conceal<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

/// A registered tool as the API shows it: the answer of `POST /tools`, `GET /tools/{name}`
/// and the toggle, and an item of `GET /tools`. The secret is never part of it: only
/// [`secret_id`](Self::secret_id) and [`secret_mask`](Self::secret_mask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tool {
    /// The tool's name.
    pub name: String,
    /// `global` or `agent:<agent id>`.
    pub scope_id: String,
    /// The endpoint calls are POSTed to.
    pub url: String,
    /// Per-attempt timeout in milliseconds.
    pub timeout_ms: u64,
    /// Retries after a failed attempt.
    pub max_retries: u32,
    /// Whether governed calls may run the tool.
    pub enabled: bool,
    /// What the tool does.
    pub description: Option<String>,
    /// Whether a secret is set (always, for tools registered through `POST /tools`).
    pub has_secret: bool,
    /// An id of the secret that says nothing about it (`sec_` and 32 random hex digits), kept
    /// while registrations of the tool bring the same secret, so a rotation shows as a new id.
    /// `None` from the hosted API when it sends none, and for a tool stored by a release of
    /// `onceonly-server` before these ids, until its secret is registered again.
    pub secret_id: Option<String>,
    /// `***` and the secret's last 3 characters.
    pub secret_mask: Option<String>,
    /// The signing algorithm, `hmac_sha256`.
    pub auth_type: String,
}

impl Default for Tool {
    /// An unnamed global tool with the documented defaults and no secret.
    fn default() -> Self {
        Tool {
            name: String::new(),
            scope_id: global_scope(),
            url: String::new(),
            timeout_ms: DEFAULT_TOOL_TIMEOUT_MS,
            max_retries: DEFAULT_TOOL_MAX_RETRIES,
            enabled: true,
            description: None,
            has_secret: false,
            secret_id: None,
            secret_mask: None,
            auth_type: SIGNATURE_ALGORITHM.to_owned(),
        }
    }
}

/// The answer of `DELETE /tools/{name}`: `{"ok": true, "deleted": "send_email"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolDeleted {
    /// Whether the tool existed and was deleted.
    #[serde(default)]
    pub ok: bool,
    /// The name of the deleted tool.
    #[serde(default)]
    pub deleted: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_wire_names_and_defaults() {
        let spec: ToolSpec = serde_json::from_value(serde_json::json!({
            "name": "send_email",
            "url": "https://tools.example.com/send",
            "auth": {"type": "hmac_sha256", "secret": "s3cret-value"},
        }))
        .unwrap();
        assert_eq!(spec.scope_id, "global");
        assert_eq!(spec.timeout_ms, None);
        assert_eq!(spec.auth.secret.expose_secret(), "s3cret-value");
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["auth"]["secret"], "s3cret-value");
        assert_eq!(back["scope_id"], "global");
        assert!(back.get("timeout_ms").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let spec = ToolSpec::new("t", "https://x.example", "very-secret-value")
            .description("d")
            .enabled(false);
        let debug = format!("{spec:?} {:?} {:#?}", spec.auth, spec);
        assert!(!debug.contains("very-secret-value"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn tool_view_reads_sparse_answers() {
        let t: Tool =
            serde_json::from_value(serde_json::json!({"name": "x", "enabled": false})).unwrap();
        assert_eq!(t.timeout_ms, DEFAULT_TOOL_TIMEOUT_MS);
        assert_eq!(t.scope_id, "global");
        assert!(!t.enabled);
        let d: ToolDeleted =
            serde_json::from_value(serde_json::json!({"ok": true, "deleted": "send_email"}))
                .unwrap();
        assert_eq!(d.deleted, "send_email");
    }
}
