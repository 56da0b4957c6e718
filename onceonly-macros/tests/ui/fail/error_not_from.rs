use onceonly_runtime::idempotent;

#[derive(Debug)]
pub enum PayError {
    Declined,
}

#[idempotent]
async fn charge(order_id: &str) -> Result<u64, PayError> {
    if order_id.is_empty() {
        return Err(PayError::Declined);
    }
    Ok(1)
}

fn main() {}
