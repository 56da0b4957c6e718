//! An agent loop under governance: a retried charge runs once, the budget holds, a forbidden
//! tool is refused, and the kill switch stops the agent mid-run.
//!
//! `cargo run -p onceonly-examples --example agent`
//!
//! The "model" is a script (no network, no API key): it asks for the tool calls a real model
//! might, including a charge it repeats after a timeout. The same script runs twice: first
//! straight against the tools, then through OnceOnly, and the example prints what each run
//! did, followed by the agent's audit log, its metrics and the run's timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::models::{MetricsPeriod, Policy, ToolResult};
use onceonly_runtime::{JsonMap, OnceOnly};
use serde_json::json;

const AGENT: &str = "billing-agent";
const RUN: &str = "run_invoice_batch_7";

/// One step the scripted model asks for.
enum Step {
    Call {
        tool: &'static str,
        args: serde_json::Value,
        spend_usd: Option<f64>,
        why: &'static str,
    },
    /// An operator turns the kill switch on between two steps.
    KillSwitch,
}

fn script() -> Vec<Step> {
    let call = |tool, args, spend_usd, why| Step::Call {
        tool,
        args,
        spend_usd,
        why,
    };
    vec![
        call(
            "crm.lookup",
            json!({"customer": "c_42"}),
            None,
            "look the customer up",
        ),
        call(
            "stripe.charge",
            json!({"order": "o_1", "cents": 4000}),
            Some(40.0),
            "charge order o_1",
        ),
        call(
            "stripe.charge",
            json!({"order": "o_1", "cents": 4000}),
            Some(40.0),
            "the answer timed out: charge o_1 again",
        ),
        call(
            "send_email",
            json!({"to": "c_42", "template": "receipt"}),
            None,
            "send the receipt",
        ),
        call(
            "stripe.charge",
            json!({"order": "o_2", "cents": 3000}),
            Some(30.0),
            "charge order o_2",
        ),
        call(
            "delete_customer",
            json!({"customer": "c_42"}),
            None,
            "clean up the customer",
        ),
        Step::KillSwitch,
        call(
            "send_email",
            json!({"to": "c_42", "template": "apology"}),
            None,
            "send an apology",
        ),
    ]
}

/// The side effects, counted: what really happened in the outside world.
#[derive(Default)]
struct World {
    charges: AtomicUsize,
    emails: AtomicUsize,
    deletions: AtomicUsize,
}

impl World {
    fn run(&self, tool: &str, args: &JsonMap) -> JsonMap {
        let counter = match tool {
            "stripe.charge" => &self.charges,
            "send_email" => &self.emails,
            "delete_customer" => &self.deletions,
            _ => return args.clone(),
        };
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut out = JsonMap::new();
        out.insert("id".into(), format!("{tool}#{n}").into());
        out
    }

    fn summary(&self) -> String {
        format!(
            "{} charges, {} emails, {} deletions",
            self.charges.load(Ordering::SeqCst),
            self.emails.load(Ordering::SeqCst),
            self.deletions.load(Ordering::SeqCst)
        )
    }
}

fn object(v: &serde_json::Value) -> JsonMap {
    v.as_object().cloned().unwrap_or_default()
}

/// The loop without OnceOnly: every step the model asks for happens.
fn without_onceonly() -> World {
    let world = World::default();
    for step in script() {
        if let Step::Call { tool, args, .. } = step {
            world.run(tool, &object(&args));
        }
    }
    world
}

fn describe(r: &ToolResult) -> String {
    let reason = r.policy_reason.as_deref().unwrap_or("-");
    match r.decision.as_str() {
        "executed" => format!("executed   -> {}", json!(r.result)),
        "dedup" => format!(
            "dedup      -> {} (stored result, nothing ran)",
            json!(r.result)
        ),
        _ => format!(
            "BLOCKED    ({reason}, risk {})",
            r.risk_level.as_deref().unwrap_or("-")
        ),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), onceonly_runtime::Error> {
    println!("== the agent loop without OnceOnly");
    println!("   {}", without_onceonly().summary());

    println!("\n== the same loop through OnceOnly (embedded engine)");
    let client = OnceOnly::memory();
    let world = Arc::new(World::default());
    for tool in [
        "crm.lookup",
        "stripe.charge",
        "send_email",
        "delete_customer",
    ] {
        let world = Arc::clone(&world);
        client.gov().register_tool_fn(tool, move |args: JsonMap| {
            let out = world.run(tool, &args);
            async move { Ok::<_, String>(out) }
        })?;
    }
    client
        .gov()
        .upsert_policy(
            Policy::new(AGENT)
                .blocked_tools(["delete_*"])
                .max_spend_usd_per_day(60.0)
                .max_actions_per_hour(100),
        )
        .await?;

    for step in script() {
        match step {
            Step::KillSwitch => {
                client
                    .gov()
                    .disable_agent(AGENT, "operator: refunds look wrong")
                    .await?;
                println!("   -- operator turns the kill switch on");
            }
            Step::Call {
                tool,
                args,
                spend_usd,
                why,
            } => {
                let mut call = client
                    .ai()
                    .run_tool(AGENT, tool)
                    .args(object(&args))
                    .run_id(RUN);
                if let Some(usd) = spend_usd {
                    call = call.spend_usd(usd);
                }
                let r = call.await?;
                println!("   {why:<42} {tool:<16} {}", describe(&r));
            }
        }
    }
    println!("   {}", world.summary());

    println!("\n== audit log of {AGENT} (oldest first)");
    let mut logs = client.gov().agent_logs(AGENT).await?;
    logs.reverse();
    for l in &logs {
        println!(
            "   {:<16} {:<9} {:<26} risk {:<6} spend ${:.2}",
            l.tool.as_deref().unwrap_or("-"),
            l.decision,
            l.policy_reason.as_deref().unwrap_or("-"),
            l.risk_level.as_deref().unwrap_or("-"),
            l.spend_usd
        );
    }

    let m = client
        .gov()
        .agent_metrics(AGENT)
        .period(MetricsPeriod::Day)
        .await?;
    println!(
        "\n== metrics (day): {} actions, {} blocked, ${:.2} spent, top tools {:?}",
        m.total_actions,
        m.blocked_actions,
        m.total_spend_usd,
        m.top_tools
            .iter()
            .map(|t| format!("{}x{}", t.tool, t.count))
            .collect::<Vec<_>>()
    );

    println!("\n== timeline of {RUN}");
    for e in client.get_run_timeline(RUN).await?.events {
        println!(
            "   {:<12} {:<16} {}",
            e.kind,
            e.tool.as_deref().unwrap_or("-"),
            e.status.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
