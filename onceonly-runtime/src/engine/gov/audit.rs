//! The per-agent audit log and the metrics read from it.
//!
//! Every decision of a governed call appends one entry to the account's audit log, tagged with
//! its agent; an agent's log is that agent's topic. One capped log per account (newest
//! entries kept, [`AUDIT_CAPS`]) bounds what the audit keeps however many agent ids callers
//! use. Metrics aggregate an agent's entries of the last hour, day or week, so they are exact
//! while the log still holds the whole period (50,000 decisions, fewer when long names fill
//! its 16 MiB first).

use std::collections::HashMap;

use super::names::{self, AUDIT_LOG};
use crate::engine::Engine;
use crate::engine::events::SCAN_SLICE;
use crate::error::{Error, Result};
use crate::models::{AgentLogItem, AgentMetrics, Decision, MetricsPeriod, PolicyReason, ToolCount};
use crate::store::{LogCaps, LogRef, Store};
use crate::time::ms;

/// What an account's audit log keeps (the oldest entries go first): 50,000 decisions, at most
/// 16 MiB of JSON.
pub(crate) const AUDIT_CAPS: LogCaps = LogCaps {
    entries: 50_000,
    bytes: 16 * 1024 * 1024,
};
/// Largest page of `agent_logs`.
pub(crate) const MAX_LOGS_PAGE: u32 = 500;
/// Tools listed in `top_tools`.
const TOP_TOOLS: usize = 10;

/// One decision, as the engine records it.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub(crate) agent: &'a str,
    pub(crate) tool: &'a str,
    pub(crate) decision: Decision,
    pub(crate) reason: PolicyReason,
    pub(crate) args_hash: Option<String>,
    pub(crate) spend_usd: f64,
}

impl<S: Store> Engine<S> {
    /// Appends a decision to its agent's log. The decision stands whether or not this write
    /// succeeds; a failure is logged.
    pub(crate) async fn audit(&self, e: Entry<'_>) {
        let now = self.now_ms();
        let item = AgentLogItem {
            ts: (now / 1000) as i64,
            agent_id: e.agent.to_owned(),
            tool: Some(e.tool.to_owned()),
            allowed: e.decision != Decision::Blocked,
            decision: e.decision.as_str().to_owned(),
            policy_reason: Some(e.reason.as_str().to_owned()),
            risk_level: Some(e.reason.risk_level().as_str().to_owned()),
            args_hash: e.args_hash,
            spend_usd: e.spend_usd,
        };
        let Ok(serde_json::Value::Object(value)) = serde_json::to_value(&item) else {
            return;
        };
        let expires = now + ms(self.inner.config.retention);
        let log = LogRef::topic(AUDIT_LOG, e.agent);
        let written = self
            .inner
            .store
            .append_log(log, value, AUDIT_CAPS, now, expires)
            .await;
        if let Err(err) = written {
            tracing::warn!(agent = e.agent, error = %err, "could not write an audit entry");
        }
    }

    /// `GET /agents/{id}/logs`: the newest `limit` (1 to 500) decisions, newest first.
    pub async fn agent_logs(&self, agent_id: &str, limit: u32) -> Result<Vec<AgentLogItem>> {
        names::agent_id(agent_id)?;
        if limit == 0 || limit > MAX_LOGS_PAGE {
            return Err(Error::validation(format!(
                "limit must be between 1 and {MAX_LOGS_PAGE}"
            )));
        }
        self.read_audit(agent_id, limit as usize).await
    }

    async fn read_audit(&self, agent: &str, limit: usize) -> Result<Vec<AgentLogItem>> {
        let page = self.read_audit_page(agent, 0, limit).await?;
        Ok(page.into_iter().map(|(_, item)| item).collect())
    }

    /// `limit` decisions of `agent` with their sequence numbers, newest first, from the
    /// `offset`-th newest.
    async fn read_audit_page(
        &self,
        agent: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(u64, AgentLogItem)>> {
        let page = self
            .inner
            .store
            .read_log(
                LogRef::topic(AUDIT_LOG, agent),
                true,
                offset,
                limit,
                self.now_ms(),
            )
            .await?;
        page.entries
            .into_iter()
            .map(|e| {
                let map = std::sync::Arc::unwrap_or_clone(e.value);
                Ok((
                    e.seq,
                    serde_json::from_value(serde_json::Value::Object(map))?,
                ))
            })
            .collect()
    }

    /// `GET /agents/{id}/metrics`: the agent's governed calls over the last hour, day or week.
    pub async fn agent_metrics(
        &self,
        agent_id: &str,
        period: MetricsPeriod,
    ) -> Result<AgentMetrics> {
        names::agent_id(agent_id)?;
        let since = (self.now_ms() / 1000) as i64 - period.seconds();
        let mut m = AgentMetrics {
            agent_id: agent_id.to_owned(),
            period,
            total_actions: 0,
            blocked_actions: 0,
            total_spend_usd: 0.0,
            top_tools: Vec::new(),
        };
        let mut per_tool: HashMap<String, u64> = HashMap::new();
        // Newest first, a slice at a time, so a call holds one slice, not the whole log: stop
        // at the first entry older than the window. An append during the scan shifts the next
        // slice back; entries already counted (by sequence number) are skipped.
        let (mut from, mut below) = (0, u64::MAX);
        'scan: while from < 2 * AUDIT_CAPS.entries {
            let items = self.read_audit_page(agent_id, from, SCAN_SLICE).await?;
            for (seq, item) in &items {
                if *seq >= below {
                    continue;
                }
                below = *seq;
                if item.ts <= since {
                    break 'scan;
                }
                m.total_actions += 1;
                if !item.allowed {
                    m.blocked_actions += 1;
                }
                m.total_spend_usd += item.spend_usd;
                if let Some(tool) = &item.tool {
                    *per_tool.entry(tool.clone()).or_default() += 1;
                }
            }
            if items.len() < SCAN_SLICE {
                break;
            }
            from += items.len();
        }
        // Sums of float prices drift in the last digits; a cent's millionth is plenty.
        m.total_spend_usd = (m.total_spend_usd * 1e6).round() / 1e6;
        let mut top: Vec<ToolCount> = per_tool
            .into_iter()
            .map(|(tool, count)| ToolCount { tool, count })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.tool.cmp(&b.tool)));
        top.truncate(TOP_TOOLS);
        m.top_tools = top;
        Ok(m)
    }
}
