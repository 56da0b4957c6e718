//! The macros on the embedded engine: exactly once under concurrency, typed replay, keys that
//! follow the arguments, failures that release or stick, methods, generics, patterns, traits.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::{Error, OnceOnly, idempotent, idempotent_ai};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One embedded engine for the whole file; every test uses its own keys.
static CLIENT: LazyLock<OnceOnly> = LazyLock::new(OnceOnly::memory);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
}

#[derive(Debug)]
enum PayError {
    Declined,
    OnceOnly(Error),
}

impl From<Error> for PayError {
    fn from(e: Error) -> Self {
        PayError::OnceOnly(e)
    }
}

/// Runs `n` copies of `call` at once on the runtime's worker threads.
async fn concurrently<T, F, Fut>(n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(call())).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

// --- exactly once, typed ---------------------------------------------------------------------

static CHARGES: AtomicUsize = AtomicUsize::new(0);

/// Charges a card; counts how often the body really runs.
#[idempotent(client = &*CLIENT, ttl = Duration::from_secs(60))]
async fn charge(order_id: &str, cents: u64) -> Result<Receipt, PayError> {
    let n = CHARGES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(Receipt {
        charge_id: format!("ch_{order_id}_{n}"),
        cents,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_thousand_concurrent_calls_run_the_body_once() {
    let receipts = concurrently(1000, || async { charge("order-1000", 500).await.unwrap() }).await;
    assert_eq!(
        CHARGES.load(Ordering::SeqCst),
        1,
        "the body ran exactly once"
    );
    assert!(
        receipts.iter().all(|r| r == &receipts[0]),
        "every caller got the same value"
    );
    assert_eq!(receipts[0].cents, 500);
    // A later call replays the stored value, typed.
    assert_eq!(charge("order-1000", 500).await.unwrap(), receipts[0]);
    assert_eq!(CHARGES.load(Ordering::SeqCst), 1);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sent {
    message_id: String,
    to: String,
}

static WELCOMES: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("welcome:{user_id}"), client = &*CLIENT)]
async fn send_welcome(user_id: &str) -> Result<Sent, Error> {
    let n = WELCOMES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(Sent {
        message_id: format!("msg_{n}"),
        to: user_id.to_owned(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_ai_thousand_concurrent_calls_run_the_body_once() {
    let sent = concurrently(1000, || async { send_welcome("u_1").await.unwrap() }).await;
    assert_eq!(
        WELCOMES.load(Ordering::SeqCst),
        1,
        "the body ran exactly once"
    );
    assert!(sent.iter().all(|s| s == &sent[0]));
    assert_eq!(sent[0].to, "u_1");
    let status = CLIENT.ai().status("welcome:u_1").await.unwrap();
    assert_eq!(
        status.status,
        onceonly_runtime::models::RunStatus::Completed
    );
}

// --- keys ------------------------------------------------------------------------------------

static QUOTES: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = &*CLIENT)]
async fn quote(item: &str, qty: u32) -> Result<u64, Error> {
    QUOTES.fetch_add(1, Ordering::SeqCst);
    Ok(u64::from(qty) * 100)
}

#[tokio::test]
async fn changing_an_argument_changes_the_key() {
    assert_eq!(quote("apple", 1).await.unwrap(), 100);
    assert_eq!(quote("apple", 1).await.unwrap(), 100);
    assert_eq!(QUOTES.load(Ordering::SeqCst), 1);
    assert_eq!(quote("apple", 2).await.unwrap(), 200);
    assert_eq!(quote("pear", 1).await.unwrap(), 100);
    assert_eq!(
        QUOTES.load(Ordering::SeqCst),
        3,
        "each new argument set ran once"
    );
}

/// The same order, declared with its fields in two different orders.
#[derive(Serialize)]
struct OrderAb {
    id: String,
    lines: BTreeMap<String, u32>,
    tags: HashMap<String, bool>,
}

#[derive(Serialize)]
struct OrderBa {
    tags: HashMap<String, bool>,
    lines: BTreeMap<String, u32>,
    id: String,
}

static PLACED: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = &*CLIENT, key_prefix = "orders::place")]
async fn place_ab(order: OrderAb) -> Result<String, Error> {
    let n = PLACED.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{}#{n}", order.id))
}

#[idempotent(client = &*CLIENT, key_prefix = "orders::place")]
async fn place_ba(order: OrderBa) -> Result<String, Error> {
    let n = PLACED.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{}#{n}", order.id))
}

#[tokio::test]
async fn reordering_struct_fields_or_map_entries_keeps_the_key() {
    let names: Vec<String> = (0..64).map(|i| format!("tag{i}")).collect();
    let forward: HashMap<String, bool> = names.iter().map(|n| (n.clone(), true)).collect();
    let mut backward = HashMap::new();
    for n in names.iter().rev() {
        backward.insert(n.clone(), true);
    }
    let lines: BTreeMap<String, u32> = [("sku-a".to_owned(), 1), ("sku-b".to_owned(), 2)].into();

    let first = place_ab(OrderAb {
        id: "o-7".into(),
        lines: lines.clone(),
        tags: forward,
    })
    .await
    .unwrap();
    let again = place_ba(OrderBa {
        tags: backward.clone(),
        lines: lines.clone(),
        id: "o-7".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        first, again,
        "same values in another order: same key, replayed"
    );
    assert_eq!(PLACED.load(Ordering::SeqCst), 1);

    // A changed value inside the struct is a new key.
    backward.insert("tag0".into(), false);
    let changed = place_ba(OrderBa {
        tags: backward,
        lines,
        id: "o-7".into(),
    })
    .await
    .unwrap();
    assert_ne!(changed, first);
    assert_eq!(PLACED.load(Ordering::SeqCst), 2);
}

// --- failures --------------------------------------------------------------------------------

static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Declined the first time, charged the second.
#[idempotent(client = &*CLIENT)]
async fn flaky_charge(order_id: &str) -> Result<Receipt, PayError> {
    if FLAKY_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(PayError::Declined);
    }
    Ok(Receipt {
        charge_id: format!("ch_{order_id}"),
        cents: 100,
    })
}

#[tokio::test]
async fn an_err_releases_the_key_and_the_next_call_runs_again() {
    assert!(matches!(
        flaky_charge("o-flaky").await,
        Err(PayError::Declined)
    ));
    let receipt = flaky_charge("o-flaky").await.unwrap();
    assert_eq!(receipt.charge_id, "ch_o-flaky");
    assert_eq!(
        FLAKY_RUNS.load(Ordering::SeqCst),
        2,
        "the retry ran the body"
    );
    assert_eq!(flaky_charge("o-flaky").await.unwrap(), receipt);
    assert_eq!(
        FLAKY_RUNS.load(Ordering::SeqCst),
        2,
        "then the success is replayed"
    );
}

static DOOMED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = &*CLIENT, terminal_failures, error_code = "card_declined")]
async fn doomed_charge(order_id: &str) -> Result<Receipt, PayError> {
    DOOMED_RUNS.fetch_add(1, Ordering::SeqCst);
    let _ = order_id;
    Err(PayError::Declined)
}

