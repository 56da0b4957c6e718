use onceonly_runtime::{Error, idempotent};

#[idempotent]
fn charge(order_id: &str) -> Result<u64, Error> {
    Ok(order_id.len() as u64)
}

fn main() {}
