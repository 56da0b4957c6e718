use onceonly_runtime::{Error, idempotent_ai};

#[idempotent_ai(key = format!("email:{user_id}"), agent = "support-bot")]
async fn send_welcome(user_id: &str) -> Result<String, Error> {
    Ok(user_id.to_owned())
}

#[idempotent_ai(key = format!("email:{user_id}"), spend_usd = 0.5)]
async fn send_reminder(user_id: &str) -> Result<String, Error> {
    Ok(user_id.to_owned())
}

fn main() {}
