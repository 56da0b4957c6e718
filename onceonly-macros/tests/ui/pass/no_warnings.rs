//! Every form the macros accept, compiled with all warnings denied: the expansion adds none.
#![deny(warnings)]

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::{Error, JsonMap, OnceOnly, idempotent, idempotent_ai};
use serde::{Deserialize, Serialize};

/// A typed result.
#[derive(Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
}

/// A user error that takes runtime errors.
#[derive(Debug)]
pub enum PayError {
    Declined,
    Runtime(Error),
}

impl From<Error> for PayError {
    fn from(e: Error) -> Self {
        PayError::Runtime(e)
    }
}

/// A result alias.
pub type PayResult<T> = Result<T, PayError>;
/// A result alias without arguments.
pub type ReceiptResult = Result<Receipt, PayError>;

/// No arguments, unit result.
#[idempotent]
pub async fn nothing() -> Result<(), Error> {
    Ok(())
}

/// Every `#[idempotent]` option.
#[idempotent(
    key_prefix = "billing::charge",
    version = "v2",
    skip(trace),
    client = OnceOnly::memory(),
    ttl = Duration::from_secs(60),
    wait_on_conflict = true,
    timeout = Duration::from_secs(5),
    error_code = "declined",
    terminal_failures,
    fail_open = false,
    metadata = JsonMap::new(),
    run_id = "run_1",
    crate = ::onceonly_runtime
)]
pub async fn charge(order_id: &str, cents: u64, trace: &str) -> PayResult<Receipt> {
    let _ = trace;
    if cents == 0 {
        return Err(PayError::Declined);
    }
    Ok(Receipt { id: format!("{order_id}:{cents}") })
}

/// An alias without arguments.
#[idempotent]
pub async fn refund(order_id: String) -> ReceiptResult {
    Ok(Receipt { id: order_id })
}

/// Every `#[idempotent_ai]` option.
#[idempotent_ai(
    key = format!("welcome:{user_id}"),
    client = Arc::new(OnceOnly::memory()),
    ttl = Duration::from_secs(60),
    wait_on_conflict = false,
    timeout = Duration::from_secs(5),
    error_code = "mail_failed",
    terminal_failures = false,
    fail_open = true,
    metadata = JsonMap::new(),
    run_id = user_id
)]
pub async fn welcome(user_id: &str) -> Result<String, Error> {
    Ok(format!("hi {user_id}"))
}

/// A service with methods.
pub struct Service {
    client: OnceOnly,
    count: u32,
}

impl Service {
    /// `&self`.
    #[idempotent(client = &self.client)]
    pub async fn get(&self, id: u32) -> Result<u32, Error> {
        Ok(id + self.count)
    }

    /// `&mut self`, with a mutable argument.
    #[idempotent_ai(key = format!("bump:{by}"), client = &self.client)]
    pub async fn bump(&mut self, mut by: u32) -> Result<u32, Error> {
        by += 1;
        self.count += by;
        Ok(self.count)
    }

    /// `self: Arc<Self>`.
    #[idempotent(client = self.client.clone())]
    pub async fn shared(self: Arc<Self>, r#type: String) -> Result<String, Error> {
        Ok(r#type)
    }
}

/// A trait with a native async fn.
pub trait Mailer {
    /// Sends once.
    fn send(&self, to: &str) -> impl Future<Output = Result<String, Error>> + Send;
}

impl Mailer for Service {
    #[idempotent_ai(key = format!("mail:{to}"), client = &self.client)]
    async fn send(&self, to: &str) -> Result<String, Error> {
        Ok(to.to_owned())
    }
}

/// Generic with a where clause, and a destructured argument.
#[idempotent]
pub async fn pair<T>((a, b): (T, T)) -> Result<Vec<T>, Error>
where
    T: Serialize + serde::de::DeserializeOwned + Send,
{
    Ok(vec![a, b])
}

fn main() {
    let _ = (nothing, charge, refund, welcome, pair::<u8>);
    let _ = Service { client: OnceOnly::memory(), count: 0 };
}
