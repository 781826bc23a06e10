//! Extractors and services: what each takes, what each refuses (as problem+json), and
//! registrations checked when the app is built.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::Method;
use serde::Deserialize;
use support::{call, get, request, send};
use weft::Body;
use weft::extract::{BodyLimits, Extension};
use weft::pipe::Valid;
use weft::prelude::*;
use weft::services::{Inject, Provider, Scoped, State};

#[derive(Debug, Deserialize, garde::Validate)]
struct NewUser {
    #[garde(length(min = 2, max = 20))]
    name: String,
    #[garde(range(min = 18))]
    age: u8,
}

async fn create(Json(user): Json<NewUser>) -> String {
    format!("{} ({})", user.name, user.age)
}

async fn validated(Valid(Json(user)): Valid<Json<NewUser>>) -> String {
    user.name
}

fn json_app() -> weft::AppService {
    App::new()
        .post("/users", create)
        .post("/valid", validated)
        .body_limits(BodyLimits {
            json: 64,
            ..BodyLimits::default()
        })
        .build()
        .unwrap()
}

#[test]
fn json_bodies_are_read_and_refused_with_the_right_status() {
    let app = json_app();
    let ok = send(
        &app,
        Method::POST,
        "/users",
        "application/json",
        r#"{"name":"ada","age":36}"#,
    );
    assert_eq!(ok.text(), "ada (36)");
    let vendor = send(
        &app,
        Method::POST,
        "/users",
        "application/vnd.x+json",
        r#"{"name":"ada","age":36}"#,
    );
    assert_eq!(vendor.status, 200);
    send(&app, Method::POST, "/users", "text/plain", "{}").problem(415, "json.media_type");
    send(&app, Method::POST, "/users", "application/json", "{").problem(400, "json.syntax");
    send(
        &app,
        Method::POST,
        "/users",
        "application/json",
        r#"{"name":"ada"}"#,
    )
    .problem(422, "json.data");
    send(
        &app,
        Method::POST,
        "/users",
        "application/json",
        r#"{"name":"ada","age":36} x"#,
    )
    .problem(400, "json.syntax");
    let big = format!(r#"{{"name":"{}","age":1}}"#, "a".repeat(100));
    send(&app, Method::POST, "/users", "application/json", &big).problem(413, "json.too_large");
}

#[test]
fn validation_lists_every_failing_field() {
    let app = json_app();
    let ok = send(
        &app,
        Method::POST,
        "/valid",
        "application/json",
        r#"{"name":"ada","age":36}"#,
    );
    assert_eq!(ok.text(), "ada");
    let problem = send(
        &app,
        Method::POST,
        "/valid",
        "application/json",
        r#"{"name":"a","age":3}"#,
    )
    .problem(400, "validation.failed");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["age", "name"]);
}

#[derive(Debug, Deserialize)]
struct Search {
    q: String,
    #[serde(default)]
    page: u32,
}

#[test]
fn query_and_form_extractors() {
    let app = App::new()
        .get("/search", |Query(s): Query<Search>| async move {
            format!("{} {}", s.q, s.page)
        })
        .post("/login", |Form(s): Form<Search>| async move { s.q })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/search?q=rust&page=2").text(), "rust 2");
    assert_eq!(get(&app, "/search?q=a%20b").text(), "a b 0");
    get(&app, "/search?page=x").problem(400, "query.invalid");
    let form = send(
        &app,
        Method::POST,
        "/login",
        "application/x-www-form-urlencoded",
        "q=hi+there",
    );
    assert_eq!(form.text(), "hi there");
    send(&app, Method::POST, "/login", "application/json", "{}").problem(415, "form.media_type");
    send(
        &app,
        Method::POST,
        "/login",
        "application/x-www-form-urlencoded",
        "page=1",
    )
    .problem(400, "form.invalid");
}