#[tokio::test]
async fn with_terminal_failures_the_next_call_gets_previously_failed() {
    assert!(matches!(
        doomed_charge("o-doomed").await,
        Err(PayError::Declined)
    ));
    match doomed_charge("o-doomed").await {
        Err(PayError::OnceOnly(Error::PreviouslyFailed { error_code, .. })) => {
            assert_eq!(error_code, "card_declined");
        }
        other => panic!("expected PreviouslyFailed, got {other:?}"),
    }
    assert_eq!(
        DOOMED_RUNS.load(Ordering::SeqCst),
        1,
        "a terminal failure is not retried"
    );
}

static AI_DOOMED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("refund:{refund_id}"), client = &*CLIENT, terminal_failures = true)]
async fn doomed_refund(refund_id: u64) -> Result<u64, PayError> {
    AI_DOOMED_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(PayError::Declined)
}

#[tokio::test]
async fn idempotent_ai_terminal_failures_stick_with_the_default_error_code() {
    assert!(matches!(doomed_refund(9).await, Err(PayError::Declined)));
    assert!(matches!(
        doomed_refund(9).await,
        Err(PayError::OnceOnly(Error::PreviouslyFailed { ref error_code, .. })) if error_code == "fn_error"
    ));
    assert_eq!(AI_DOOMED_RUNS.load(Ordering::SeqCst), 1);
}

// --- methods, generics, patterns, traits -----------------------------------------------------

/// A service that owns its client.
struct Billing {
    client: OnceOnly,
    runs: AtomicUsize,
    ledger: Vec<u32>,
}

impl Billing {
    fn new() -> Self {
        Billing {
            client: OnceOnly::memory(),
            runs: AtomicUsize::new(0),
            ledger: Vec::new(),
        }
    }

