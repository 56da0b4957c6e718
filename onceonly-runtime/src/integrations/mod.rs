//! Guards for the tools of LLM frameworks: each tool call becomes a governed, exactly-once
//! `run_fn`, so the agent's policy decides before the tool runs and a model that repeats a call
//! gets the stored output back instead of causing the side effect twice.
//!
//! - [`rig`] (feature `rig`): [`Governed`](rig::Governed) wraps one rig `Tool`.
//! - [`rmcp`] (feature `rmcp`): [`guard`](rmcp::guard) wraps every tool of an rmcp `ToolRouter`.
//!
//! Both key a call on the agent, the tool name and the canonical JSON of its arguments (object
//! keys sorted, see [`canonical_hash`](crate::canonical_hash)), never on the model's per-turn
//! call id: two turns that ask for the same thing are one call. The arguments also go to the
//! policy's audit log, so they must fit its 16 KiB limit. A failed call (an `Err` from the
//! tool) releases its key, so asking again runs the tool again. The policy's limits come before
//! deduplication (the engine's decision order), so once a cap or the daily budget is reached an
//! identical call is refused too, not replayed.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::OnceOnly;
use crate::error::{Error, JsonMap, Result};

#[cfg(feature = "rig")]
pub mod rig;
#[cfg(feature = "rmcp")]
pub mod rmcp;

/// The options both guards offer, as by-value builder methods of a type whose `guard` field is
/// a [`CallGuard`]. `$prefix` is its default key prefix, `$scope` what a prefix usually names.
macro_rules! guard_options {
    ($prefix:literal, $scope:literal) => {
        /// The spend each executed call accounts against the agent's daily budget (default:
        /// the policy's price for the tool, else 0).
        pub fn spend_usd(mut self, usd: f64) -> Self {
            self.guard.spend_usd = Some(usd);
            self
        }

        #[doc = concat!("Prefix of the record keys (default `", $prefix, "`). Identical calls")]
        #[doc = concat!("dedupe within one prefix: a prefix per ", $scope, " or per user narrows")]
        /// deduplication to it.
        pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.guard.key_prefix = prefix.into();
            self
        }

        /// How long one call may run before an identical call may take over (default 300 s;
        /// a heartbeat extends it while the tool runs).
        pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
            self.guard.ttl = ttl;
            self
        }
    };
}
use guard_options;

/// Default lease TTL of a guarded call: how long a tool may run before an identical call may
/// take over.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// What both guards share: who calls, what a call costs, and how its key is made.
#[derive(Clone)]
pub(crate) struct CallGuard {
    client: OnceOnly,
    agent_id: String,
    key_prefix: String,
    spend_usd: Option<f64>,
    ttl: Duration,
}

impl std::fmt::Debug for CallGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallGuard")
            .field("agent_id", &self.agent_id)
            .field("key_prefix", &self.key_prefix)
            .field("spend_usd", &self.spend_usd)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CallGuard {
    pub(crate) fn new(client: OnceOnly, agent_id: String, key_prefix: &str) -> Self {
        CallGuard {
            client,
            agent_id,
            key_prefix: key_prefix.to_owned(),
            spend_usd: None,
            ttl: DEFAULT_TTL,
        }
    }

    /// The record key of a call: the prefix, then a digest of agent, tool and canonical
    /// arguments, so any names and arguments fit the key length limit.
    fn key(&self, tool: &str, args: &Value) -> Result<String> {
        let digest = crate::key::canonical_hash(&(&self.agent_id, tool, args))?;
        Ok(format!("{}{digest}", self.key_prefix))
    }

    /// Runs `f` as a governed `run_fn` of `tool` with `args`: refused by the policy (the
    /// function never runs), run once, or replayed from the stored value.
    pub(crate) async fn run<F, Fut, T, E>(&self, tool: &str, args: Value, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Serialize + DeserializeOwned + Send,
        E: From<Error> + Send,
    {
        let key = self.key(tool, &args)?;
        let mut call = self
            .client
            .ai()
            .run_fn(key, f)
            .governed(self.agent_id.as_str(), tool)
            .args(as_object(args))
            .ttl(self.ttl);
        if let Some(usd) = self.spend_usd {
            call = call.spend_usd(usd);
        }
        call.await
    }
}

/// Governance takes arguments as an object; anything else is wrapped as `{"value": ..}`, the
/// same convention as stored results.
fn as_object(args: Value) -> JsonMap {
    match args {
        Value::Object(map) => map,
        Value::Null => JsonMap::new(),
        other => JsonMap::from_iter([("value".to_owned(), other)]),
    }
}

/// What the model reads when the policy refused a call.
pub(crate) fn refusal_text(reason: &str) -> String {
    format!("refused by policy ({reason}): the tool did not run")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_depend_on_agent_tool_and_canonical_args_only() {
        let a = CallGuard::new(OnceOnly::memory(), "agent-1".into(), "p:");
        let k = a.key("t", &json!({"x": 1, "y": [1, 2]})).unwrap();
        assert!(k.starts_with("p:") && k.len() == 2 + 64, "{k}");
        assert_eq!(k, a.key("t", &json!({"y": [1, 2], "x": 1})).unwrap());
        assert_ne!(k, a.key("u", &json!({"x": 1, "y": [1, 2]})).unwrap());
        assert_ne!(k, a.key("t", &json!({"x": 2, "y": [1, 2]})).unwrap());
        let b = CallGuard::new(OnceOnly::memory(), "agent-2".into(), "p:");
        assert_ne!(k, b.key("t", &json!({"x": 1, "y": [1, 2]})).unwrap());
    }

    #[test]
    fn non_object_args_are_wrapped() {
        assert_eq!(
            as_object(json!(3)),
            json!({"value": 3}).as_object().cloned().unwrap()
        );
        assert!(as_object(Value::Null).is_empty());
    }
}
