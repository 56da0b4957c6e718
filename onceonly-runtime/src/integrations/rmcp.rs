//! [`guard`]: every tool of an rmcp [`ToolRouter`] governed and deduplicated by OnceOnly
//! (feature `rmcp`, rmcp 3.11 with its `server` and `macros` features).
//!
//! Wrap the router where the server builds it, and point `#[tool_handler]` at that field:
//!
//! ```
//! use onceonly_runtime::{OnceOnly, integrations::rmcp::guard};
//! use rmcp::handler::server::{tool::ToolRouter, wrapper::Parameters};
//! use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Email { to: String }
//!
//! #[derive(Clone)]
//! struct Mailer { tool_router: ToolRouter<Self> }
//!
//! #[tool_router]
//! impl Mailer {
//!     fn new(client: OnceOnly) -> Self {
//!         // The one line: every tool below is governed for agent "support-bot".
//!         Mailer { tool_router: guard(client, "support-bot").router(Self::tool_router()) }
//!     }
//!
//!     #[tool(description = "Send an email")]
//!     async fn send_email(&self, Parameters(email): Parameters<Email>) -> String {
//!         format!("sent to {}", email.to) // the side effect
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Mailer {}
//!
//! let server = Mailer::new(OnceOnly::memory());
//! assert!(server.tool_router.has_route("send_email"));
//! ```
//!
//! # What a call does
//!
//! The key is the agent id, the tool name and the canonical JSON of `arguments` (under the key
//! prefix, default `mcp:`), not the JSON-RPC request id. Then:
//! - the policy refuses (kill switch, deny/allow lists, hourly and per-tool caps, daily
//!   budget): the tool does not run and the client gets a `CallToolResult` with
//!   `is_error: true` and one text block naming the reason
//!   (`refused by policy (agent_disabled): ...`): a tool error the model reads, not a protocol
//!   error;
//! - first call: the tool runs and its `CallToolResult` is stored;
//! - identical later call (or one that waited for a concurrent one): the stored result,
//!   without running the tool;
//! - the tool answers `is_error: true`, a protocol error (bad parameters included), asks for
//!   client input or creates a task: that answer is passed through unchanged and the key is
//!   released, so the next identical call runs the tool again;
//! - OnceOnly cannot be reached (an outage): an `internal_error` protocol error; any other
//!   refusal of the call itself (arguments over the size limit, an identical call still running
//!   after the wait) is an `is_error` result with its message.
//!
//! Every call that reaches the tool counts as an action of the agent, including one whose
//! parameters then fail to parse, and each round of a call that asks for client input.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::tool::{DynCallToolHandler, ToolCallContext};
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use serde_json::Value;

use super::{CallGuard, refusal_text};
use crate::client::OnceOnly;
use crate::error::Error;

/// A guard for the tools of `agent_id`; [`Guard::router`] applies it to a router.
pub fn guard(client: OnceOnly, agent_id: impl Into<String>) -> Guard {
    Guard {
        guard: CallGuard::new(client, agent_id.into(), "mcp:"),
    }
}

/// Governs and deduplicates the tool calls of one agent. Made by [`guard`]; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Guard {
    guard: CallGuard,
}

impl Guard {
    super::guard_options!("mcp:", "session");

    /// `router` with every route guarded; names, schemas and disabled routes are kept.
    pub fn router<S: Send + Sync + 'static>(&self, mut router: ToolRouter<S>) -> ToolRouter<S> {
        for route in router.map.values_mut() {
            *route = self.route(route.clone());
        }
        router
    }

    /// One route guarded, for a router assembled by hand.
    pub fn route<S: Send + Sync + 'static>(&self, route: ToolRoute<S>) -> ToolRoute<S> {
        let ToolRoute {
            call: inner, attr, ..
        } = route;
        let guard = Arc::new(self.guard.clone());
        ToolRoute::new_dyn(attr, move |ctx: ToolCallContext<'_, S>| {
            let (guard, inner) = (Arc::clone(&guard), Arc::clone(&inner));
            Box::pin(async move { governed_call(&guard, inner.as_ref(), ctx).await })
        })
    }
}

/// Why a guarded call stored nothing.
enum Failure {
    /// The tool's own answer, which is not a result to store.
    Passthrough(Result<CallToolResponse, ErrorData>),
    /// OnceOnly refused or could not decide; the tool did not run.
    OnceOnly(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::OnceOnly(e)
    }
}

async fn governed_call<S: Sync>(
    guard: &CallGuard,
    inner: &DynCallToolHandler<S>,
    ctx: ToolCallContext<'_, S>,
) -> Result<CallToolResponse, ErrorData> {
    let tool = ctx.name().to_owned();
    // A call without arguments is the same call as one with `{}`.
    let args = Value::Object(ctx.arguments.clone().unwrap_or_default());
    let run = || async move {
        match inner(ctx).await {
            Ok(CallToolResponse::Complete(result)) if result.is_error != Some(true) => Ok(result),
            other => Err(Failure::Passthrough(other)),
        }
    };
    match guard.run(&tool, args, run).await {
        Ok(result) => Ok(result.into()),
        Err(Failure::Passthrough(answer)) => answer,
        Err(Failure::OnceOnly(e)) => refusal(e),
    }
}

/// The answer to a call OnceOnly did not let through: a tool error the model reads, except an
/// outage, which is the server's failure.
fn refusal(e: Error) -> Result<CallToolResponse, ErrorData> {
    let text = match e {
        Error::Blocked { reason, .. } => refusal_text(&reason),
        Error::InProgress { .. } => "an identical call is still running; try again shortly".into(),
        e if e.is_outage() => return Err(ErrorData::internal_error(e.to_string(), None)),
        e => e.to_string(),
    };
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
}
