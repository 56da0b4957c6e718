use onceonly_runtime::{Error, idempotent};

/// Not `Serialize`/`Deserialize`: cannot be stored and replayed.
pub struct Receipt {
    pub id: String,
}

#[idempotent]
async fn charge(order_id: &str) -> Result<Receipt, Error> {
    Ok(Receipt { id: order_id.to_owned() })
}

fn main() {}
