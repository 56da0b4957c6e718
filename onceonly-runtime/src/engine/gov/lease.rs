//! A lease that is also a governed call: the policy decides before the key is acquired, and
//! the call's limit counters move only when this lease acquires it.

use super::audit::Entry;
use super::decide::limits;
use super::names;
use super::policy::MAX_USD;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::models::{Decision, Governance, Lease, LeaseRequest, PolicyReason, RunStatus};
use crate::store::Store;

/// Largest `args` of a governed call, in bytes of JSON.
pub(crate) const MAX_ARGS_BYTES: usize = 16 * 1024;

/// Checks the governance fields of a call; answers the canonical hash of its arguments.
pub(crate) fn check(
    agent: &str,
    tool: &str,
    args: Option<&crate::JsonMap>,
    spend: Option<f64>,
) -> Result<Option<String>> {
    names::agent_id(agent)?;
    names::tool_name(tool)?;
    if let Some(usd) = spend
        && (!usd.is_finite() || !(0.0..=MAX_USD).contains(&usd))
    {
        return Err(Error::validation(format!(
            "spend_usd must be a number between 0 and 1e9 (got {usd})"
        )));
    }
    let Some(args) = args else { return Ok(None) };
    let value = serde_json::Value::Object(args.clone());
    let size = crate::validate::json_len(&value)?;
    if size > MAX_ARGS_BYTES {
        return Err(Error::validation(format!(
            "args is {size} bytes of JSON; the maximum is {MAX_ARGS_BYTES}"
        )));
    }
    crate::key::canonical_hash(&value).map(Some)
}

/// The answer to a governed lease the policy refused.
fn blocked(key: &str, reason: PolicyReason) -> Lease {
    let mut out = Lease::bare(RunStatus::Blocked, key);
    out.ok = false;
    out.policy_reason = Some(reason.as_str().to_owned());
    out.error_code = Some(reason.as_str().to_owned());
    out
}

impl<S: Store> Engine<S> {
    /// [`Engine::lease`] of a request carrying [`Governance`]: static rules and limits are
    /// checked first (a refusal acquires nothing and answers `blocked`), then the limit
    /// counters are charged and the key acquired. A lease that acquires nothing (someone else
    /// holds the key, or it has a stored outcome) gives the charge back: only an acquisition
    /// is an executed action. A stored result read back this way is a `dedup` decision.
    pub(crate) async fn governed_lease(&self, req: LeaseRequest, gov: Governance) -> Result<Lease> {
        let args_hash = check(&gov.agent_id, &gov.tool, gov.args.as_ref(), gov.spend_usd)?;
        let ctx = self.gov_context(&gov.agent_id).await?;
        let entry = |decision, reason, spend_usd| Entry {
            agent: &gov.agent_id,
            tool: &gov.tool,
            decision,
            reason,
            args_hash: args_hash.clone(),
            spend_usd,
        };
        let key = req.key.clone();
        let refuse = |reason| async move {
            self.audit(entry(Decision::Blocked, reason, 0.0)).await;
            Ok(blocked(&key, reason))
        };
        if let Some(reason) = ctx.refusal(&gov.tool) {
            return refuse(reason).await;
        }
        let spend = ctx.spend(&gov.tool, gov.spend_usd);
        let limits = limits(&ctx, &gov.agent_id, &gov.tool, spend, self.now_ms());
        if let Some(reason) = self.limit_reached(&limits).await? {
            return refuse(reason).await;
        }
        if let Some(reason) = self.charge_limits(&limits).await? {
            return refuse(reason).await;
        }
        let answer = match self.accounted_lease(req).await {
            Ok(answer) => answer,
            Err(e) => {
                self.refund_limits(&limits).await;
                return Err(e);
            }
        };
        if answer.status == RunStatus::Acquired && answer.charged == Some(1) {
            self.audit(entry(Decision::Executed, PolicyReason::Ok, spend))
                .await;
        } else {
            self.refund_limits(&limits).await;
            if answer.status == RunStatus::Completed {
                self.audit(entry(Decision::Dedup, PolicyReason::Duplicate, 0.0))
                    .await;
            }
        }
        Ok(answer)
    }
}
