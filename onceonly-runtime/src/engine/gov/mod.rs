//! Governance: what an agent may call, how often and for how much, decided by the engine for
//! every backend (the embedded client and `onceonly-server` run this same code).
//!
//! A governed call (a tool-mode run, or a lease carrying `agent_id` and `tool`) is decided in
//! this order: `agent_disabled` → `tool_blocked` → `tool_not_in_allowed_list` → for registry
//! tools `tool_not_found` / `tool_disabled` → `hourly_action_limit` → `tool_call_limit` →
//! `daily_spend_exceeded` → deduplication (an identical call's stored result, decision
//! `dedup`) → `executed`. Counters move only for executed calls and never pass a limit under
//! concurrency; every decision is written to the agent's audit log.
//!
//! Policies and kill-switch states are store documents (`gov/policy/<agent>`,
//! `gov/agent/<agent>`), so every process over a shared store sees the same ones.

mod audit;
mod decide;
mod lease;
pub(crate) mod names;
pub(crate) mod policy;
mod run_tool;
mod tools;

pub(crate) use lease::check as check_call;
pub(crate) use run_tool::reserved as reserved_key;
pub use tools::ToolFn;
pub(crate) use tools::ToolRuntime;

use self::decide::Context;
use super::Engine;
use crate::error::{Error, JsonMap, Result};
use crate::models::{AgentStatus, Policy};
use crate::store::Store;
use crate::time::datetime_from_ms;

/// Longest kill-switch reason, in bytes.
const MAX_REASON_BYTES: usize = 512;
/// Most documents of each kind an account keeps: policies, kill-switch states, registered
/// tools. What bounds the governance documents one account can create; `list_policies`
/// returns them all.
pub(crate) const MAX_GOV_DOCS: usize = 10_000;

fn to_doc(value: &impl serde::Serialize) -> Result<JsonMap> {
    match serde_json::to_value(value)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(Error::Config(
            "a governance document must be an object".into(),
        )),
    }
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: &JsonMap) -> Result<T> {
    Ok(serde_json::from_value(serde_json::Value::Object(
        doc.clone(),
    ))?)
}

impl<S: Store> Engine<S> {
    /// Stores `policy` for its `agent_id`, replacing the previous one. Every field is checked
    /// (non-negative limits, tool names or `*` patterns, at most 1,000 entries per list);
    /// nothing is stored when one is wrong.
    pub async fn upsert_policy(&self, policy: Policy) -> Result<Policy> {
        let policy = policy::check(&policy)?;
        let key = names::policy_doc(&policy.agent_id);
        self.new_or_stored(&policy.agent_id, &key).await?;
        let caps = [(names::POLICY_DOCS, MAX_GOV_DOCS, "policies")];
        self.put_gov_doc(&key, to_doc(&policy)?, &caps).await?;
        Ok(policy)
    }

    /// Stores the policy of a built-in template (`strict`, `moderate`, `permissive`,
    /// `read_only`, `support_bot`) for `agent_id`, its fields replaced by `overrides`.
    pub async fn policy_from_template(
        &self,
        agent_id: &str,
        template: &str,
        overrides: JsonMap,
    ) -> Result<Policy> {
        let policy = policy::from_template(agent_id, template, overrides)?;
        self.upsert_policy(policy).await
    }

    /// The policy of `agent_id`; [`Error::NotFound`] when it has none.
    pub async fn get_policy(&self, agent_id: &str) -> Result<Policy> {
        names::agent_id(agent_id)?;
        self.policy_of(agent_id)
            .await?
            .ok_or_else(|| Error::policy_not_found(agent_id))
    }

    async fn policy_of(&self, agent_id: &str) -> Result<Option<Policy>> {
        let doc = self
            .inner
            .store
            .get_doc(&names::policy_doc(agent_id))
            .await?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    /// Every stored policy, by agent id.
    pub async fn list_policies(&self) -> Result<Vec<Policy>> {
        let docs = self
            .inner
            .store
            .list_docs(names::POLICY_DOCS, MAX_GOV_DOCS)
            .await?;
        docs.iter().map(|(_, d)| from_doc(d)).collect()
    }

    /// Turns the kill switch on: every governed call of `agent_id` is blocked
    /// (`agent_disabled`) until [`enable_agent`](Self::enable_agent).
    pub async fn disable_agent(&self, agent_id: &str, reason: Option<&str>) -> Result<AgentStatus> {
        names::new_agent_id(agent_id)?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if let Some(r) = reason
            && (r.len() > MAX_REASON_BYTES || r.chars().any(char::is_control))
        {
            return Err(Error::validation(format!(
                "reason must be at most {MAX_REASON_BYTES} bytes without control characters"
            )));
        }
        let status = AgentStatus {
            agent_id: agent_id.to_owned(),
            is_enabled: false,
            disabled_reason: reason.map(str::to_owned),
            // The engine's clock, to the millisecond like every other time it answers.
            disabled_at: Some(datetime_from_ms(self.now_ms())),
        };
        self.put_status(&status).await?;
        Ok(status)
    }

    /// Turns the kill switch off.
    pub async fn enable_agent(&self, agent_id: &str) -> Result<AgentStatus> {
        names::agent_id(agent_id)?;
        self.new_or_stored(agent_id, &names::agent_doc(agent_id))
            .await?;
        let status = AgentStatus {
            agent_id: agent_id.to_owned(),
            is_enabled: true,
            disabled_reason: None,
            disabled_at: None,
        };
        self.put_status(&status).await?;
        Ok(status)
    }

    /// Refuses an agent id of `.` or `..` (see [`names::new_agent_id`]) unless `doc`, its
    /// policy or kill-switch state, was stored by an earlier release: that one stays
    /// changeable.
    async fn new_or_stored(&self, agent_id: &str, doc: &str) -> Result<()> {
        match names::new_agent_id(agent_id) {
            Err(e) if self.inner.store.get_doc(doc).await?.is_none() => Err(e),
            _ => Ok(()),
        }
    }

    async fn put_status(&self, status: &AgentStatus) -> Result<()> {
        let caps = [(names::AGENT_DOCS, MAX_GOV_DOCS, "kill-switch states")];
        let key = names::agent_doc(&status.agent_id);
        self.put_gov_doc(&key, to_doc(status)?, &caps).await
    }

    /// Writes the governance document `key`. A new document is refused ([`Error::Validation`])
    /// when one of `caps` (a key prefix, its most documents, what they are) is full; replacing
    /// a document always works. Two concurrent creations may pass a cap by one each.
    async fn put_gov_doc(
        &self,
        key: &str,
        doc: JsonMap,
        caps: &[(&str, usize, &str)],
    ) -> Result<()> {
        let store = &self.inner.store;
        if store.get_doc(key).await?.is_none() {
            for &(prefix, cap, what) in caps {
                if store.count_docs(prefix).await? >= cap as u64 {
                    return Err(Error::validation(format!(
                        "the account already has {cap} {what}, the maximum; this one was not stored"
                    )));
                }
            }
        }
        store.put_doc(key, doc).await
    }

    /// The policy and kill-switch state of `agent`, read together.
    pub(crate) async fn gov_context(&self, agent: &str) -> Result<Context> {
        let status_key = names::agent_doc(agent);
        let (policy, status) =
            tokio::join!(self.policy_of(agent), self.inner.store.get_doc(&status_key));
        Ok(Context {
            policy: policy?,
            status: status?.map(|d| from_doc(&d)).transpose()?,
        })
    }
}
