//! Middleware, guards, interceptors, pipes and exception filters: order, composition and
//! what each answers.

mod support;

use std::sync::{Arc, Mutex};

use http::Method;
use http::header::{HeaderName, HeaderValue};
use support::{call, get, request};
use weft::filter::{self, ErrorContext};
use weft::guard::{self, Roles};
use weft::interceptor::{Cache, Envelope, Timing};
use weft::middleware::{self, Next};
use weft::pipe::{DefaultValue, Input, ParseInt, ParseUuid, Trim};
use weft::prelude::*;
use weft::{Body, ErrorFormat};

type Log = Arc<Mutex<Vec<String>>>;

/// A middleware that writes its name in the log before and after the rest of the stack.
fn logging(log: &Log, name: &'static str) -> impl Middleware {
    let log = Arc::clone(log);
    middleware::from_fn(move |request: Request, next: Next| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(format!("{name} in"));
            let response = next.run(request).await;
            log.lock().unwrap().push(format!("{name} out"));
            response
        }
    })
}

#[test]
fn middleware_runs_app_then_group_then_route_in_declared_order() {
    let log: Log = Log::default();
    let handler_log = Arc::clone(&log);
    let app = App::new()
        .middleware(logging(&log, "app1"))
        .middleware(logging(&log, "app2"))
        .group("/g", |g| {
            g.middleware(logging(&log, "group")).add_route(
                Route::get("/r", move || {
                    let log = Arc::clone(&handler_log);
                    async move {
                        log.lock().unwrap().push("handler".into());
                        "ok"
                    }
                })
                .middleware(logging(&log, "route")),
            )
        })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/g/r").text(), "ok");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "app1 in",
            "app2 in",
            "group in",
            "route in",
            "handler",
            "route out",
            "group out",
            "app2 out",
            "app1 out"
        ]
    );
}

#[test]
fn app_middleware_sees_404s_and_a_middleware_can_answer_alone() {
    let app = App::new()
        .middleware(middleware::map_response(|mut response: Response| {
            response.headers_mut().insert(
                HeaderName::from_static("x-seen"),
                HeaderValue::from_static("1"),
            );
            response
        }))
        .group("/closed", |g| {
            g.middleware(middleware::from_fn(
                |_request: Request, _next: Next| async {
                    (StatusCode::SERVICE_UNAVAILABLE, "closed")
                },
            ))
            .get("/x", || async { "never" })
        })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/missing").header("x-seen"), Some("1"));
    let closed = get(&app, "/closed/x");
    assert_eq!(
        (closed.status.as_u16(), closed.text().as_str()),
        (503, "closed")
    );
}

#[test]
fn a_failing_middleware_goes_through_the_filters() {
    let app = App::new()
        .middleware(middleware::from_fn(
            |_request: Request, _next: Next| async {
                Err::<Response, _>(Error::unauthorized("no token"))
            },
        ))
        .get("/", || async { "never" })
        .build()
        .unwrap();
    let problem = get(&app, "/").problem(401, "unauthorized");
    assert_eq!(problem["detail"], "no token");
}

fn with_roles(names: &'static [&'static str]) -> impl Middleware {
    middleware::map_request(move |mut request: Request| {
        request
            .extensions_mut()
            .insert(Roles::new(names.iter().copied()));
        request
    })
}

#[test]
fn role_guards_at_group_level_answer_401_403_or_let_through() {
    let build = |roles: Option<&'static [&'static str]>| {
        let app = match roles {
            Some(names) => App::new().middleware(with_roles(names)),
            None => App::new(),
        };
        app.group("/admin", |g| {
            g.guard(guard::roles(["admin"])).get("/", || async { "in" })
        })
        .build()
        .unwrap()
    };
    build(None).pipe_get("/admin").problem(401, "auth.required");
    build(Some(&["viewer"]))
        .pipe_get("/admin")
        .problem(403, "auth.role");
    assert_eq!(build(Some(&["admin"])).pipe_get("/admin").text(), "in");
}

trait PipeGet {
    fn pipe_get(&self, uri: &str) -> support::Answer;
}

impl PipeGet for weft::AppService {
    fn pipe_get(&self, uri: &str) -> support::Answer {
        get(self, uri)
    }
}

#[test]
fn guards_compose_and_run_before_the_handler() {
    use weft::guard::GuardExt;
    let header_is = |name: &'static str| {
        guard::from_fn(move |request: &Request| request.headers().contains_key(name))
    };
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    let app = App::new()
        .add_route(
            Route::get("/", move || {
                *counted.lock().unwrap() += 1;
                async { "in" }
            })
            .guard(
                header_is("x-a")
                    .and(header_is("x-b"))
                    .or(guard::not(header_is("x-c"))),
            ),
        )
        .build()
        .unwrap();
    let with = |headers: &[&str]| {
        let mut builder = request(Method::GET, "/");
        for name in headers {
            builder = builder.header(*name, "1");
        }
        call(&app, builder.body(Body::empty()).unwrap())
            .status
            .as_u16()
    };
    assert_eq!(with(&["x-a", "x-b", "x-c"]), 200);
    assert_eq!(with(&["x-a", "x-c"]), 403);
    assert_eq!(with(&[]), 200);
    assert_eq!(
        *calls.lock().unwrap(),
        2,
        "a denied request never reaches the handler"
    );
}

