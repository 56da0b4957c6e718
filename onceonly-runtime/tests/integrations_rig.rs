//! `integrations::rig::Governed` around a real rig `Tool`: identical calls run once, refusals
//! reach the model as refused tool results, tool failures release the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::integrations::rig::Governed;
use onceonly_runtime::models::Policy;
use onceonly_runtime::{Error, OnceOnly};
use rig_core::tool::{ErasedTool, Tool, ToolContext, ToolExecutionError, tool_definition};
use serde::{Deserialize, Serialize};

const AGENT: &str = "billing-bot";

/// A payment tool that counts its side effects.
#[derive(Clone, Default)]
struct Charge {
    charges: Arc<AtomicUsize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChargeArgs {
    customer: String,
    cents: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

impl Tool for Charge {
    const NAME: &'static str = "charge_card";
    type Args = ChargeArgs;
    type Output = Receipt;
    type Error = Declined;

    fn description(&self) -> String {
        "Charge a customer's card".into()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {"customer": {"type": "string"}, "cents": {"type": "integer"}},
        })
    }

    fn map_error(&self, error: Declined) -> ToolExecutionError {
        ToolExecutionError::provider(error.to_string()).with_code("declined")
    }

    async fn call(&self, _ctx: &mut ToolContext, args: ChargeArgs) -> Result<Receipt, Declined> {
        let n = self.charges.fetch_add(1, Ordering::SeqCst) + 1;
        if args.cents == 0 {
            return Err(Declined);
        }
        Ok(Receipt {
            charge_id: format!("ch_{n}"),
            cents: args.cents,
        })
    }
}

fn setup() -> (OnceOnly, Charge, Governed<Charge>) {
    let client = OnceOnly::memory();
    let tool = Charge::default();
    let governed = Governed::new(tool.clone(), client.clone(), AGENT);
    (client, tool, governed)
}

fn args(customer: &str, cents: u64) -> ChargeArgs {
    ChargeArgs {
        customer: customer.into(),
        cents,
    }
}

async fn call(tool: &Governed<Charge>, a: ChargeArgs) -> Result<Receipt, ToolExecutionError> {
    tool.call(&mut ToolContext::new(), a).await
}

fn charges(tool: &Charge) -> usize {
    tool.charges.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_model_sees_the_wrapped_tool() {
    let (_client, tool, governed) = setup();
    assert_eq!(<Governed<Charge> as Tool>::NAME, "charge_card");
    let (ours, theirs) = (tool_definition(&governed), tool_definition(&tool));
    assert_eq!(ours.name, theirs.name);
    assert_eq!(ours.description, theirs.description);
    assert_eq!(ours.parameters, theirs.parameters);
}

#[tokio::test]
async fn identical_calls_run_once_and_answer_the_same() {
    let (_client, tool, governed) = setup();
    let first = call(&governed, args("cus_1", 500)).await.unwrap();
    let again = call(&governed, args("cus_1", 500)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(charges(&tool), 1);

    // Through rig's dispatch, with the JSON members in another order: still the same call.
    let mut ctx = ToolContext::new();
    let raw = r#"{"cents": 500, "customer": "cus_1"}"#.to_owned();
    let result = governed.execute(raw, &mut ctx).await;
    assert!(result.is_success(), "{}", result.output().render());
    assert_eq!(
        result.output().as_json(),
        Some(&serde_json::to_value(&first).unwrap())
    );
    assert_eq!(charges(&tool), 1);
}

#[tokio::test]
async fn different_arguments_are_different_calls() {
    let (_client, tool, governed) = setup();
    let a = call(&governed, args("cus_1", 500)).await.unwrap();
    let b = call(&governed, args("cus_1", 700)).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(charges(&tool), 2);
}

#[tokio::test]
async fn agents_and_prefixes_do_not_share_calls() {
    let (client, tool, governed) = setup();
    call(&governed, args("cus_1", 500)).await.unwrap();
    let other_agent = Governed::new(tool.clone(), client.clone(), "other-bot");
    call(&other_agent, args("cus_1", 500)).await.unwrap();
    let other_session = Governed::new(tool.clone(), client, AGENT).key_prefix("rig:session-2:");
    call(&other_session, args("cus_1", 500)).await.unwrap();
    assert_eq!(charges(&tool), 3);
}

#[tokio::test]
async fn a_blocked_tool_is_a_refusal_the_model_reads() {
    let (client, tool, governed) = setup();
    client
        .gov()
        .upsert_policy(Policy::new(AGENT).blocked_tools(["charge_*"]))
        .await
        .unwrap();

    let err = call(&governed, args("cus_1", 500)).await.unwrap_err();
    assert!(err.is_refusal(), "{err:?}");
    assert_eq!(err.code(), Some("tool_blocked"));
    assert!(matches!(
        err.downcast_ref::<Error>(),
        Some(Error::Blocked { reason, .. }) if reason == "tool_blocked"
    ));

    let result = governed
        .execute(
            r#"{"customer": "cus_1", "cents": 500}"#.into(),
            &mut ToolContext::new(),
        )
        .await;
    assert!(result.is_refused());
    let text = result.output().render();
    assert!(text.contains("refused by policy (tool_blocked)"), "{text}");
    assert_eq!(charges(&tool), 0);
}

#[tokio::test]
async fn the_kill_switch_stops_the_tool_until_enabled() {
    let (client, tool, governed) = setup();
    client
        .gov()
        .disable_agent(AGENT, "runaway loop")
        .await
        .unwrap();
    let err = call(&governed, args("cus_1", 500)).await.unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(err.code(), Some("agent_disabled"));
    assert_eq!(charges(&tool), 0);

    client.gov().enable_agent(AGENT, "fixed").await.unwrap();
    call(&governed, args("cus_1", 500)).await.unwrap();
    assert_eq!(charges(&tool), 1);
}

#[tokio::test]
async fn a_tool_error_keeps_its_shape_and_a_retry_runs_again() {
    let (_client, tool, governed) = setup();
    let err = call(&governed, args("cus_1", 0)).await.unwrap_err();
    assert!(!err.is_refusal());
    assert_eq!(err.code(), Some("declined"));
    assert_eq!(err.message(), "card declined");
    call(&governed, args("cus_1", 0)).await.unwrap_err();
    assert_eq!(charges(&tool), 2);
}

#[tokio::test]
async fn spend_counts_against_the_daily_budget() {
    let (client, tool, governed) = setup();
    let governed = governed.spend_usd(2.0);
    client
        .gov()
        .upsert_policy(Policy::new(AGENT).max_spend_usd_per_day(3.0))
        .await
        .unwrap();
    call(&governed, args("cus_1", 500)).await.unwrap();
    let err = call(&governed, args("cus_2", 500)).await.unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(err.code(), Some("daily_spend_exceeded"));
    assert_eq!(charges(&tool), 1);
}
