//! The tools registry (`/tools`) and governed tool calls (tool-mode `POST /ai/run`).

use serde::Serialize;

use super::transport::{Request, Transport};
use super::wire::{self, call_map, default_member, list_items, on_404, path_id};
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    Decision, DeleteToolRequest, GetToolRequest, ListToolsRequest, PolicyReason, ToggleToolRequest,
    Tool, ToolCallRequest, ToolDeleted, ToolResult, ToolSpec,
};

/// Tool-mode body: `args` only when non-empty, `spend_usd` only when given (as the SDKs).
#[derive(Serialize)]
struct ToolCallBody<'a> {
    agent_id: &'a str,
    tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a JsonMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend_usd: Option<f64>,
}

/// Tool-mode `POST /ai/run`. The hosted API answers an unknown tool with a 404
/// `tool_not_found`; the engine answers it as a blocked call, and so does this backend.
pub(crate) async fn run_tool(t: &Transport, req: ToolCallRequest) -> Result<ToolResult> {
    let body = ToolCallBody {
        agent_id: &req.agent_id,
        tool: &req.tool,
        args: Some(&req.args).filter(|a| !a.is_empty()),
        spend_usd: req.spend_usd,
    };
    let mut answer = match call_map(t, Request::post(&["ai", "run"], &body)?).await {
        Err(e) if wire::is_404(&e, "tool_not_found") => {
            return Ok(ToolResult::decided(
                Decision::Blocked,
                PolicyReason::ToolNotFound,
            ));
        }
        answer => answer?,
    };
    // `result` is the tool's object answer; anything else is dropped, as the SDKs do.
    if answer.get("result").is_some_and(|r| !r.is_object()) {
        answer.remove("result");
    }
    wire::decode(answer)
}

/// A tool answer, naming the tool and scope asked for when it does not (a toggle answers
/// only `{"name", "enabled"}`).
fn read_tool(mut answer: JsonMap, name: &str, scope_id: &str) -> Result<Tool> {
    if !name.is_empty() {
        default_member(&mut answer, "name", name);
    }
    default_member(&mut answer, "scope_id", scope_id);
    wire::decode(answer)
}

pub(crate) async fn create_tool(t: &Transport, spec: ToolSpec) -> Result<Tool> {
    let answer = call_map(t, Request::post(&["tools"], &spec)?).await?;
    read_tool(answer, &spec.name, &spec.scope_id)
}

pub(crate) async fn list_tools(t: &Transport, req: ListToolsRequest) -> Result<Vec<Tool>> {
    let answer = call_map(t, Request::get(&["tools"]).query("scope_id", &req.scope_id)).await?;
    list_items(answer)
        .map(|item| read_tool(item, "", &req.scope_id))
        .collect()
}

pub(crate) async fn get_tool(t: &Transport, req: GetToolRequest) -> Result<Tool> {
    let path = ["tools", path_id("name", &req.name)?];
    let answer = call_map(t, Request::get(&path).query("scope_id", &req.scope_id))
        .await
        .map_err(on_404("not_found", || {
            Error::tool_not_found(&req.name, &req.scope_id)
        }))?;
    read_tool(answer, &req.name, &req.scope_id)
}

#[derive(Serialize)]
struct ToggleBody {
    enabled: bool,
}

pub(crate) async fn toggle_tool(t: &Transport, req: ToggleToolRequest) -> Result<Tool> {
    let path = ["tools", path_id("name", &req.name)?, "toggle"];
    let body = ToggleBody {
        enabled: req.enabled,
    };
    let answer = call_map(
        t,
        Request::post(&path, &body)?.query("scope_id", &req.scope_id),
    )
    .await?;
    read_tool(answer, &req.name, &req.scope_id)
}

pub(crate) async fn delete_tool(t: &Transport, req: DeleteToolRequest) -> Result<ToolDeleted> {
    let path = ["tools", path_id("name", &req.name)?];
    let mut answer = call_map(t, Request::delete(&path).query("scope_id", &req.scope_id)).await?;
    // A 2xx is the deletion (a missing tool is a 404), whatever the body says or leaves out:
    // a `204` has none.
    default_member(&mut answer, "ok", true);
    default_member(&mut answer, "deleted", req.name.as_str());
    wire::decode(answer)
}
