//! The app behind `weft demo`: a small site with the framework's production features on,
//! used by the README and by the tests that attack it.
//!
//! Routes:
//! - `GET /`: an HTML page with a form;
//! - `POST /form`: the form's target (urlencoded);
//! - `GET|POST /api/items`: JSON; `POST` validates `{"name": 1..=64 chars, "qty": 1..=1000}`;
//! - `GET /api/items/{id}`: one item by its typed id;
//! - `GET /api/limited`: a cheap answer, for the rate limit;
//! - `GET /big`: 64 KiB of compressible text;
//! - `GET /panic`: a handler that panics (the server answers 500 and lives on).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use weft::pipe::Valid;
use weft::prelude::*;

/// One stored item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Its id, from 1.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// How many.
    pub qty: u32,
}

/// What `POST /api/items` takes.
#[derive(Debug, Deserialize, garde::Validate)]
pub struct NewItem {
    /// 1 to 64 characters.
    #[garde(length(chars, min = 1, max = 64))]
    pub name: String,
    /// 1 to 1000.
    #[garde(range(min = 1, max = 1000))]
    pub qty: u32,
}

/// The items, in memory.
#[derive(Debug, Default)]
pub struct Items {
    items: Mutex<Vec<Item>>,
}

impl Items {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Item>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The form of `POST /form`.
#[derive(Debug, Deserialize)]
struct Message {
    message: String,
}

async fn home() -> Html<String> {
    Html(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>weft demo</title></head>\n\
         <body><h1>weft demo</h1>\n\
         <form method=\"post\" action=\"/form\">\n\
         <input name=\"message\" placeholder=\"say something\">\n\
         <button>send</button>\n</form>\n</body></html>\n"
            .to_owned(),
    )
}

async fn form(Form(message): Form<Message>) -> Html<String> {
    Html(format!(
        "<p>you said: {}</p>",
        weft::problem::escape_html(&message.message)
    ))
}

async fn list(items: Inject<Items>) -> Json<Vec<Item>> {
    Json(items.lock().clone())
}

async fn create(
    items: Inject<Items>,
    Valid(Json(new)): Valid<Json<NewItem>>,
) -> (StatusCode, Json<Item>) {
    let mut items = items.lock();
    let item = Item {
        id: items.len() as u64 + 1,
        name: new.name,
        qty: new.qty,
    };
    items.push(item.clone());
    (StatusCode::CREATED, Json(item))
}

async fn item(items: Inject<Items>, Path(id): Path<u64>) -> Result<Json<Item>, Error> {
    items
        .lock()
        .iter()
        .find(|item| item.id == id)
        .cloned()
        .map(Json)
        .ok_or_else(|| Error::not_found(format!("no item {id}")))
}

/// 64 KiB of text that compresses well.
fn big_text() -> String {
    let line = "weft demo: a line of text that repeats, so that it compresses well.\n";
    line.repeat(64 * 1024 / line.len() + 1)[..64 * 1024].to_owned()
}

async fn big() -> String {
    big_text()
}

/// Panics: the demo shows that a panicking handler costs one `500`, not the server.
#[allow(clippy::panic)]
async fn panics() -> &'static str {
    panic!("the demo's /panic route panics on purpose")
}

/// The demo app.
pub fn app() -> App {
    App::new()
        .singleton(Items::default)
        .get("/", home)
        .post("/form", form)
        .group("/api", |api| {
            api.get("/items", list)
                .post("/items", create)
                .get("/items/{id}", item)
                .get("/limited", || async {
                    Json(serde_json::json!({ "ok": true }))
                })
        })
        .get("/big", big)
        .get("/panic", panics)
}

#[cfg(test)]
mod tests {
    use weft::test::TestClient;

    fn client() -> TestClient {
        TestClient::new(super::app().build().expect("the demo builds"))
    }

    #[test]
    fn items_are_created_validated_and_read() {
        let client = client();
        client
            .post("/api/items")
            .json(&serde_json::json!({ "name": "bolt", "qty": 10 }))
            .send()
            .assert_status(201)
            .assert_json_includes(&serde_json::json!({ "id": 1, "name": "bolt" }));
        client.get("/api/items/1").send().assert_status(200);
        client.get("/api/items/x").send().assert_status(400);
        let refused = client
            .post("/api/items")
            .json(&serde_json::json!({ "name": "", "qty": 0 }))
            .send();
        refused
            .assert_status(400)
            .assert_header("content-type", "application/problem+json");
        assert_eq!(
            refused.json::<serde_json::Value>()["errors"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn the_big_page_is_64_kib_and_panics_are_500() {
        let client = client();
        assert_eq!(client.get("/big").send().bytes().len(), 64 * 1024);
        client.get("/panic").send().assert_status(500);
    }
}
