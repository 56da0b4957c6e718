use onceonly_runtime::{Error, idempotent_ai};

#[idempotent_ai(key = format!("email:{user_id}"), agent = "support-bot", tool = "send_email")]
async fn send_welcome(user_id: &str) -> Result<String, Error> {
    Ok(user_id.to_owned())
}

fn main() {}
