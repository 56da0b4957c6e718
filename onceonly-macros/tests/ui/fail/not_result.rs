use onceonly_runtime::idempotent;

#[idempotent]
async fn charge(order_id: &str) -> u64 {
    order_id.len() as u64
}

fn main() {}
