//! The router: params, wildcards, 404, 405 with Allow, automatic HEAD and OPTIONS, the
//! trailing-slash policy, conflicts refused at build, introspection.

mod support;

use http::Method;
use support::{call, get, request};
use weft::Body;
use weft::prelude::*;
use weft::router::TrailingSlash;

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn file(Path(path): Path<String>) -> String {
    format!("file {path}")
}

fn app() -> App {
    App::new()
        .get("/", || async { "home" })
        .get("/users/{id}", user)
        .post("/users/{id}", || async { "posted" })
        .get("/users/me", || async { "me" })
        .get("/files/{*path}", file)
        .get("/docs/", || async { "docs" })
}

#[test]
fn static_param_and_wildcard_routes_match() {
    let app = app().build().unwrap();
    assert_eq!(get(&app, "/").text(), "home");
    assert_eq!(get(&app, "/users/42").text(), "user 42");
    assert_eq!(get(&app, "/users/me").text(), "me");
    assert_eq!(get(&app, "/files/a/b%20c.txt").text(), "file a/b c.txt");
}

#[test]
fn a_param_that_does_not_parse_is_a_400_naming_it() {
    let app = app().build().unwrap();
    let problem = get(&app, "/users/abc").problem(400, "path.invalid");
    assert_eq!(problem["errors"][0]["field"], "id");
}

#[test]
fn unknown_paths_are_404_problems() {
    let app = app().build().unwrap();
    let problem = get(&app, "/nowhere").problem(404, "route.not_found");
    assert_eq!(problem["instance"], "/nowhere");
}

#[test]
fn other_methods_get_405_with_allow() {
    let app = app().build().unwrap();
    let answer = call(
        &app,
        request(Method::DELETE, "/users/1")
            .body(Body::empty())
            .unwrap(),
    );
    answer.problem(405, "route.method_not_allowed");
    assert_eq!(answer.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
}

#[test]
fn head_is_answered_by_the_get_route_and_options_automatically() {
    let app = app().build().unwrap();
    let head = call(
        &app,
        request(Method::HEAD, "/users/7")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(head.status, 200);
    let options = call(
        &app,
        request(Method::OPTIONS, "/users/7")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
}

#[test]
fn trailing_slash_redirects_to_the_routes_form_keeping_the_query() {
    let app = app().build().unwrap();
    let answer = get(&app, "/users/7/?x=1");
    assert_eq!(answer.status, 308);
    assert_eq!(answer.header("location"), Some("/users/7?x=1"));
    let answer = get(&app, "/docs");
    assert_eq!(answer.status, 308);
    assert_eq!(answer.header("location"), Some("/docs/"));
}

#[test]
fn strict_trailing_slash_is_a_404() {
    let app = app().trailing_slash(TrailingSlash::Strict).build().unwrap();
    get(&app, "/users/7/").problem(404, "route.not_found");
}

#[test]
fn the_same_method_and_path_twice_fails_the_build_naming_both_handlers() {
    async fn first() -> &'static str {
        "1"
    }
    async fn second() -> &'static str {
        "2"
    }
    let error = App::new()
        .get("/x", first)
        .get("/x", second)
        .build()
        .expect_err("a conflict");
    let message = error.to_string();
    assert!(
        message.contains("first") && message.contains("second"),
        "{message}"
    );
}

#[test]
fn overlapping_wildcards_fail_the_build_naming_both_patterns() {
    let error = App::new()
        .get("/a/{*rest}", || async { "1" })
        .get("/a/{*other}", || async { "2" })
        .build()
        .expect_err("a conflict");
    let message = error.to_string();
    assert!(
        message.contains("/a/{*other}") && message.contains("/a/{*rest}"),
        "{message}"
    );
}

#[test]
fn malformed_patterns_fail_the_build() {
    let error = App::new()
        .get("/a/{id", || async { "1" })
        .build()
        .expect_err("invalid");
    assert!(error.to_string().contains("/a/{id"), "{error}");
}

#[test]
fn routes_are_listed_and_shadowing_is_reported() {
    let app = app().build().unwrap();
    let routes: Vec<String> = app
        .routes()
        .iter()
        .map(|r| format!("{} {}", r.method.as_ref().unwrap(), r.path))
        .collect();
    assert_eq!(
        routes,
        [
            "GET /",
            "GET /docs/",
            "GET /files/{*path}",
            "GET /users/me",
            "GET /users/{id}",
            "POST /users/{id}",
        ]
    );
    let shadowed = app.shadowed();
    let me = shadowed
        .iter()
        .find(|s| s.by == "/users/me")
        .expect("/users/me shadows /users/{id}");
    assert_eq!(me.route, "/users/{id}");
    assert_eq!(me.lost_methods, [Method::POST]);
}

#[test]
fn groups_prefix_their_routes_and_nest() {
    let app = App::new()
        .group("/api", |api| {
            api.get("/ping", || async { "pong" })
                .group("/v2", |v2| v2.get("/", || async { "v2 root" }))
        })
        .build()
        .unwrap();
    assert_eq!(get(&app, "/api/ping").text(), "pong");
    assert_eq!(get(&app, "/api/v2").text(), "v2 root");
}

#[test]
fn any_routes_answer_every_method() {
    let app = App::new()
        .any("/hook", |method: Method| async move { method.to_string() })
        .build()
        .unwrap();
    let answer = call(
        &app,
        request(Method::PUT, "/hook").body(Body::empty()).unwrap(),
    );
    assert_eq!(answer.text(), "PUT");
}

#[test]
fn a_fallback_answers_unknown_paths() {
    let app = App::new()
        .fallback(
            |uri: http::Uri| async move { (StatusCode::NOT_FOUND, format!("no {}", uri.path())) },
        )
        .build()
        .unwrap();
    let answer = get(&app, "/x");
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (404, "no /x")
    );
}

#[test]
fn redirect_helpers() {
    let app = App::new()
        .get("/old", || async { Response::permanent_redirect("/new") })
        .get("/form", || async { Redirect::to("/done") })
        .build()
        .unwrap();
    let answer = get(&app, "/old");
    assert_eq!(
        (answer.status.as_u16(), answer.header("location")),
        (308, Some("/new"))
    );
    let answer = get(&app, "/form");
    assert_eq!(
        (answer.status.as_u16(), answer.header("location")),
        (303, Some("/done"))
    );
}
