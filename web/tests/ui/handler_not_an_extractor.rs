// Without `#[weft::debug_handler]`: the error is on the whole function, where it is
// registered, with the notes of `Handler`.
use weft::prelude::*;

struct Config;

async fn show(Path(id): Path<u32>, config: Config, body: String) -> String {
    let _ = config;
    format!("{id} {body}")
}

fn main() {
    let _ = App::new().get("/show/{id}", show);
}
