use onceonly_runtime::{Error, idempotent};

#[idempotent(key = format!("charge:{order_id}"))]
async fn charge(order_id: &str) -> Result<u64, Error> {
    Ok(order_id.len() as u64)
}

fn main() {}
