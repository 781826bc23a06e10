//! The app behind `weft demo`: a small site with the framework's production features on,
//! used by the README and by the tests that attack it. Every response carries an
//! `X-Request-Id` and the security headers.
//!
//! Routes:
//! - `GET /`: an HTML page with a form carrying a CSRF token;
//! - `POST /form`: the form's target (urlencoded, at most 16 KiB), refused (403) without the
//!   token;
//! - `GET|POST /api/items`: JSON, CORS allowing `https://app.example`; `POST` validates
//!   `{"name": 1..=64 chars, "qty": 1..=1000}`;
//! - `GET /api/items/{id}`: one item by its typed id, with an ETag (304 for `If-None-Match`);
//! - `GET /api/limited`: 5 requests a minute per client IP, then 429 with `Retry-After`;
//! - `GET /big`: 64 KiB of compressible text (br, gzip or deflate by `Accept-Encoding`);
//! - `GET /panic`: a handler that panics (the server answers 500 and lives on);
//! - `GET /health`, `GET /ready`: liveness and readiness.
//!
//! Errors are problem+json for API clients and HTML pages for browsers (`Accept: text/html`);
//! every request is logged on one access line (target `weft::access`).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::access_log::AccessLog;
use weft::client_ip::{Cidr, TrustedProxies};
use weft::compression::{Compression, RequestDecompression};
use weft::conditional::Conditional;
use weft::cookies::{CookieKey, Key};
use weft::cors::Cors;
use weft::csrf::{Csrf, CsrfToken};
use weft::error_pages::ErrorPages;
use weft::health::{Health, HealthExt};
use weft::limits::RouteLimits;
use weft::pipe::Valid;
use weft::prelude::*;
use weft::rate_limit::{MemoryStore, RateLimit};
use weft::request_id::RequestIds;
use weft::security_headers::SecurityHeaders;

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

async fn home(token: CsrfToken) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>weft demo</title></head>\n\
         <body><h1>weft demo</h1>\n\
         <form method=\"post\" action=\"/form\">\n{}\n\
         <input name=\"message\" placeholder=\"say something\">\n\
         <button>send</button>\n</form>\n</body></html>\n",
        token.hidden_input()
    ))
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

/// The origin the API's CORS policy allows.
pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// The largest body `POST /form` reads.
pub const FORM_LIMIT: usize = 16 * 1024;

/// Requests a minute one client may make to `/api/limited`.
pub const LIMITED_PER_MINUTE: u32 = 5;

/// Client IPs the rate limiter remembers at most: what 10 000 addresses (or any number) can
/// make it hold.
pub const RATE_LIMIT_KEYS: usize = 4096;

/// How `weft demo` runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A `500` page shows the panic, its backtrace and the request.
    pub development: bool,
    /// Peers whose `X-Forwarded-For` / `Forwarded` are believed (a reverse proxy in front).
    pub trusted_proxies: Vec<Cidr>,
}

/// `/api/limited`, behind its rate limit.
fn limited_route(options: &Options) -> Route {
    let route = Route::get("/limited", || async {
        Json(serde_json::json!({ "ok": true }))
    });
    match RateLimit::new(LIMITED_PER_MINUTE, Duration::from_secs(60)) {
        Some(limit) => route.middleware(
            limit
                .store(MemoryStore::new(RATE_LIMIT_KEYS))
                .trusted_proxies(TrustedProxies::from_cidrs(options.trusted_proxies.clone()))
                .per_ip(),
        ),
        None => route,
    }
}

/// The demo app with the default [`Options`]: see [`app_with`].
pub fn app() -> App {
    app_with(&Options::default())
}

