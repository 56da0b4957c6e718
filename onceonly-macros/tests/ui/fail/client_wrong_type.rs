use onceonly_runtime::{Error, idempotent_ai};

#[idempotent_ai(key = "k", client = "https://api.example")]
async fn send(user_id: &str) -> Result<String, Error> {
    Ok(user_id.to_owned())
}

fn main() {}