    /// Charges once per order; the receiver is not part of the key.
    #[idempotent(client = &self.client)]
    async fn charge(&self, order_id: &str, cents: u64) -> Result<Receipt, Error> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(Receipt {
            charge_id: format!("ch_{order_id}_{n}"),
            cents,
        })
    }

    /// Records an entry once per entry id, mutating the service.
    #[idempotent_ai(key = format!("ledger:{entry}"), client = &self.client)]
    async fn record(&mut self, entry: u32) -> Result<usize, Error> {
        self.ledger.push(entry);
        Ok(self.ledger.len())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_on_ref_self_and_ref_mut_self_work() {
    let billing = std::sync::Arc::new(Billing::new());
    let receipts = concurrently(100, || {
        let billing = billing.clone();
        async move { billing.charge("o-1", 700).await.unwrap() }
    })
    .await;
    assert_eq!(billing.runs.load(Ordering::SeqCst), 1);
    assert!(receipts.iter().all(|r| r == &receipts[0]));

    let mut billing = Billing::new();
    assert_eq!(billing.record(7).await.unwrap(), 1);
    assert_eq!(
        billing.record(7).await.unwrap(),
        1,
        "replayed, not pushed again"
    );
    assert_eq!(billing.record(8).await.unwrap(), 2);
    assert_eq!(billing.ledger, [7, 8]);
}

static ECHOES: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = &*CLIENT)]
async fn echo<T>(value: T) -> Result<T, Error>
where
    T: Serialize + DeserializeOwned + Send,
{
    ECHOES.fetch_add(1, Ordering::SeqCst);
    Ok(value)
}

#[tokio::test]
async fn generic_functions_work_per_argument_value() {
    assert_eq!(echo(vec![1u8, 2]).await.unwrap(), [1, 2]);
    assert_eq!(echo(vec![1u8, 2]).await.unwrap(), [1, 2]);
    assert_eq!(echo("text".to_owned()).await.unwrap(), "text");
    assert_eq!(ECHOES.load(Ordering::SeqCst), 2);
}

#[derive(Serialize)]
struct Rect {
    w: u32,
    h: u32,
    label: String,
}

static AREAS: AtomicUsize = AtomicUsize::new(0);

/// Destructured arguments: the key holds the bindings (`w`, `h`, `dx`), not what the body
/// cannot see (`label` behind `..`, the `_` of the tuple).
#[idempotent(client = &*CLIENT)]
async fn area(Rect { w, h, .. }: Rect, (dx, _): (u32, u32)) -> Result<u32, Error> {
    AREAS.fetch_add(1, Ordering::SeqCst);
    Ok(w * h + dx)
}

#[tokio::test]
async fn destructured_arguments_key_on_their_bindings() {
    let rect = |label: &str| Rect {
        w: 2,
        h: 3,
        label: label.to_owned(),
    };
    assert_eq!(area(rect("a"), (1, 0)).await.unwrap(), 7);
    assert_eq!(
        area(rect("b"), (1, 99)).await.unwrap(),
        7,
        "unseen parts: same key"
    );
    assert_eq!(AREAS.load(Ordering::SeqCst), 1);
    assert_eq!(area(rect("a"), (2, 0)).await.unwrap(), 8);
    assert_eq!(AREAS.load(Ordering::SeqCst), 2);
}

trait Notifier {
    async fn notify(&self, user: &str) -> Result<String, Error>;
}

struct EmailNotifier {
    sent: AtomicUsize,
}

impl Notifier for EmailNotifier {
    #[idempotent_ai(key = format!("notify:email:{user}"), client = &*CLIENT)]
    async fn notify(&self, user: &str) -> Result<String, Error> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(format!("email {n} to {user}"))
    }
}

struct SmsNotifier;

impl Notifier for SmsNotifier {
    #[idempotent(client = &*CLIENT, key_prefix = "notify::sms")]
    async fn notify(&self, user: &str) -> Result<String, Error> {
        Ok(format!("sms to {user}"))
    }
}

#[tokio::test]
async fn trait_impls_with_native_async_fn_work() {
    let email = EmailNotifier {
        sent: AtomicUsize::new(0),
    };
    assert_eq!(email.notify("ann").await.unwrap(), "email 0 to ann");
    assert_eq!(email.notify("ann").await.unwrap(), "email 0 to ann");
    assert_eq!(email.sent.load(Ordering::SeqCst), 1);
    assert_eq!(SmsNotifier.notify("bob").await.unwrap(), "sms to bob");
}

#[idempotent(client = &*CLIENT, skip(trace_id))]
async fn lookup(account: u32, trace_id: String) -> Result<String, Error> {
    Ok(format!("account {account} (first trace {trace_id})"))
}

#[tokio::test]
async fn skipped_arguments_do_not_change_the_key() {
    let first = lookup(1, "t-1".into()).await.unwrap();
    assert_eq!(lookup(1, "t-2".into()).await.unwrap(), first);
    assert_ne!(lookup(2, "t-3".into()).await.unwrap(), first);
}

