// An argument that is not an extractor: the error points at it and names it, in the middle
// (`FromRequestParts`) or last (`FromRequest`, either kind).
use weft::prelude::*;

struct Config;

#[weft::debug_handler]
async fn show(Path(id): Path<u32>, config: Config, body: String) -> String {
    let _ = config;
    format!("{id} {body}")
}

#[weft::debug_handler]
async fn edit(Path(id): Path<u32>, config: Config) -> String {
    let _ = config;
    format!("{id}")
}

fn main() {
    let _ = (show, edit);
}
