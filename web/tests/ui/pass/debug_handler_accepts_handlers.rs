//! What `#[weft::debug_handler]` accepts compiles unchanged, without a warning, in a crate that
//! forbids what doc-strict crates forbid, and registers as a handler.
#![forbid(missing_docs, unreachable_pub, unsafe_code)]
#![deny(warnings)]
use weft::prelude::*;

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
}

#[weft::debug_handler]
async fn index() -> &'static str {
    "index"
}

#[weft::debug_handler]
async fn ping() {}

#[weft::debug_handler]
async fn show(Path(id): Path<u32>, headers: HeaderMap, method: Method) -> String {
    format!("{id} {} {method}", headers.len())
}

#[weft::debug_handler]
async fn create(Path(team): Path<u32>, Json(user): Json<NewUser>) -> Result<String, Error> {
    Ok(format!("{} joins team {team}", user.name))
}

#[weft::debug_handler]
pub(crate) async fn echo(body: String) -> (StatusCode, String) {
    (StatusCode::CREATED, body)
}

fn main() {
    let _ = App::new()
        .get("/", index)
        .get("/ping", ping)
        .get("/items/{id}", show)
        .post("/teams/{team}/users", create)
        .post("/echo", echo);
}
