//! `integrations::rmcp::guard` on a real rmcp server (`#[tool_router]`, `#[tool]`,
//! `#[tool_handler]`), driven by a real rmcp client over an in-process duplex pipe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::OnceOnly;
use onceonly_runtime::integrations::rmcp::guard;
use onceonly_runtime::models::Policy;
use rmcp::handler::server::{tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};

const AGENT: &str = "shop-bot";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ChargeArgs {
    customer: String,
    cents: u64,
}

/// A payment server that counts its side effects.
#[derive(Clone)]
struct Shop {
    tool_router: ToolRouter<Self>,
    charges: Arc<AtomicUsize>,
}

#[tool_router]
impl Shop {
    fn new(client: OnceOnly, charges: Arc<AtomicUsize>) -> Self {
        Shop {
            tool_router: guard(client, AGENT).router(Self::tool_router()),
            charges,
        }
    }

    #[tool(description = "Charge a customer's card")]
    async fn charge_card(
        &self,
        Parameters(args): Parameters<ChargeArgs>,
    ) -> Result<String, String> {
        let n = self.charges.fetch_add(1, Ordering::SeqCst) + 1;
        if args.cents == 0 {
            return Err("card declined".into());
        }
        Ok(format!(
            "ch_{n}: {} cents from {}",
            args.cents, args.customer
        ))
    }

    #[tool(description = "Refund a charge")]
    async fn refund(&self) -> String {
        self.charges.fetch_add(1, Ordering::SeqCst);
        "refunded".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Shop {}

struct Setup {
    client: OnceOnly,
    charges: Arc<AtomicUsize>,
    mcp: RunningService<RoleClient, ()>,
}

impl Setup {
    async fn new() -> Setup {
        let client = OnceOnly::memory();
        let charges = Arc::new(AtomicUsize::new(0));
        let server = Shop::new(client.clone(), Arc::clone(&charges));
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let running = server.serve(server_io).await.expect("server handshake");
            let _ = running.waiting().await;
        });
        let mcp = ().serve(client_io).await.expect("client handshake");
        Setup {
            client,
            charges,
            mcp,
        }
    }

    async fn call(&self, tool: &'static str, args: Value) -> CallToolResult {
        let mut params = CallToolRequestParams::new(tool);
        if let Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        self.mcp.call_tool(params).await.expect("a tool result")
    }

    fn charges(&self) -> usize {
        self.charges.load(Ordering::SeqCst)
    }
}

fn text(result: &CallToolResult) -> &str {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.as_str())
        .expect("a text block")
}

#[tokio::test]
async fn the_client_lists_the_same_tools() {
    let s = Setup::new().await;
    let tools = s.mcp.list_all_tools().await.unwrap();
    let names: Vec<_> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["charge_card", "refund"]);
    let unguarded = Shop::tool_router().list_all();
    assert_eq!(tools, unguarded);
}

#[tokio::test]
async fn identical_calls_run_once_and_answer_the_same() {
    let s = Setup::new().await;
    let first = s
        .call("charge_card", json!({"customer": "cus_1", "cents": 500}))
        .await;
    assert_ne!(first.is_error, Some(true), "{first:?}");
    assert_eq!(text(&first), "ch_1: 500 cents from cus_1");
    // Another request id, the members in another order: the same call.
    let again = s
        .call("charge_card", json!({"cents": 500, "customer": "cus_1"}))
        .await;
    assert_eq!(again, first);
    assert_eq!(s.charges(), 1);

    // No arguments and `{}` are one call too.
    s.call("refund", Value::Null).await;
    s.call("refund", json!({})).await;
    assert_eq!(s.charges(), 2);
}

#[tokio::test]
async fn different_arguments_are_different_calls() {
    let s = Setup::new().await;
    let a = s
        .call("charge_card", json!({"customer": "cus_1", "cents": 500}))
        .await;
    let b = s
        .call("charge_card", json!({"customer": "cus_2", "cents": 500}))
        .await;
    assert_ne!(text(&a), text(&b));
    assert_eq!(s.charges(), 2);
}

#[tokio::test]
async fn a_blocked_tool_is_an_error_result_naming_the_reason() {
    let s = Setup::new().await;
    s.client
        .gov()
        .upsert_policy(Policy::new(AGENT).blocked_tools(["refund"]))
        .await
        .unwrap();
    let refused = s.call("refund", json!({})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("refused by policy (tool_blocked)"),
        "{refused:?}"
    );
    assert_eq!(s.charges(), 0);
    // Other tools of the agent still run.
    s.call("charge_card", json!({"customer": "cus_1", "cents": 500}))
        .await;
    assert_eq!(s.charges(), 1);
}

#[tokio::test]
async fn the_kill_switch_stops_every_tool_until_enabled() {
    let s = Setup::new().await;
    s.client
        .gov()
        .disable_agent(AGENT, "runaway loop")
        .await
        .unwrap();
    let refused = s
        .call("charge_card", json!({"customer": "cus_1", "cents": 500}))
        .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("agent_disabled"), "{refused:?}");
    assert_eq!(s.charges(), 0);

    s.client.gov().enable_agent(AGENT, "fixed").await.unwrap();
    let ok = s
        .call("charge_card", json!({"customer": "cus_1", "cents": 500}))
        .await;
    assert_ne!(ok.is_error, Some(true));
    assert_eq!(s.charges(), 1);
}

#[tokio::test]
async fn a_tool_error_passes_through_and_a_retry_runs_again() {
    let s = Setup::new().await;
    let args = json!({"customer": "cus_1", "cents": 0});
    let failed = s.call("charge_card", args.clone()).await;
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(text(&failed), "card declined");
    s.call("charge_card", args).await;
    assert_eq!(s.charges(), 2);
}

#[tokio::test]
async fn bad_parameters_stay_a_tool_argument_error() {
    let s = Setup::new().await;
    let bad = s.call("charge_card", json!({"customer": "cus_1"})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(
        text(&bad).contains("failed to deserialize parameters"),
        "{bad:?}"
    );
    assert_eq!(s.charges(), 0);
}
