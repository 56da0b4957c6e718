use onceonly_runtime::{Error, idempotent};

#[idempotent(skip(trace))]
async fn charge(order_id: &str, trace_id: &str) -> Result<u64, Error> {
    let _ = trace_id;
    Ok(order_id.len() as u64)
}

fn main() {}
