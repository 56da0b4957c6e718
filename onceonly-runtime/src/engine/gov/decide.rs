//! The policy decision of one governed call: the static checks (kill switch, deny list, allow
//! list), then the limit counters (hourly actions, per-tool daily calls, daily spend), in the
//! order of the governance rules.
//!
//! Limits are counters in the store, one group per agent, changed together by one atomic
//! `add_counters` call with their limits: concurrent calls never take any of them past its
//! limit, and a refused call moves none of them. Counters exist only for limits a policy sets.

use super::names::{self, counter_group};
use crate::engine::Engine;
use crate::error::Result;
use crate::models::{AgentStatus, Policy, PolicyReason};
use crate::store::{CounterAdd, CounterDelta, Store};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;
/// Spend counters count micro-dollars.
const MICRO: f64 = 1e6;

/// What the engine knows of an agent when it decides: its policy and kill-switch state.
#[derive(Debug, Default)]
pub(crate) struct Context {
    pub(crate) policy: Option<Policy>,
    pub(crate) status: Option<AgentStatus>,
}

impl Context {
    /// The first static rule that refuses `tool`.
    pub(crate) fn refusal(&self, tool: &str) -> Option<PolicyReason> {
        if self.status.as_ref().is_some_and(|s| !s.is_enabled) {
            return Some(PolicyReason::AgentDisabled);
        }
        let policy = self.policy.as_ref()?;
        let listed = |list: &Option<Vec<String>>| {
            list.iter()
                .flatten()
                .any(|pattern| names::matches(pattern, tool))
        };
        if listed(&policy.blocked_tools) {
            return Some(PolicyReason::ToolBlocked);
        }
        let allow = policy.allowed_tools.as_deref().unwrap_or_default();
        if !allow.is_empty() && !listed(&policy.allowed_tools) {
            return Some(PolicyReason::ToolNotInAllowedList);
        }
        None
    }

    /// The USD a call of `tool` accounts: `explicit`, else the policy's price (an exact rule
    /// first, then the first matching pattern), else 0.
    pub(crate) fn spend(&self, tool: &str, explicit: Option<f64>) -> f64 {
        if let Some(usd) = explicit {
            return usd;
        }
        let rules = self
            .policy
            .as_ref()
            .and_then(|p| p.pricing_rules.as_deref())
            .unwrap_or_default();
        rules
            .iter()
            .find(|r| r.tool == tool)
            .or_else(|| rules.iter().find(|r| names::matches(&r.tool, tool)))
            .map_or(0.0, |r| r.price_usd)
    }
}

/// One limit counter a call moves.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    key: String,
    delta: u64,
    limit: u64,
    expires_at_ms: u64,
    reason: PolicyReason,
}

/// The limit counters of one call of `tool` by `agent` spending `usd`, in decision order.
pub(crate) fn limits(ctx: &Context, agent: &str, tool: &str, usd: f64, now_ms: u64) -> Vec<Limit> {
    let Some(policy) = &ctx.policy else {
        return Vec::new();
    };
    let group = counter_group(agent);
    let (hour, day) = (now_ms / HOUR_MS, now_ms / DAY_MS);
    let day_end = (day + 1) * DAY_MS;
    let mut out = Vec::new();
    if let Some(limit) = policy.max_actions_per_hour {
        out.push(Limit {
            key: format!("{group}h/{hour}"),
            delta: 1,
            limit,
            expires_at_ms: (hour + 1) * HOUR_MS,
            reason: PolicyReason::HourlyActionLimit,
        });
    }
    for (pattern, &limit) in policy.max_calls_per_tool.iter().flatten() {
        if names::matches(pattern, tool) {
            out.push(Limit {
                key: format!("{group}c/{day}/{pattern}"),
                delta: 1,
                limit,
                expires_at_ms: day_end,
                reason: PolicyReason::ToolCallLimit,
            });
        }
    }
    if let Some(max) = policy.max_spend_usd_per_day {
        out.push(Limit {
            key: format!("{group}s/{day}"),
            // Rounded against the caller: a spend of a fraction of a micro-dollar still counts
            // one (many of them would otherwise pass a zero budget), and a limit counts only
            // whole ones.
            delta: micros(usd, f64::ceil),
            limit: micros(max, f64::floor),
            expires_at_ms: day_end,
            reason: PolicyReason::DailySpendExceeded,
        });
    }
    out
}

/// USD as whole micro-dollars (the unit of spend counters), rounded by `whole` unless it is a
/// whole number but for float noise (`0.0003` USD is 299.99999999999994 micro-dollars).
pub(crate) fn micros(usd: f64, whole: fn(f64) -> f64) -> u64 {
    let m = usd * MICRO;
    let nearest = m.round();
    let m = if (m - nearest).abs() < 1e-6 {
        nearest
    } else {
        whole(m)
    };
    m.max(0.0) as u64
}

