//! Pages and forms: a login form setting a signed cookie, a file upload streamed to disk
//! (multipart), and one resource in HTML or JSON by the `Accept` header.
//!
//! ```text
//! cargo run -p weft --example forms -- 127.0.0.1:8080
//! curl -i -c jar -d 'name=ada' http://127.0.0.1:8080/login
//! curl -b jar http://127.0.0.1:8080/me
//! curl -F 'note=hi' -F 'file=@Cargo.toml' http://127.0.0.1:8080/upload
//! curl -H 'accept: application/json' http://127.0.0.1:8080/status
//! ```

use serde::Deserialize;
use weft::ErrorFormat;
use weft::cookies::{self, CookieKey, Key, SignedCookies};
use weft::multipart::Multipart;
use weft::negotiate::{Accept, Negotiate};
use weft::prelude::*;

#[derive(Deserialize)]
struct Login {
    name: String,
}

async fn login(mut jar: SignedCookies, Form(login): Form<Login>) -> (SignedCookies, Redirect) {
    jar.add(cookies::build("user", login.name));
    (jar, Redirect::to("/me"))
}

async fn me(jar: SignedCookies) -> Result<Html<String>, Error> {
    let user = jar
        .get("user")
        .ok_or_else(|| Error::unauthorized("log in first"))?;
    Ok(Html(format!(
        "<p>hello, {}</p>",
        weft::problem::escape_html(user.value())
    )))
}

/// Each part in turn: text fields read, files streamed to a temporary directory.
async fn upload(mut form: Multipart) -> Result<Json<Vec<String>>, Error> {
    let mut received = Vec::new();
    while let Some(field) = form.next_field().await? {
        let name = field.name().to_owned();
        if field.file_name().is_some() {
            let saved = field.save_to_temp(std::env::temp_dir()).await?;
            received.push(format!("{name}: {} bytes", saved.size));
            let _ = std::fs::remove_file(&saved.path);
        } else {
            received.push(format!("{name}: {}", field.text().await?));
        }
    }
    Ok(Json(received))
}

async fn status(accept: Accept) -> Result<Response, Error> {
    accept.respond(
        Negotiate::new()
            .html("<p>all systems go</p>")
            .json(serde_json::json!({ "status": "ok" }))
            .text("ok"),
    )
}

fn app() -> App {
    App::new()
        .state(CookieKey(Key::generate()))
        .group("", |pages| {
            pages
                .error_format(ErrorFormat::Html)
                .post("/login", login)
                .get("/me", me)
        })
        .post("/upload", upload)
        .get("/status", status)
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
    fn login_upload_and_negotiation() {
        let client = TestClient::new(super::app().build().unwrap());
        client.get("/me").send().assert_status(401);
        client
            .post("/login")
            .form(&[("name", "ada")])
            .send()
            .assert_status(303);
        client.get("/me").send().assert_text("<p>hello, ada</p>");
        client
            .post("/upload")
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(
                "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
                 --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n12345\r\n\
                 --XyZ--\r\n",
            )
            .send()
            .assert_json(&serde_json::json!(["note: hi", "file: 5 bytes"]));
        client
            .get("/status")
            .header("accept", "application/json")
            .send()
            .assert_json(&serde_json::json!({ "status": "ok" }));
        client
            .get("/status")
            .header("accept", "image/png")
            .send()
            .assert_status(406);
    }
}
