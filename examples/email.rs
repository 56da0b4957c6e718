//! Welcome emails from a webhook that is delivered more than once.
//!
//! `cargo run -p onceonly-examples --example email`
//!
//! The identity provider sends `user.created` at least once: redeliveries and concurrent
//! workers are normal. `#[idempotent_ai(key = ..)]` keys the email on the business fact ("the
//! welcome email of user X"), not on the delivery, so each user gets one email. A hard bounce
//! is a terminal failure: the address is not tried again. Runs on the embedded engine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::{Error, OnceOnly, idempotent_ai};
use serde::{Deserialize, Serialize};

/// What the mail provider answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sent {
    message_id: String,
    to: String,
}

/// Why an email was not sent.
#[derive(Debug)]
enum MailError {
    /// The address does not exist; sending again will not help.
    HardBounce(String),
    /// OnceOnly itself failed, or refused because of an earlier failure.
    OnceOnly(Error),
}

impl From<Error> for MailError {
    fn from(e: Error) -> Self {
        MailError::OnceOnly(e)
    }
}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailError::HardBounce(to) => write!(f, "hard bounce from {to}"),
            MailError::OnceOnly(e) => write!(f, "{e}"),
        }
    }
}

/// Stands in for the mail provider: the outbox shows what really left.
static OUTBOX: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SEND_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

async fn provider_send(to: &str, subject: &str) -> Result<Sent, MailError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    SEND_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    if to.ends_with("@invalid.example") {
        return Err(MailError::HardBounce(to.to_owned()));
    }
    let mut outbox = OUTBOX.lock().expect("outbox lock");
    outbox.push(format!("{to}: {subject}"));
    Ok(Sent {
        message_id: format!("msg_{}", outbox.len()),
        to: to.to_owned(),
    })
}

/// Sends the welcome email of a user, once per user; a hard bounce sticks.
#[idempotent_ai(
    key = format!("welcome:email:{user_id}"),
    terminal_failures,
    error_code = "hard_bounce"
)]
async fn send_welcome_email(user_id: &str, address: &str) -> Result<Sent, MailError> {
    provider_send(address, "Welcome aboard").await
}

/// A delivery of the `user.created` webhook.
struct UserCreated {
    delivery_id: &'static str,
    user_id: &'static str,
    email: &'static str,
}

#[tokio::main]
async fn main() -> Result<(), MailError> {
    OnceOnly::set_global(OnceOnly::memory());

    println!("1. the webhook is delivered three times for the same user");
    let deliveries = [
        UserCreated {
            delivery_id: "dlv_1",
            user_id: "u_100",
            email: "ada@example.com",
        },
        UserCreated {
            delivery_id: "dlv_2",
            user_id: "u_100",
            email: "ada@example.com",
        },
        UserCreated {
            delivery_id: "dlv_3",
            user_id: "u_100",
            email: "ada@example.com",
        },
    ];
    for d in &deliveries {
        let sent = send_welcome_email(d.user_id, d.email).await?;
        println!("   {} -> {} to {}", d.delivery_id, sent.message_id, sent.to);
    }

    println!("2. twenty workers handle the same delivery of another user at once");
    let workers: Vec<_> = (0..20)
        .map(|_| tokio::spawn(send_welcome_email("u_200", "grace@example.com")))
        .collect();
    let mut ids = Vec::new();
    for w in workers {
        ids.push(w.await.expect("worker panicked")?.message_id);
    }
    ids.dedup();
    println!("   distinct message ids: {ids:?}");

    println!("3. a hard bounce is terminal: the address is not tried again");
    for attempt in 1..=2 {
        match send_welcome_email("u_300", "nobody@invalid.example").await {
            Ok(sent) => println!("   attempt {attempt}: sent {}", sent.message_id),
            Err(e) => println!("   attempt {attempt}: {e}"),
        }
    }

    let outbox = OUTBOX.lock().expect("outbox lock").clone();
    let attempts = SEND_ATTEMPTS.load(Ordering::SeqCst);
    println!();
    println!("25 calls; {attempts} reached the provider; the outbox holds:");
    for line in &outbox {
        println!("   {line}");
    }
    assert_eq!(outbox.len(), 2, "one welcome email per user");
    assert_eq!(attempts, 3, "two sends and one bounce, nothing retried");
    Ok(())
}
