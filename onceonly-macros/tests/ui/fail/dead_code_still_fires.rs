#![deny(dead_code, unused_variables)]

use onceonly_runtime::{Error, idempotent_ai};

#[idempotent_ai(key = format!("k:{id}"))]
async fn never_called(id: u32, unused: u32) -> Result<u32, Error> {
    let scratch = 5;
    Ok(id)
}

fn main() {}
