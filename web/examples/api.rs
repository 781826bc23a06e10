//! A small JSON API: CRUD on an in-memory store injected as a service, validation with
//! per-field errors, typed params and queries, problem+json for every failure.
//!
//! ```text
//! cargo run -p weft --example api -- 127.0.0.1:8080
//! curl -i -H 'content-type: application/json' -d '{"title":"write docs","priority":2}' http://127.0.0.1:8080/todos
//! curl -i http://127.0.0.1:8080/todos?done=false
//! curl -i -X PATCH -H 'content-type: application/json' -d '{"done":true}' http://127.0.0.1:8080/todos/1
//! curl -i -H 'content-type: application/json' -d '{"title":"","priority":9}' http://127.0.0.1:8080/todos   # 400, both fields listed
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use weft::pipe::Valid;
use weft::prelude::*;

#[derive(Clone, Serialize)]
struct Todo {
    id: u64,
    title: String,
    priority: u8,
    done: bool,
}

#[derive(Deserialize, garde::Validate)]
struct NewTodo {
    #[garde(length(min = 1, max = 200))]
    title: String,
    #[garde(range(min = 1, max = 5))]
    priority: u8,
}

#[derive(Deserialize)]
struct Change {
    done: bool,
}

#[derive(Deserialize)]
struct Filter {
    done: Option<bool>,
}

/// The store: a service every handler gets by type.
#[derive(Default)]
struct Todos {
    items: Mutex<BTreeMap<u64, Todo>>,
}

impl Todos {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Todo>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn list(todos: Inject<Todos>, Query(filter): Query<Filter>) -> Json<Vec<Todo>> {
    let items = todos.lock();
    Json(
        items
            .values()
            .filter(|t| filter.done.is_none_or(|done| t.done == done))
            .cloned()
            .collect(),
    )
}

async fn create(
    todos: Inject<Todos>,
    Valid(Json(new)): Valid<Json<NewTodo>>,
) -> (StatusCode, Json<Todo>) {
    let mut items = todos.lock();
    let id = items.keys().next_back().map_or(1, |last| last + 1);
    let todo = Todo {
        id,
        title: new.title,
        priority: new.priority,
        done: false,
    };
    items.insert(id, todo.clone());
    (StatusCode::CREATED, Json(todo))
}

async fn update(
    todos: Inject<Todos>,
    Path(id): Path<u64>,
    Json(change): Json<Change>,
) -> Result<Json<Todo>, Error> {
    let mut items = todos.lock();
    let todo = items
        .get_mut(&id)
        .ok_or_else(|| Error::not_found(format!("no todo {id}")))?;
    todo.done = change.done;
    Ok(Json(todo.clone()))
}

async fn remove(todos: Inject<Todos>, Path(id): Path<u64>) -> Result<StatusCode, Error> {
    match todos.lock().remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Error::not_found(format!("no todo {id}"))),
    }
}

fn app() -> App {
    App::new()
        .singleton(Todos::default)
        .group("/todos", |todos| {
            todos
                .get("/", list)
                .post("/", create)
                .patch("/{id}", update)
                .delete("/{id}", remove)
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    app().serve(address)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use weft::test::TestClient;

    #[test]
    fn create_list_update_delete() {
        let client = TestClient::new(super::app().build().unwrap());
        client
            .post("/todos")
            .json(&serde_json::json!({ "title": "docs", "priority": 2 }))
            .send()
            .assert_status(201)
            .assert_json_includes(&serde_json::json!({ "id": 1, "done": false }));
        client
            .patch("/todos/1")
            .json(&serde_json::json!({ "done": true }))
            .send()
            .assert_json_includes(&serde_json::json!({ "done": true }));
        client
            .get("/todos?done=true")
            .send()
            .assert_json_includes(&serde_json::json!([{ "id": 1 }]));
        client.delete("/todos/1").send().assert_status(204);
        client.delete("/todos/1").send().assert_status(404);
        client
            .post("/todos")
            .json(&serde_json::json!({ "title": "", "priority": 9 }))
            .send()
            .assert_status(400);
    }
}
