// A middle argument that is not an extractor: the error points at it and names it.
use weft::prelude::*;

struct Config;

#[weft::debug_handler]
async fn show(Path(id): Path<u32>, config: Config, body: String) -> String {
    let _ = config;
    format!("{id} {body}")
}

fn main() {
    let _ = show;
}
