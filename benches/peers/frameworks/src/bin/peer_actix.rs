//! The framework benchmark on actix-web 4 (one worker): `web::Path` and `web::Json`
//! extractors, `wrap_fn` reading the request field and `DefaultHeaders` adding the response one.

use actix_web::dev::Service;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use weft_peer_frameworks::{CLIENT_HEADER, Created, NewUser, SEEN_HEADER, listen_address};

async fn create(id: web::Path<u64>, user: web::Json<NewUser>) -> web::Json<Created> {
    web::Json(Created::new(id.into_inner(), user.into_inner()))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let server = HttpServer::new(|| {
        App::new()
            .wrap(DefaultHeaders::new().add((SEEN_HEADER, "1")))
            .wrap_fn(|request, service| {
                let _client = request.headers().get(CLIENT_HEADER);
                service.call(request)
            })
            .route("/users/{id}", web::post().to(create))
    })
    .workers(1)
    .bind(listen_address())?;
    println!("actix listening on http://{}", server.addrs()[0]);
    server.run().await
}
