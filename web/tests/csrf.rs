//! CSRF through the real dispatcher (HTTP/1.1 and HTTP/2, one cookie jar): tokens issued on
//! GET, refusals, the header and the form field (the handler still reads the whole form),
//! fetch metadata and `Origin`, exemptions; and a refusal seen by real curl.

mod support;

use weft::cookies::{CookieKey, Key};
use weft::csrf::{CookieTokenStore, Csrf, CsrfToken};
use weft::prelude::*;
use weft::test::{TestClient, TestResponse};

#[derive(serde::Deserialize, serde::Serialize)]
struct Note {
    title: String,
    body: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn app() -> weft::AppService {
    let key = CookieKey(Key::generate());
    App::new()
        .state(key.clone())
        .middleware(
            Csrf::new(&key)
                .exempt_route("/hooks/{name}")
                .exempt_bearer(true),
        )
        .get("/form", |token: CsrfToken| async move {
            token.as_str().to_owned()
        })
        .get(
            "/page",
            |token: CsrfToken| async move { token.hidden_input() },
        )
        .post("/notes", |Form(note): Form<Note>| async move {
            format!(
                "{}: {} ({} token bytes)",
                note.title,
                note.body,
                note.csrf.len()
            )
        })
        .delete("/notes/{id}", || async { "deleted" })
        .post("/hooks/{name}", || async { "hook" })
        .build()
        .unwrap()
}

fn code(response: &TestResponse) -> String {
    assert_eq!(response.status(), 403, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = response.json();
    problem["code"].as_str().unwrap().to_owned()
}

/// A client of each protocol, each with a fresh jar holding a token it got from GET.
fn clients_with_token(app: &weft::AppService) -> Vec<(TestClient, String)> {
    [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ]
    .into_iter()
    .map(|client| {
        let response = client.get("/form").send();
        response.assert_status(200);
        let set_cookie = response.header("set-cookie").unwrap().to_owned();
        assert!(set_cookie.starts_with("csrf_token="), "{set_cookie}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        let token = response.text().to_owned();
        assert_eq!(client.cookie("csrf_token").as_deref(), Some(token.as_str()));
        (client, token)
    })
    .collect()
}

#[test]
fn get_issues_a_token_once_and_keeps_it() {
    let app = app();
    for (client, token) in clients_with_token(&app) {
        let again = client.get("/form").send();
        again.assert_no_header("set-cookie").assert_text(&token);
        assert!(
            client
                .get("/page")
                .send()
                .text()
                .contains(&format!("name=\"_csrf\" value=\"{token}\""))
        );
    }
}

#[test]
fn post_without_a_token_is_refused() {
    let app = app();
    for (client, _) in clients_with_token(&app) {
        let response = client
            .post("/notes")
            .form(&[("title", "t"), ("body", "b")])
            .send();
        assert_eq!(code(&response), "csrf.missing");
        assert_eq!(code(&client.delete("/notes/1").send()), "csrf.missing");
    }
    // A client that never got a cookie, even with a well-formed token from elsewhere.
    let (_, foreign) = clients_with_token(&app).remove(0);
    let fresh = TestClient::new(app.clone());
    let response = fresh
        .delete("/notes/1")
        .header("x-csrf-token", foreign)
        .send();
    assert_eq!(code(&response), "csrf.missing");
}

#[test]
fn the_header_token_is_accepted_and_a_wrong_one_refused() {
    let app = app();
    let tokens = clients_with_token(&app);
    for (client, token) in &tokens {
        client
            .delete("/notes/1")
            .header("x-csrf-token", token.as_str())
            .send()
            .assert_status(200)
            .assert_text("deleted");
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let response = client
            .delete("/notes/1")
            .header("x-csrf-token", String::from_utf8(tampered).unwrap())
            .send();
        assert_eq!(code(&response), "csrf.invalid");
    }
    // One client's token is not another's.
    let response = tokens[0]
        .0
        .delete("/notes/1")
        .header("x-csrf-token", tokens[1].1.as_str())
        .send();
    assert_eq!(code(&response), "csrf.invalid");
}

#[test]
fn the_form_field_is_accepted_and_the_handler_still_reads_the_whole_form() {
    let app = app();
    for (client, token) in clients_with_token(&app) {
        let note = Note {
            title: "groceries".into(),
            body: "milk & eggs".into(),
            csrf: token.clone(),
        };
        client
            .post("/notes")
            .form(&note)
            .send()
            .assert_status(200)
            .assert_text(&format!(
                "groceries: milk & eggs ({} token bytes)",
                token.len()
            ));
        let wrong = Note {
            csrf: "nope".into(),
            ..note
        };
        assert_eq!(
            code(&client.post("/notes").form(&wrong).send()),
            "csrf.invalid"
        );
    }
}

#[test]
fn cross_site_requests_are_refused_even_with_the_token() {
    let app = app();
    for (client, token) in clients_with_token(&app) {
        let cross = client
            .delete("/notes/1")
            .header("x-csrf-token", token.as_str())
            .header("sec-fetch-site", "cross-site")
            .send();
        assert_eq!(code(&cross), "csrf.cross_site");
        for site in ["same-origin", "same-site", "none"] {
            client
                .delete("/notes/1")
                .header("x-csrf-token", token.as_str())
                .header("sec-fetch-site", site)
                .send()
                .assert_status(200);
        }
        // Fetch metadata passing is not enough: the token is still needed.
        let no_token = client
            .delete("/notes/1")
            .header("sec-fetch-site", "same-origin")
            .send();
        assert_eq!(code(&no_token), "csrf.missing");
        // Without Sec-Fetch-Site, the Origin is compared with the Host (localhost).
        for origin in ["https://evil.example", "null", "http://localhost.evil"] {
            let response = client
                .delete("/notes/1")
                .header("x-csrf-token", token.as_str())
                .header("origin", origin)
                .send();
            assert_eq!(code(&response), "csrf.cross_site", "{origin}");
        }
        client
            .delete("/notes/1")
            .header("x-csrf-token", token.as_str())
            .header("origin", "http://localhost")
            .send()
            .assert_status(200);
    }
}

#[test]
fn exempt_routes_and_bearer_requests_skip_the_checks() {
    let app = app();
    for client in [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ] {
        client
            .post("/hooks/github")
            .header("sec-fetch-site", "cross-site")
            .send()
            .assert_status(200)
            .assert_text("hook");
        client
            .delete("/notes/1")
            .header("authorization", "Bearer abc")
            .send()
            .assert_status(200);
        // Basic authentication is sent by browsers on their own: not exempt.
        let basic = client
            .delete("/notes/1")
            .header("authorization", "Basic YTpi")
            .send();
        assert_eq!(code(&basic), "csrf.missing");
    }
}

#[test]
fn bearer_requests_are_checked_unless_configured() {
    let key = CookieKey(Key::generate());
    let app = App::new()
        .middleware(Csrf::new(&key))
        .delete("/x", || async { "x" })
        .build()
        .unwrap();
    let response = TestClient::new(app)
        .delete("/x")
        .header("authorization", "Bearer abc")
        .send();
    assert_eq!(code(&response), "csrf.missing");
}

#[test]
fn csrf_on_a_group_leaves_other_routes_alone() {
    let key = CookieKey(Key::generate());
    let app = App::new()
        .group("/app", |group| {
            group
                .middleware(Csrf::new(&key))
                .post("/save", || async { "saved" })
        })
        .post("/api/save", || async { "api" })
        .get(
            "/token",
            |token: CsrfToken| async move { token.to_string() },
        )
        .build()
        .unwrap();
    let client = TestClient::new(app);
    assert_eq!(code(&client.post("/app/save").send()), "csrf.missing");
    client.post("/api/save").send().assert_status(200);
    // CsrfToken outside the middleware: a bug of the app, answered 500.
    let response = client.get("/token").send();
    response.assert_status(500);
    let problem: serde_json::Value = response.json();
    assert_eq!(problem["code"], "csrf.not_configured");
}

#[test]
fn a_form_over_the_limit_is_413_and_custom_names_work() {
    let key = CookieKey(Key::generate());
    let store = CookieTokenStore::new(&key)
        .cookie_name("xsrf")
        .secure(false);
    let app = App::new()
        .body_limits(weft::extract::BodyLimits {
            form: 200,
            ..Default::default()
        })
        .middleware(Csrf::with_store(store).header("x-xsrf").field("token"))
        .get("/", |token: CsrfToken| async move {
            format!("{} {} {}", token.header_name(), token.field_name(), token)
        })
        .post("/", |body: String| async move { body })
        .build()
        .unwrap();
    let client = TestClient::new(app);
    let response = client.get("/");
    let response = response.send();
    assert!(!response.header("set-cookie").unwrap().contains("Secure"));
    let text = response.text().to_owned();
    let token = text.split(' ').nth(2).unwrap().to_owned();
    assert!(text.starts_with("x-xsrf token "), "{text}");
    client
        .post("/")
        .header("x-xsrf", token.as_str())
        .body("raw")
        .send()
        .assert_status(200)
        .assert_text("raw");
    client
        .post("/")
        .form(&[("token", token.as_str())])
        .send()
        .assert_status(200);
    let big = "x".repeat(300);
    let response = client
        .post("/")
        .form(&[("token", token.as_str()), ("big", big.as_str())])
        .send();
    response.assert_status(413);
}

use support::curl;

#[test]
fn curl_sees_a_csrf_refusal_and_a_token_round_trip_on_a_loopback_server() {
    let key = CookieKey(Key::generate());
    let store = CookieTokenStore::new(&key).secure(false);
    let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = App::new()
        .middleware(Csrf::with_store(store))
        .get("/form", |token: CsrfToken| async move { token.to_string() })
        .post("/notes", || async { "saved" })
        .build()
        .unwrap()
        .listen(config)
        .unwrap();
    let base = format!("http://{}", server.local_addrs()[0]);
    let jar = std::env::temp_dir().join(format!("weft-csrf-curl-{}", std::process::id()));
    let jar = jar.to_str().unwrap();
    for protocol in ["--http1.1", "--http2-prior-knowledge"] {
        let refused = curl(&[
            protocol,
            "-i",
            "-X",
            "POST",
            "-d",
            "title=x",
            &format!("{base}/notes"),
        ]);
        assert!(refused.contains(" 403"), "{refused}");
        assert!(refused.contains("\"csrf.missing\""), "{refused}");
        let token = curl(&[protocol, "-c", jar, &format!("{base}/form")]);
        let saved = curl(&[
            protocol,
            "-b",
            jar,
            "-H",
            &format!("x-csrf-token: {token}"),
            "-X",
            "POST",
            &format!("{base}/notes"),
        ]);
        assert_eq!(saved, "saved");
    }
    let _ = std::fs::remove_file(jar);
    server.shutdown();
    server.join().unwrap();
}
