use onceonly_runtime::idempotent_ai;

#[idempotent_ai(key = format!("send:{user}"))]
async fn send(user: &str) {
    println!("{user}");
}

fn main() {}
