use onceonly_runtime::{Error, idempotent_ai};

#[idempotent_ai(key = "k", ttl = std::time::Duration::from_secs(60), ttl = std::time::Duration::from_secs(5))]
async fn charge(order_id: &str) -> Result<u64, Error> {
    Ok(order_id.len() as u64)
}

fn main() {}
