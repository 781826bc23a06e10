// A future that holds a non-`Send` value across an `.await`.
use std::rc::Rc;

async fn tick() {}

#[weft::debug_handler]
async fn count(body: String) -> String {
    let shared = Rc::new(body);
    tick().await;
    shared.to_string()
}

fn main() {
    let _ = count;
}
