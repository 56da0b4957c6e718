//! Names in governance (agent ids, tool names, allow/deny patterns) and the store keys built
//! from them. Names are restricted so that a store key built from them is unambiguous: no `/`
//! (key separator) and no `#` (counter group end).

use crate::error::{Error, Result};

/// An agent id: 1 to 128 ASCII letters, digits, `_`, `.`, `:`, `-` or `@`.
pub(crate) fn agent_id(id: &str) -> Result<()> {
    crate::tools::validate_agent_id(id)
}

/// An agent id given to a new policy or kill-switch state: also not `.` or `..` (see
/// [`routable`](crate::tools::routable)).
pub(crate) fn new_agent_id(id: &str) -> Result<()> {
    agent_id(id)?;
    crate::tools::routable("agent id", id)
}

/// A tool name: 1 to 128 characters matching `^[a-zA-Z0-9_.:-]+$`.
pub(crate) fn tool_name(name: &str) -> Result<()> {
    crate::tools::validate_tool_name(name)
}

/// A tool name in an allow/deny list or a per-tool rule: a tool name, optionally ending in `*`
/// (a prefix pattern; `*` alone matches every tool).
pub(crate) fn tool_pattern(field: &str, pattern: &str) -> Result<()> {
    let stem = pattern.strip_suffix('*').unwrap_or(pattern);
    if stem.is_empty() && pattern == "*" {
        return Ok(());
    }
    tool_name(stem).map_err(|_| {
        Error::validation(format!(
            "{field}: {pattern:?} is not a tool name (^[a-zA-Z0-9_.:-]+$, optionally ending in `*`)"
        ))
    })
}

/// Whether `tool` matches `pattern` (exact, or a prefix when the pattern ends in `*`).
pub(crate) fn matches(pattern: &str, tool: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => tool.starts_with(prefix),
        None => pattern == tool,
    }
}

/// Document keys.
pub(super) fn policy_doc(agent: &str) -> String {
    format!("{POLICY_DOCS}{agent}")
}
pub(super) const POLICY_DOCS: &str = "gov/policy/";

pub(super) fn agent_doc(agent: &str) -> String {
    format!("{AGENT_DOCS}{agent}")
}
pub(super) const AGENT_DOCS: &str = "gov/agent/";
/// Every registered tool's document starts with this, then its scope.
pub(super) const TOOL_DOCS: &str = "gov/tool/";

/// The account's audit log; each entry's topic is its agent.
pub(super) const AUDIT_LOG: &str = "gov/audit";

/// The counter group of an agent: every limit counter of one governed call is in it, so the
/// store changes them in one atomic step.
pub(super) fn counter_group(agent: &str) -> String {
    format!("gov/{agent}{}", crate::store::COUNTER_GROUP_END)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        assert!(matches("send_email", "send_email"));
        assert!(!matches("send_email", "send_emails"));
        assert!(matches("read_*", "read_orders"));
        assert!(matches("*", "anything"));
        assert!(!matches("read_*", "write_orders"));
    }

    #[test]
    fn names_refuse_separators() {
        assert!(agent_id("billing-agent@v2").is_ok());
        for bad in ["", "a/b", "a#b", "a b", &"x".repeat(129)] {
            assert!(agent_id(bad).is_err(), "{bad:?}");
        }
        for bad in [".", ".."] {
            assert!(new_agent_id(bad).is_err(), "{bad:?}");
            assert!(
                agent_id(bad).is_ok(),
                "{bad:?} can still be read and deleted"
            );
        }
        assert!(tool_pattern("allowed_tools", ".*").is_ok());
        assert!(tool_name("stripe.charge:v1").is_ok());
        for bad in ["", "a/b", "a*", "a b", "é"] {
            assert!(tool_name(bad).is_err(), "{bad:?}");
        }
        assert!(tool_pattern("blocked_tools", "delete_*").is_ok());
        assert!(tool_pattern("blocked_tools", "*").is_ok());
        assert!(tool_pattern("blocked_tools", "de*te").is_err());
    }
}
