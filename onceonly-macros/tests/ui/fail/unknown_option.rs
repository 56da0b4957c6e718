use onceonly_runtime::{Error, idempotent};

#[idempotent(tll = std::time::Duration::from_secs(60))]
async fn charge(order_id: &str) -> Result<u64, Error> {
    Ok(order_id.len() as u64)
}

fn main() {}
