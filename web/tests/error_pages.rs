//! `weft::error_pages`: HTML or problem+json by `Accept`, templates per status and by
//! default, and `CatchPanic`: a panic is a `500`, shown in full (message, backtrace, request
//! with secrets redacted) in development mode only; through the test client on HTTP/1.1 and
//! HTTP/2.

use weft::error_pages::{CatchPanic, ErrorPages, HandlerPanic};
use weft::prelude::*;
use weft::problem::escape_html;
use weft::test::TestClient;

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn routes() -> App {
    App::new()
        .get("/ok", || async { "ok" })
        .get("/panic", || async {
            if true {
                panic!("the <secret> invariant broke");
            }
            "never"
        })
        .get("/fails", || async {
            Err::<String, _>(std::io::Error::other("database password=hunter2 rejected"))
        })
        .get("/teapot", || async {
            Err::<String, _>(Error::status(StatusCode::IM_A_TEAPOT, "short and stout"))
        })
}

fn clients(app: &weft::AppService) -> [TestClient; 2] {
    [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ]
}

#[test]
fn browsers_get_html_and_apis_get_problem_json() {
    let app = ErrorPages::new().mount(routes()).build().unwrap();
    for client in clients(&app) {
        let page = client.get("/missing").header("accept", BROWSER).send();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            page.header_all("vary")
                .iter()
                .any(|v| v.eq_ignore_ascii_case("accept"))
        );
        assert!(
            page.text().contains("<h1>404 Not Found</h1>"),
            "{}",
            page.text()
        );

        for accept in [None, Some("*/*"), Some("application/json")] {
            let mut request = client.get("/missing");
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let api = request.send();
            assert_eq!(api.status(), StatusCode::NOT_FOUND);
            assert_eq!(
                api.header("content-type"),
                Some("application/problem+json"),
                "{accept:?}"
            );
            let problem: serde_json::Value = api.json();
            assert_eq!(problem["code"], "route.not_found");
            assert_eq!(problem["instance"], "/missing");
        }

        // 405 keeps its Allow header in HTML too.
        let page = client.post("/ok").header("accept", "text/html").send();
        assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(page.header("allow").unwrap().contains("GET"));

        // Successful answers are untouched.
        let ok = client.get("/ok").header("accept", BROWSER).send();
        assert_eq!(ok.text(), "ok");
        assert!(ok.header("vary").is_none());
    }
}

#[test]
fn templates_per_status_and_by_default() {
    let app = ErrorPages::new()
        .page(StatusCode::NOT_FOUND, |problem| {
            format!(
                "<h1>Lost?</h1><p>{}</p>",
                escape_html(problem.instance.as_deref().unwrap_or(""))
            )
        })
        .default_page(|problem| format!("<h1>Oops: {}</h1>", problem.status.as_u16()))
        .mount(routes())
        .build()
        .unwrap();
    for client in clients(&app) {
        let page = client.get("/nowhere").header("accept", "text/html").send();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert_eq!(page.text(), "<h1>Lost?</h1><p>/nowhere</p>");

        let page = client.get("/teapot").header("accept", "text/html").send();
        assert_eq!(page.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(page.text(), "<h1>Oops: 418</h1>");

        let page = client.get("/fails").header("accept", "text/html").send();
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(page.text(), "<h1>Oops: 500</h1>");
    }
}

#[test]
fn production_hides_a_panic_and_an_internal_error() {
    let app = ErrorPages::new().mount(routes()).build().unwrap();
    for client in clients(&app) {
        let api = client.get("/panic").send();
        assert_eq!(api.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let problem: serde_json::Value = api.json();
        assert_eq!(problem["code"], "handler.panic");
        assert!(!api.text().contains("invariant"), "{}", api.text());
        assert!(problem.get("debug").is_none());

        let page = client.get("/panic").header("accept", BROWSER).send();
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(page.text().contains("500 Internal Server Error"));
        assert!(!page.text().contains("invariant"), "{}", page.text());
        assert!(!page.text().contains("Backtrace"));

        let page = client.get("/fails").header("accept", BROWSER).send();
        assert!(!page.text().contains("hunter2"), "{}", page.text());
        // The connection survived the panic: it serves the next request.
        assert_eq!(client.get("/ok").send().text(), "ok");
    }
}

#[test]
fn development_shows_the_panic_backtrace_and_request_with_secrets_redacted() {
    let app = ErrorPages::new()
        .development(true)
        .mount(routes())
        .build()
        .unwrap();
    for client in clients(&app) {
        let page = client
            .get("/panic?page=2")
            .header("accept", BROWSER)
            .header("authorization", "Bearer top-secret-token")
            .header("cookie", "session=also-secret")
            .header("x-trace", "visible-value")
            .send();
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = page.text();
        assert!(text.contains("Development mode"), "{text}");
        // The message, escaped.
        assert!(
            text.contains("the &lt;secret&gt; invariant broke"),
            "{text}"
        );
        assert!(text.contains("error_pages.rs"), "the location: {text}");
        assert!(text.contains("Backtrace"), "{text}");
        assert!(text.contains("GET /panic?page=2"), "{text}");
        assert!(text.contains("visible-value"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains("top-secret-token"), "{text}");
        assert!(!text.contains("also-secret"), "{text}");

        // APIs get the same facts as a debug member.
        let api = client
            .get("/panic")
            .header("authorization", "Bearer top-secret-token")
            .send();
        assert_eq!(api.header("content-type"), Some("application/problem+json"));
        let problem: serde_json::Value = api.json();
        assert_eq!(problem["code"], "handler.panic");
        assert_eq!(problem["debug"]["panic"], "the <secret> invariant broke");
        assert!(problem["debug"]["backtrace"].is_string());
        assert!(!api.text().contains("top-secret-token"));

        // An internal error's own message is shown in development.
        let page = client.get("/fails").header("accept", BROWSER).send();
        assert!(page.text().contains("password=hunter2"), "{}", page.text());
    }
}

#[test]
fn catch_panic_alone_answers_problem_json_and_filters_catch_it_by_type() {
    let app = routes()
        .middleware(CatchPanic::new())
        .filter(weft::filter::on(
            |panic: &HandlerPanic, _: &weft::filter::ErrorContext| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("caught: {}", panic.message),
                )
            },
        ))
        .build()
        .unwrap();
    for client in clients(&app) {
        let answer = client.get("/panic").send();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.text(), "caught: the <secret> invariant broke");
    }
    let app = routes().middleware(CatchPanic::new()).build().unwrap();
    for client in clients(&app) {
        let answer = client.get("/panic").send();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.json::<serde_json::Value>()["code"], "handler.panic");
    }
}