impl<S: Store> Engine<S> {
    /// The first limit that one more call would pass, reading the counters (no change).
    pub(crate) async fn limit_reached(&self, limits: &[Limit]) -> Result<Option<PolicyReason>> {
        let now = self.now_ms();
        for l in limits {
            let value = self.inner.store.get_counter(&l.key, now).await?;
            if value.saturating_add(l.delta) > l.limit {
                return Ok(Some(l.reason));
            }
        }
        Ok(None)
    }

    /// Moves every counter of `limits` at once, or none: `Some(reason)` names the limit that
    /// refused.
    pub(crate) async fn charge_limits(&self, limits: &[Limit]) -> Result<Option<PolicyReason>> {
        if limits.is_empty() {
            return Ok(None);
        }
        let adds: Vec<CounterDelta<'_>> = limits
            .iter()
            .map(|l| CounterDelta {
                key: &l.key,
                delta: l.delta as i64,
                limit: Some(l.limit),
                expires_at_ms: l.expires_at_ms,
            })
            .collect();
        match self.inner.store.add_counters(&adds, self.now_ms()).await? {
            CounterAdd::Added(_) => Ok(None),
            // The store says that one refused, not which: the counters tell (the first one
            // full; if a racer's refund emptied it meanwhile, the first limit stands in).
            CounterAdd::Refused(_) => Ok(Some(
                self.limit_reached(limits)
                    .await?
                    .unwrap_or(limits[0].reason),
            )),
        }
    }

    /// Gives back what [`charge_limits`](Self::charge_limits) took, for a call that did not
    /// run after all. Bookkeeping: a failure is logged, not returned.
    pub(crate) async fn refund_limits(&self, limits: &[Limit]) {
        let adds: Vec<CounterDelta<'_>> = limits
            .iter()
            .map(|l| CounterDelta {
                key: &l.key,
                delta: -(l.delta as i64),
                limit: None,
                expires_at_ms: l.expires_at_ms,
            })
            .collect();
        if adds.is_empty() {
            return;
        }
        if let Err(e) = self.inner.store.add_counters(&adds, self.now_ms()).await {
            tracing::warn!(error = %e, "could not refund governance counters");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(policy: Policy) -> Context {
        Context {
            policy: Some(policy),
            status: None,
        }
    }

    #[test]
    fn static_rules_apply_in_order() {
        let c = ctx(Policy::new("a")
            .allowed_tools(["read_*", "send_email"])
            .blocked_tools(["read_secrets"]));
        assert_eq!(c.refusal("read_orders"), None);
        assert_eq!(c.refusal("read_secrets"), Some(PolicyReason::ToolBlocked));
        assert_eq!(
            c.refusal("charge"),
            Some(PolicyReason::ToolNotInAllowedList)
        );
        let mut off = ctx(Policy::new("a"));
        off.status = Some(AgentStatus {
            agent_id: "a".into(),
            is_enabled: false,
            disabled_reason: None,
            disabled_at: None,
        });
        assert_eq!(off.refusal("anything"), Some(PolicyReason::AgentDisabled));
        assert_eq!(Context::default().refusal("anything"), None);
    }

    #[test]
    fn spend_prefers_the_call_then_exact_then_pattern_prices() {
        let c = ctx(Policy::new("a")
            .price("stripe.*", 0.5)
            .price("stripe.charge", 2.0));
        assert_eq!(c.spend("stripe.charge", Some(1.0)), 1.0);
        assert_eq!(c.spend("stripe.charge", None), 2.0);
        assert_eq!(c.spend("stripe.refund", None), 0.5);
        assert_eq!(c.spend("email", None), 0.0);
    }

    #[test]
    fn limits_follow_the_policy() {
        let p = Policy::new("a")
            .max_actions_per_hour(10)
            .max_calls_per_tool("send_*", 3)
            .max_spend_usd_per_day(1.5);
        let l = limits(&ctx(p), "a", "send_email", 0.25, 0);
        let reasons: Vec<_> = l.iter().map(|l| l.reason).collect();
        assert_eq!(
            reasons,
            [
                PolicyReason::HourlyActionLimit,
                PolicyReason::ToolCallLimit,
                PolicyReason::DailySpendExceeded
            ]
        );
        assert_eq!((l[2].delta, l[2].limit), (250_000, 1_500_000));
        assert!(limits(&Context::default(), "a", "t", 1.0, 0).is_empty());
    }

    #[test]
    fn spend_rounds_against_the_caller_but_not_on_float_noise() {
        let spend = |usd| micros(usd, f64::ceil);
        let limit = |usd| micros(usd, f64::floor);
        // A fraction of a micro-dollar still costs one: a zero budget lets none through.
        assert_eq!(spend(0.0000004), 1);
        assert_eq!(limit(0.0000015), 1);
        // Whole amounts stay whole whatever the float error of the product.
        assert_eq!(spend(0.0003), 300);
        assert_eq!(limit(0.0003), 300);
        assert_eq!(spend(0.1 + 0.2), 300_000);
        assert_eq!((spend(0.0), spend(-1.0)), (0, 0));
    }
}