/// The demo app, its cookie and CSRF key made fresh (tokens do not survive a restart).
pub fn app_with(options: &Options) -> App {
    let key = CookieKey(Key::generate());
    let app = App::new()
        // Outermost: the access line sees every answer, error pages included.
        .middleware(AccessLog::new())
        .state(key.clone())
        .singleton(Items::default)
        .middleware(RequestIds::new())
        .middleware(SecurityHeaders::new())
        // Responses compressed by Accept-Encoding; compressed request bodies decoded, with a
        // limit on what they may inflate to.
        .middleware(Compression::new())
        .middleware(RequestDecompression::new())
        .group("", |pages| {
            pages
                // Pages take small forms: a longer body is refused (413) before it is read.
                .middleware(RouteLimits::new().max_body(FORM_LIMIT))
                .middleware(Csrf::new(&key))
                .get("/", home)
                .post("/form", form)
        })
        .group("/api", |api| {
            api.middleware(
                Cors::new()
                    .allow_origin(ALLOWED_ORIGIN)
                    .allow_methods([Method::GET, Method::POST])
                    .allow_headers(["content-type"]),
            )
            .get("/items", list)
            .post("/items", create)
            .add_route(
                Route::get("/items/{id}", item)
                    .middleware(Conditional::new().etag_from_body(64 * 1024)),
            )
            .add_route(limited_route(options))
        })
        .get("/big", big)
        .get("/panic", panics);
    let app = ErrorPages::new()
        .development(options.development)
        .mount(app);
    app.health(Health::new())
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
    fn the_form_needs_its_csrf_token() {
        let client = client();
        let page = client.get("/").send();
        page.assert_status(200);
        let html = page.text();
        let token = html
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a token in the form")
            .to_owned();
        client
            .post("/form")
            .form(&[("message", "hi")])
            .send()
            .assert_status(403)
            .assert_header("content-type", "application/problem+json");
        client
            .post("/form")
            .form(&[("message", "hi"), ("_csrf", token.as_str())])
            .send()
            .assert_status(200)
            .assert_text("<p>you said: hi</p>");
    }

    #[test]
    fn the_api_allows_one_origin_and_limits_one_route() {
        let client = client();
        let preflight = |origin: &str| {
            client
                .options("/api/items")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .send()
        };
        preflight(super::ALLOWED_ORIGIN)
            .assert_status(204)
            .assert_header("access-control-allow-origin", super::ALLOWED_ORIGIN);
        preflight("https://evil.example")
            .assert_status(403)
            .assert_no_header("access-control-allow-origin");
        for _ in 0..super::LIMITED_PER_MINUTE {
            client.get("/api/limited").send().assert_status(200);
        }
        let refused = client.get("/api/limited").send();
        refused
            .assert_status(429)
            .assert_header("content-type", "application/problem+json");
        assert!(refused.header("retry-after").is_some());
    }

    #[test]
    fn items_have_etags_and_big_pages_are_compressed() {
        let client = client();
        client
            .post("/api/items")
            .json(&serde_json::json!({ "name": "nut", "qty": 1 }))
            .send()
            .assert_status(201);
        let first = client.get("/api/items/1").send();
        let etag = first.header("etag").expect("an ETag").to_owned();
        client
            .get("/api/items/1")
            .header("if-none-match", etag.as_str())
            .send()
            .assert_status(304);
        let big = client.get("/big").header("accept-encoding", "gzip").send();
        big.assert_header("content-encoding", "gzip");
        assert!(
            big.bytes().len() < 64 * 1024 / 4,
            "{} bytes",
            big.bytes().len()
        );
    }

    #[test]
    fn every_answer_has_a_request_id_and_security_headers() {
        let answer = client().get("/api/items").send();
        assert!(answer.header("x-request-id").is_some());
        answer
            .assert_header("x-content-type-options", "nosniff")
            .assert_header("x-frame-options", "DENY");
    }

    #[test]
    fn health_and_error_pages() {
        let service = super::app().build().expect("the demo builds");
        service.start().expect("no start hook fails");
        let client = TestClient::new(service);
        client.get("/health").send().assert_status(200);
        client.get("/ready").send().assert_status(200);
        client
            .get("/nowhere")
            .header("accept", "text/html")
            .send()
            .assert_status(404)
            .assert_header("content-type", "text/html; charset=utf-8");
        let panicked = client.get("/panic").send();
        panicked.assert_status(500);
        assert!(
            !panicked.text().contains("on purpose"),
            "production hides the panic"
        );
        let options = super::Options {
            development: true,
            ..Default::default()
        };
        let development = TestClient::new(super::app_with(&options).build().expect("builds"));
        let page = development
            .get("/panic")
            .header("accept", "text/html")
            .send();
        assert!(page.text().contains("on purpose"), "{}", page.text());
    }

    #[test]
    fn the_big_page_is_64_kib_and_panics_are_500() {
        let client = client();
        assert_eq!(client.get("/big").send().bytes().len(), 64 * 1024);
        client.get("/panic").send().assert_status(500);
    }
}
