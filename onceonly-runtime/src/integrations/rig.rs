//! [`Governed`]: a rig `Tool` whose calls are governed and deduplicated by OnceOnly
//! (feature `rig`, rig-core 0.44, which needs rustc 1.95; rig-core is imported as `rig_core`).
//!
//! Wrap the tool where you register it; the model sees the same name, description, parameters
//! and output:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use onceonly_runtime::{OnceOnly, integrations::rig::Governed, models::Policy};
//! use rig_core::tool::{ErasedTool, PortableTool, Tool, ToolContext};
//! use serde::{Deserialize, Serialize};
//!
//! struct SendEmail;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Email { to: String, subject: String }
//!
//! impl PortableTool for SendEmail {
//!     const NAME: &'static str = "send_email";
//!     type Args = Email;
//!     type Output = String;
//!     type Error = std::io::Error;
//!     fn description(&self) -> String { "Send an email".into() }
//!     fn parameters(&self) -> serde_json::Value { serde_json::json!({"type": "object"}) }
//!     async fn call(&self, email: Email) -> Result<String, std::io::Error> {
//!         Ok(format!("sent to {}", email.to)) // the side effect
//!     }
//! }
//!
//! let client = OnceOnly::memory();
//! let tool = Governed::new(SendEmail, client.clone(), "support-bot").spend_usd(0.01);
//!
//! // The model asks twice: the email goes out once, both answers are the same.
//! let email = || Email { to: "ada@example.com".into(), subject: "Hi".into() };
//! let first = tool.call(&mut ToolContext::new(), email()).await?;
//! assert_eq!(tool.call(&mut ToolContext::new(), email()).await?, first);
//!
//! // A refusal is a result the model reads, not a crash of the agent loop.
//! client.gov().upsert_policy(Policy::new("support-bot").blocked_tools(["send_*"])).await?;
//! let args = r#"{"to": "bob@example.com", "subject": "Hi"}"#.to_owned();
//! let refused = tool.execute(args, &mut ToolContext::new()).await;
//! assert!(refused.is_refused());
//! assert!(refused.output().render().contains("tool_blocked"));
//! # Ok(()) }
//! ```
//!
//! # What a call does
//!
//! The key is the agent id, `T::NAME` and the canonical JSON of the arguments (under the key
//! prefix, default `rig:`), not the model's call id. Then:
//! - the policy refuses (kill switch, deny/allow lists, hourly and per-tool caps, daily
//!   budget): the tool does not run and the call returns `Err(ToolExecutionError)` built with
//!   [`ToolExecutionError::refused`]: rig's dispatch presents it to the model as a *refused*
//!   tool result whose text names the policy reason (`refused by policy (tool_blocked): ...`);
//!   [`code`](ToolExecutionError::code) is the reason and the [`Error::Blocked`] is its source;
//! - first call: the tool runs and its output is stored;
//! - identical later call (or one that waited for a concurrent one): the stored output,
//!   without running the tool. Values the tool puts into the [`ToolContext`] are not replayed;
//! - the tool returns `Err`: the error goes through the wrapped tool's `map_error`, unchanged,
//!   and the key is released, so asking again runs the tool again;
//! - OnceOnly cannot decide (an outage): an error whose model feedback stays generic, with the
//!   [`Error`] as its source and [`retryable`](ToolExecutionError::retryable) set from
//!   [`Error::is_retryable`]. An identical call still running after the wait (60 s) is a
//!   retryable error with code `in_progress`.
//!
//! Values in the [`ToolContext`] are not part of the key. When a tool's effect depends on them
//! (the user it acts for), use one agent id or [`key_prefix`](Governed::key_prefix) per user.
//!
//! Bounds: `T::Args: Serialize` (the key and the audit log are made from it) and
//! `T::Output: Serialize + DeserializeOwned` (the stored output is read back on replay).

use rig_core::tool::{Tool, ToolContext, ToolErrorKind, ToolExecutionError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CallGuard, refusal_text};
use crate::client::OnceOnly;
use crate::error::Error;
use crate::wire::Refusal;

/// A rig [`Tool`] whose calls go through the agent's policy and run once per distinct
/// arguments. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Governed<T> {
    inner: T,
    guard: CallGuard,
}

impl<T> Governed<T> {
    /// Governs `tool` as called by `agent_id`.
    pub fn new(tool: T, client: OnceOnly, agent_id: impl Into<String>) -> Self {
        Governed {
            inner: tool,
            guard: CallGuard::new(client, agent_id.into(), "rig:"),
        }
    }

    super::guard_options!("rig:", "conversation");

    /// The wrapped tool.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Gives the wrapped tool back.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// Why a governed call did not produce an output.
enum Failure<E> {
    /// The tool ran and failed.
    Tool(E),
    /// OnceOnly refused or could not decide; the tool did not run.
    OnceOnly(Error),
}

impl<E> From<Error> for Failure<E> {
    fn from(e: Error) -> Self {
        Failure::OnceOnly(e)
    }
}

/// The rig error a model reads for a call OnceOnly did not let through.
fn tool_error(e: Error) -> ToolExecutionError {
    match &e {
        Error::Blocked { reason, .. } => ToolExecutionError::refused(refusal_text(reason))
            .with_code(reason.clone())
            .with_source(e),
        Error::InProgress { .. } => ToolExecutionError::new(
            ToolErrorKind::Other,
            "an identical call is still running; try again shortly",
        )
        .with_retryable(true)
        .with_code(Refusal::InProgress.as_str())
        .with_source(e),
        _ => {
            let retryable = e.is_retryable();
            ToolExecutionError::from_error(e).with_retryable(retryable)
        }
    }
}

impl<T> Tool for Governed<T>
where
    T: Tool,
    T::Args: Serialize,
    T::Output: Serialize + DeserializeOwned + Send,
{
    const NAME: &'static str = T::NAME;
    type Args = T::Args;
    type Output = T::Output;
    type Error = ToolExecutionError;

    fn description(&self) -> String {
        self.inner.description()
    }

    fn parameters(&self) -> serde_json::Value {
        self.inner.parameters()
    }

    /// Errors are shaped already: the wrapped tool's through its own `map_error`.
    fn map_error(&self, error: ToolExecutionError) -> ToolExecutionError {
        error
    }

    async fn call(
        &self,
        context: &mut ToolContext,
        args: T::Args,
    ) -> Result<T::Output, ToolExecutionError> {
        let json = serde_json::to_value(&args).map_err(|e| {
            ToolExecutionError::invalid_args(format!("arguments are not JSON: {e}")).with_source(e)
        })?;
        let inner = &self.inner;
        let run = || async move { inner.call(context, args).await.map_err(Failure::Tool) };
        self.guard
            .run(T::NAME, json, run)
            .await
            .map_err(|failure| match failure {
                Failure::Tool(e) => inner.map_error(e),
                Failure::OnceOnly(e) => tool_error(e),
            })
    }
}