#[idempotent(client = &*CLIENT)]
async fn early_return(n: i64) -> Result<i64, Error> {
    if n < 0 {
        return Err(Error::Validation("negative".into()));
    }
    let parsed: i64 = "40"
        .parse()
        .map_err(|_| Error::Validation("parse".into()))?;
    Ok(parsed + n)
}

#[tokio::test]
async fn return_and_question_mark_in_the_body_keep_their_meaning() {
    assert_eq!(early_return(2).await.unwrap(), 42);
    assert!(matches!(early_return(-1).await, Err(Error::Validation(_))));
}

static EXPORT_RUNS: AtomicUsize = AtomicUsize::new(0);
static EXPORT_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Hangs the first time (until dropped), returns at once afterwards.
#[idempotent(client = &*CLIENT, wait_on_conflict = false)]
async fn export(day: u32) -> Result<u32, Error> {
    if EXPORT_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        EXPORT_STARTED.notify_one();
        std::future::pending::<()>().await;
    }
    Ok(day)
}

#[tokio::test]
async fn dropping_a_call_mid_run_frees_the_key_at_once() {
    tokio::select! {
        _ = export(1) => panic!("the first call never finishes"),
        () = EXPORT_STARTED.notified() => {}
    }
    // The first call was dropped while holding the lease; without waiting for its TTL, the
    // next call (which does not wait on conflicts) acquires the key and runs.
    assert_eq!(export(1).await.unwrap(), 1);
    assert_eq!(EXPORT_RUNS.load(Ordering::SeqCst), 2);
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn the_returned_futures_are_send() {
    let billing = Billing::new();
    assert_send(&charge("o", 1));
    assert_send(&send_welcome("u"));
    assert_send(&billing.charge("o", 1));
    assert_send(&echo(1u8));
    assert_send(&area(
        Rect {
            w: 1,
            h: 1,
            label: String::new(),
        },
        (0, 0),
    ));
}

// --- governed calls --------------------------------------------------------------------------

/// Its own engine: the policies below must not meet the other tests' keys.
static GOVERNED: LazyLock<OnceOnly> = LazyLock::new(OnceOnly::memory);
static GOVERNED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("refund:{order}"), client = &*GOVERNED,
                agent = "macro-bot", tool = "refund_card", spend_usd = 0.25)]
async fn refund(order: u32) -> Result<u32, Error> {
    GOVERNED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(order)
}

static KILLED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("email:{user}"), client = &*GOVERNED,
                agent = "mailer", tool = "send_email")]
async fn email(user: u32) -> Result<String, Error> {
    KILLED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("sent:{user}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn governed_macros_hold_the_daily_budget_under_200_concurrent_calls() {
    use onceonly_runtime::models::Policy;
    GOVERNED
        .gov()
        .upsert_policy(Policy::new("macro-bot").max_spend_usd_per_day(10.0))
        .await
        .unwrap();
    let orders = std::sync::Arc::new(AtomicUsize::new(0));
    let results = concurrently(200, move || {
        let order = orders.fetch_add(1, Ordering::SeqCst) as u32;
        async move { refund(order).await }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let blocked = results
        .iter()
        .filter(
            |r| matches!(r, Err(Error::Blocked { reason, .. }) if reason == "daily_spend_exceeded"),
        )
        .count();
    assert_eq!((ok, blocked), (40, 160), "$10 / $0.25 = 40 refunds");
    assert_eq!(GOVERNED_RUNS.load(Ordering::SeqCst), 40);
    // The decision order puts limits before deduplication: once the budget is spent, even a
    // repeat of an executed refund is refused, and the body never runs again.
    let executed = results
        .iter()
        .find_map(|r| r.as_ref().ok().copied())
        .unwrap();
    let again = refund(executed).await;
    assert!(matches!(again, Err(Error::Blocked { .. })), "{again:?}");
    assert_eq!(
        GOVERNED_RUNS.load(Ordering::SeqCst),
        40,
        "the body never runs again"
    );
}

#[tokio::test]
async fn a_kill_switched_agent_is_blocked_by_the_macro_without_running_the_body() {
    GOVERNED
        .gov()
        .disable_agent("mailer", "spam report")
        .await
        .unwrap();
    let r = email(1).await;
    assert!(
        matches!(r, Err(Error::Blocked { ref reason, .. }) if reason == "agent_disabled"),
        "{r:?}"
    );
    assert_eq!(KILLED_RUNS.load(Ordering::SeqCst), 0);
    GOVERNED.gov().enable_agent("mailer", "").await.unwrap();
    assert_eq!(email(1).await.unwrap(), "sent:1");
    assert_eq!(email(1).await.unwrap(), "sent:1");
    assert_eq!(KILLED_RUNS.load(Ordering::SeqCst), 1);
}
