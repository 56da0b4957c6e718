use onceonly_runtime::{Error, idempotent};

pub struct Connection;

#[idempotent]
async fn charge(conn: &Connection, order_id: &str) -> Result<u64, Error> {
    let _ = conn;
    Ok(order_id.len() as u64)
}

fn main() {}
