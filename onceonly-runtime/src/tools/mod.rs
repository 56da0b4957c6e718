//! The tools registry's building blocks: reading and checking a registration
//! ([`StoredTool`]), the host allow-list ([`ToolHosts`]), the signed outbound call
//! ([`ToolCaller`]) and the signing primitive both directions share.
//!
//! The engine stores [`StoredTool::to_doc`] documents and calls [`ToolCaller::call`] for a
//! governed call of a registered tool; `onceonly-server` hands raw bodies to
//! [`StoredTool::from_json`]; `onceonly-tower` verifies signatures with
//! [`signature::signature_matches`]. Nothing here is public API: the sibling crates reach it
//! through `__private::tools`.

mod hosts;
mod outbound;
pub(crate) mod signature;
mod spec;

pub use self::hosts::ToolHosts;
pub use self::outbound::{MAX_RESPONSE_BYTES, ToolCaller, ToolFailure, ToolFailureKind};
pub(crate) use self::spec::routable;
pub use self::spec::{
    MAX_AGENT_ID_CHARS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_RETRIES, MAX_SECRET_CHARS,
    MAX_TIMEOUT_MS, MAX_URL_BYTES, MIN_SECRET_CHARS, MIN_TIMEOUT_MS, StoredTool, validate_agent_id,
    validate_scope, validate_tool_name,
};