#[test]
fn interceptors_wrap_the_handler_inside_guards() {
    let app = App::new()
        .interceptor(Timing)
        .get("/data", || async { Json(serde_json::json!({ "a": 1 })) })
        .add_route(
            Route::get("/wrapped", || async { Json(vec![1, 2]) }).interceptor(Envelope::default()),
        )
        .build()
        .unwrap();
    let answer = get(&app, "/data");
    assert!(
        answer
            .header("server-timing")
            .is_some_and(|v| v.starts_with("app;dur="))
    );
    let wrapped = get(&app, "/wrapped").json();
    assert_eq!(wrapped["data"], serde_json::json!([1, 2]));
    assert_eq!(wrapped["meta"]["status"], 200);
    assert_eq!(wrapped["meta"]["path"], "/wrapped");
}

#[test]
fn the_cache_interceptor_serves_hits_without_the_handler() {
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    let app = App::new()
        .add_route(
            Route::get("/slow", move || {
                let mut calls = counted.lock().unwrap();
                *calls += 1;
                let n = *calls;
                async move { format!("answer {n}") }
            })
            .interceptor(Cache::new(std::time::Duration::from_secs(3600))),
        )
        .build()
        .unwrap();
    let first = get(&app, "/slow?q=1");
    let second = get(&app, "/slow?q=1");
    let other = get(&app, "/slow?q=2");
    assert_eq!(
        (first.text(), first.header("x-cache")),
        ("answer 1".into(), Some("miss"))
    );
    assert_eq!(
        (second.text(), second.header("x-cache")),
        ("answer 1".into(), Some("hit"))
    );
    assert_eq!(other.text(), "answer 2");
    assert_eq!(*calls.lock().unwrap(), 2);
}

#[test]
fn pipes_transform_inputs_and_report_every_failing_field() {
    let app = App::new()
        .add_route(
            Route::get(
                "/items/{id}/{owner}",
                |Path((id, owner)): Path<(i64, String)>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    format!(
                        "{id} {owner} {}",
                        q.get("sort").cloned().unwrap_or_default()
                    )
                },
            )
            .pipe(Input::path("id"), ParseInt)
            .pipe(Input::path("owner"), ParseUuid)
            .pipe(Input::query("sort"), Trim)
            .pipe(Input::query("sort"), DefaultValue("name".into())),
        )
        .build()
        .unwrap();
    let ok = get(
        &app,
        "/items/7/6F9619FF-8B86-D011-B42D-00CF4FC964FF?sort=%20date%20",
    );
    assert_eq!(ok.text(), "7 6f9619ff-8b86-d011-b42d-00cf4fc964ff date");
    let defaulted = get(&app, "/items/7/6F9619FF-8B86-D011-B42D-00CF4FC964FF");
    assert!(defaulted.text().ends_with(" name"), "{}", defaulted.text());
    let problem = get(&app, "/items/x/nope").problem(400, "validation.failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "owner"]);
}

#[derive(Debug)]
struct OutOfStock(u32);

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {} is out of stock", self.0)
    }
}

impl std::error::Error for OutOfStock {}

async fn buy(Path(item): Path<u32>) -> Result<&'static str, OutOfStock> {
    if item == 0 {
        Ok("bought")
    } else {
        Err(OutOfStock(item))
    }
}

#[test]
fn filters_catch_by_type_most_specific_first_and_unknown_errors_are_hidden_500s() {
    let app = App::new()
        .filter(filter::on(|error: &OutOfStock, _: &ErrorContext| {
            (StatusCode::CONFLICT, format!("app: {error}"))
        }))
        .get("/buy/{item}", buy)
        .add_route(Route::get("/route/{item}", buy).filter(filter::on(
            |error: &OutOfStock, context: &ErrorContext| {
                (
                    StatusCode::GONE,
                    format!("route {}: {error}", context.route.as_deref().unwrap_or("")),
                )
            },
        )))
        .get("/boom", || async {
            Err::<(), _>(std::io::Error::other("secret path /etc/x"))
        })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/buy/0").text(), "bought");
    let app_level = get(&app, "/buy/3");
    assert_eq!(
        (app_level.status.as_u16(), app_level.text()),
        (409, "app: item 3 is out of stock".into())
    );
    let route_level = get(&app, "/route/3");
    assert_eq!(route_level.status.as_u16(), 410);
    assert_eq!(
        route_level.text(),
        "route /route/{item}: item 3 is out of stock"
    );
    let hidden = get(&app, "/boom");
    let problem = hidden.problem(500, "internal_server_error");
    assert!(!hidden.text().contains("secret"), "{}", hidden.text());
    assert!(problem.get("detail").is_none());
}

#[test]
fn a_catch_all_filter_takes_every_error() {
    let app = App::new()
        .filter(filter::catch_all(|error: &Error, _: &ErrorContext| {
            (
                error.status_code(),
                format!("caught {}", error.status_code().as_u16()),
            )
        }))
        .get("/", || async { Error::not_found("gone") })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/").text(), "caught 404");
    assert_eq!(get(&app, "/missing").text(), "caught 404");
}

#[test]
fn page_routes_render_errors_as_html() {
    let app = App::new()
        .group("/pages", |g| {
            g.error_format(ErrorFormat::Html)
                .get("/{id}", |Path(id): Path<u32>| async move {
                    format!("page {id}")
                })
        })
        .build()
        .unwrap();
    let answer = get(&app, "/pages/abc");
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        answer.text().contains("<h1>400 Bad Request</h1>"),
        "{}",
        answer.text()
    );
}
