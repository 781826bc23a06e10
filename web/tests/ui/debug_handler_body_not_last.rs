// A body extractor (`Json<T>`) that is not the last argument.
use weft::prelude::*;

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
}

#[weft::debug_handler]
async fn create(Json(user): Json<NewUser>, Path(team): Path<u32>) -> String {
    format!("{} joins team {team}", user.name)
}

fn main() {
    let _ = create;
}
