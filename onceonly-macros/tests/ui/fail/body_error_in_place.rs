use onceonly_runtime::{Error, idempotent};

#[idempotent]
async fn charge(order_id: &str) -> Result<u64, Error> {
    let cents: u64 = order_id;
    Ok(cents)
}

fn main() {}
