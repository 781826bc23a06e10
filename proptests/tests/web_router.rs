//! Properties of the framework's router, path and query extractors, pipes and problem
//! documents: every registered path routes to its own handler, captured parameters survive
//! percent-encoding, typed parameters accept exactly what their type parses, and rejections
//! are always well-formed problem+json.

use std::collections::BTreeSet;

use futures_lite::future::block_on;
use http::{Method, Request, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use weft::pipe::{ParseInt, Pipe, Trim};
use weft::prelude::*;
use weft::{AppService, Body};
use weft_service::service::Service;

fn get(app: &AppService, uri: &str) -> (StatusCode, String, Option<String>) {
    block_on(async {
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = app.call(request).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect(1 << 20).await.unwrap();
        (
            status,
            String::from_utf8_lossy(&body).into_owned(),
            content_type,
        )
    })
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,8}"
}

fn static_path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5).prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every registered static path answers with its own handler; paths never registered
    /// answer 404 problem+json, or 308 when they differ from a route only by a trailing slash.
    #[test]
    fn every_static_route_reaches_its_handler(
        paths in prop::collection::btree_set(static_path(), 1..40),
        probes in prop::collection::vec(static_path(), 0..10),
    ) {
        let mut app = App::new();
        for path in &paths {
            let answer = path.clone();
            app = app.get(path, move || {
                let answer = answer.clone();
                async move { answer }
            });
        }
        let app = app.build().unwrap();
        for path in &paths {
            let (status, body, _) = get(&app, path);
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(&body, path);
        }
        for probe in probes.iter().filter(|p| !paths.contains(*p)) {
            let (status, _, content_type) = get(&app, probe);
            let slash_twin = format!("{probe}/");
            if paths.contains(&slash_twin) {
                prop_assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
            } else {
                prop_assert_eq!(status, StatusCode::NOT_FOUND);
                prop_assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            }
        }
    }

    /// A captured parameter is the percent-decoded segment, whatever text it holds.
    #[test]
    fn params_survive_percent_encoding(value in "\\PC{1,20}", rest in prop::collection::vec("\\PC{1,6}", 1..4)) {
        let app = App::new()
            .get("/p/{value}", |Path(value): Path<String>| async move { value })
            .get("/w/{*rest}", |Path(rest): Path<String>| async move { rest })
            .build()
            .unwrap();
        let encoded = utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string();
        let (status, body, _) = get(&app, &format!("/p/{encoded}"));
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(body, value);
        let encoded: Vec<String> = rest
            .iter()
            .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
            .collect();
        let (status, body, _) = get(&app, &format!("/w/{}", encoded.join("/")));
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(body, rest.join("/"));
    }

    /// `Path<u64>` accepts exactly the segments `u64` parses; the others are 400 naming the
    /// parameter.
    #[test]
    fn typed_params_accept_exactly_what_their_type_parses(text in "[0-9a-z+-]{1,22}") {
        let app = App::new()
            .get("/n/{id}", |Path(id): Path<u64>| async move { id.to_string() })
            .build()
            .unwrap();
        let (status, body, _) = get(&app, &format!("/n/{text}"));
        match text.parse::<u64>() {
            Ok(number) => {
                prop_assert_eq!(status, StatusCode::OK);
                prop_assert_eq!(body, number.to_string());
            }
            Err(_) => {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(&problem["errors"][0]["field"], "id");
            }
        }
    }

    /// A query string made by serde comes back as the same value.
    #[test]
    fn query_round_trips(name in "\\PC{0,20}", page in any::<u32>(), tags in prop::collection::btree_set("[a-z]{1,5}", 0..4)) {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Search { name: String, page: u32, tags: String }
        let tags: Vec<String> = tags.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let search = Search { name, page, tags: tags.join(",") };
        let encoded = serde_urlencoded::to_string(&search).unwrap();
        let Query(back): Query<Search> = Query::from_query(&encoded).unwrap();
        prop_assert_eq!(back, search);
    }

    /// ParseInt accepts exactly what `i64` parses, and Trim is idempotent.
    #[test]
    fn pipes_agree_with_the_standard_library(text in "\\PC{0,24}") {
        let parsed = ParseInt.transform(Some(text.clone()));
        match text.parse::<i64>() {
            Ok(number) => prop_assert_eq!(parsed, Ok(Some(number.to_string()))),
            Err(_) => prop_assert!(parsed.is_err()),
        }
        let once = Trim.transform(Some(text)).unwrap();
        let twice = Trim.transform(once.clone()).unwrap();
        prop_assert_eq!(once, twice);
    }

    /// Problem documents are JSON with their status whatever the text, and their HTML form
    /// never carries markup from the text.
    #[test]
    fn problems_are_always_well_formed(status in 400u16..600, detail in "\\PC{0,40}", field in "\\PC{0,10}") {
        let status = StatusCode::from_u16(status).unwrap();
        let problem = Problem::new(status).with_detail(detail.clone()).with_field(field, detail);
        let value: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        prop_assert_eq!(value["status"].as_u64(), Some(u64::from(status.as_u16())));
        let html = problem.to_html();
        let body = html.split("<body>").nth(1).unwrap();
        let text_only = body
            .replace("<h1>", "").replace("</h1>", "").replace("<p>", "").replace("</p>", "")
            .replace("<ul>", "").replace("</ul>", "").replace("<li>", "").replace("</li>", "")
            .replace("<strong>", "").replace("</strong>", "").replace("</body></html>", "");
        prop_assert!(!text_only.contains('<'), "{}", html);
    }
}