#[test]
fn raw_bodies_are_bounded() {
    let app = App::new()
        .post("/bytes", |body: bytes::Bytes| async move {
            body.len().to_string()
        })
        .post("/text", |body: String| async move { body })
        .body_limits(BodyLimits {
            bytes: 8,
            ..BodyLimits::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        send(&app, Method::POST, "/bytes", "x/y", "12345678").text(),
        "8"
    );
    send(&app, Method::POST, "/bytes", "x/y", "123456789").problem(413, "body.too_large");
    let invalid = call(
        &app,
        request(Method::POST, "/text")
            .body(Body::from(vec![0xff, 0xfe]))
            .unwrap(),
    );
    invalid.problem(400, "body.not_utf8");
}

#[test]
fn head_extractors_and_a_missing_extension() {
    #[derive(Clone)]
    struct User(&'static str);
    let app = App::new()
        .get(
            "/who",
            |Extension(user): Extension<User>, method: Method, headers: HeaderMap| async move {
                format!("{} {method} {}", user.0, headers.len())
            },
        )
        .build()
        .unwrap();
    get(&app, "/who").problem(500, "extension.missing");
}

struct Config {
    greeting: &'static str,
}

struct Greeter {
    line: String,
}

#[test]
fn services_are_built_in_dependency_order_and_injected_by_type() {
    let app = App::new()
        .singleton(|config: Inject<Config>| Greeter {
            line: format!("{}, world", config.greeting),
        })
        .state(Config { greeting: "hello" })
        .get(
            "/",
            |greeter: Inject<Greeter>, config: State<Config>| async move {
                format!("{} ({})", greeter.line, config.greeting)
            },
        )
        .build()
        .unwrap();
    assert_eq!(get(&app, "/").text(), "hello, world (hello)");
}

async fn needs_greeter(greeter: Inject<Greeter>) -> String {
    greeter.line.clone()
}

#[test]
fn a_handler_needing_an_unregistered_service_fails_the_build_naming_both() {
    let error = App::new()
        .get("/hi", needs_greeter)
        .build()
        .expect_err("missing service");
    let message = error.to_string();
    assert!(message.contains("GET /hi"), "{message}");
    assert!(message.contains("needs_greeter"), "{message}");
    assert!(message.contains("Greeter"), "{message}");
}

#[test]
fn a_service_needing_an_unregistered_one_fails_the_build_naming_both() {
    let error = App::new()
        .singleton(|config: Inject<Config>| Greeter {
            line: config.greeting.to_owned(),
        })
        .build()
        .expect_err("missing dependency");
    let message = error.to_string();
    assert!(
        message.contains("Greeter") && message.contains("Config"),
        "{message}"
    );
}

#[test]
fn start_hooks_run_in_dependency_order_and_stop_hooks_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    let app = App::new()
        .provide(
            Provider::singleton(|config: Inject<Config>| Greeter {
                line: config.greeting.into(),
            })
            .on_start(move |_: &Greeter| {
                a.lock().unwrap().push("start greeter");
                Ok(())
            })
            .on_stop(move |_: &Greeter| b.lock().unwrap().push("stop greeter")),
        )
        .provide(
            Provider::value(Config { greeting: "hi" })
                .on_start(move |_: &Config| {
                    c.lock().unwrap().push("start config");
                    Ok(())
                })
                .on_stop(move |_: &Config| d.lock().unwrap().push("stop config")),
        )
        .build()
        .unwrap();
    app.start().unwrap();
    app.start().unwrap();
    app.stop();
    app.stop();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "start config",
            "start greeter",
            "stop greeter",
            "stop config"
        ]
    );
}

struct RequestScope {
    number: usize,
}

#[test]
fn scoped_services_are_built_once_per_request() {
    static BUILT: AtomicUsize = AtomicUsize::new(0);
    let app = App::new()
        .scoped(|_parts, _services| {
            Ok(RequestScope {
                number: BUILT.fetch_add(1, Ordering::SeqCst),
            })
        })
        .get(
            "/",
            |a: Scoped<RequestScope>, b: Scoped<RequestScope>| async move {
                format!("{} {}", a.number, b.number)
            },
        )
        .build()
        .unwrap();
    assert_eq!(get(&app, "/").text(), "0 0");
    assert_eq!(get(&app, "/").text(), "1 1");
}

#[test]
fn a_handler_needing_an_unregistered_scoped_service_fails_the_build() {
    let error = App::new()
        .get("/", |s: Scoped<RequestScope>| async move {
            s.number.to_string()
        })
        .build()
        .expect_err("missing scoped service");
    assert!(error.to_string().contains("App::scoped"), "{error}");
}
