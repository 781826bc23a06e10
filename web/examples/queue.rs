//! A job queue with retries and a dead-letter queue: a POST route enqueues e-mails, a worker
//! sends them (the fake mail server fails every first and second attempt, and always for
//! addresses containing "bounce"), a route lists the dead-letter queue and one re-queues.
//!
//! ```text
//! cargo run -p weft --example queue -- 127.0.0.1:8080
//! curl -i -H 'content-type: application/json' -d '{"to":"ada@example.com"}' http://127.0.0.1:8080/mail
//! curl -i -H 'content-type: application/json' -d '{"to":"bounce@example.com"}' http://127.0.0.1:8080/mail
//! curl -i http://127.0.0.1:8080/mail/dead            # after ~1 s: the bounced job, 3 attempts
//! curl -i -X POST http://127.0.0.1:8080/mail/dead/<id>/requeue
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::backend::memory::MemoryBackend;
use weft::prelude::*;
use weft::queue::{
    Backoff, Job, JobCompleted, JobFailed, JobOptions, JobRecord, Queue, QueueError, Queues, Worker,
};
use weft::services::Inject;

#[derive(Serialize, Deserialize)]
struct Email {
    to: String,
}

/// What the dead-letter route shows of a job.
#[derive(Serialize)]
struct DeadJob {
    id: String,
    name: String,
    to: Option<String>,
    attempts: u32,
    error: Option<String>,
}

impl From<JobRecord> for DeadJob {
    fn from(job: JobRecord) -> Self {
        let to = serde_json::from_slice::<Email>(&job.data)
            .ok()
            .map(|email| email.to);
        DeadJob {
            id: job.id,
            name: job.name,
            to,
            attempts: job.attempts,
            error: job.last_error,
        }
    }
}

fn mail(queues: &Queues) -> Queue {
    queues.get("mail").expect("the mail queue is registered")
}

/// Enqueues an e-mail: three attempts, half a second apart.
async fn enqueue(
    queues: Inject<Queues>,
    Json(email): Json<Email>,
) -> Result<(StatusCode, String), QueueError> {
    let options = JobOptions::new()
        .attempts(3)
        .backoff(Backoff::Fixed { delay_ms: 500 });
    let id = mail(&queues).add_with("send", &email, options).await?;
    Ok((StatusCode::ACCEPTED, id.to_string()))
}

async fn dead_letters(queues: Inject<Queues>) -> Result<Json<Vec<DeadJob>>, QueueError> {
    let dead = mail(&queues).dead_letters(100).await?;
    Ok(Json(dead.into_iter().map(DeadJob::from).collect()))
}

async fn requeue(queues: Inject<Queues>, Path(id): Path<String>) -> Result<StatusCode, QueueError> {
    Ok(match mail(&queues).requeue(&id).await? {
        true => StatusCode::ACCEPTED,
        false => StatusCode::NOT_FOUND,
    })
}

/// The fake mail server: down for every first and second attempt, and for bouncing addresses.
async fn send(job: Job<Email>) -> Result<(), String> {
    let to = &job.data().to;
    if to.contains("bounce") {
        return Err(format!("{to}: mailbox unavailable"));
    }
    if job.attempt() < 3 {
        return Err(format!("mail server busy (attempt {})", job.attempt()));
    }
    job.progress(100, "sent").await.map_err(|e| e.to_string())?;
    println!("sent mail to {to} (attempt {})", job.attempt());
    Ok(())
}

fn app() -> App {
    let queue = Queue::new("mail", Arc::new(MemoryBackend::new()));
    let worker = Worker::new(queue.clone())
        .concurrency(4)
        .lease(Duration::from_secs(10))
        .handle("send", send);
    App::new()
        .queue(queue)
        .worker(worker)
        .on(|failed: &JobFailed| {
            println!(
                "job {} attempt {} failed: {} ({})",
                failed.id,
                failed.attempt,
                failed.error,
                if failed.dead { "dead" } else { "will retry" }
            );
        })
        .on(|done: &JobCompleted| println!("job {} completed", done.id))
        .post("/mail", enqueue)
        .get("/mail/dead", dead_letters)
        .post("/mail/dead/{id}/requeue", requeue)
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
    use std::io::{Read, Write};
    use std::time::Instant;

    fn exchange(address: std::net::SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn body(answer: &str) -> &str {
        answer.split("\r\n\r\n").nth(1).unwrap_or("")
    }

    #[test]
    fn a_bouncing_mail_ends_in_the_dead_letter_queue_and_can_be_requeued() {
        let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
        config.workers = 1;
        let server = super::app().listen(config).unwrap();
        let address = server.local_addrs()[0];
        let json = r#"{"to":"bounce@example.com"}"#;
        let added = exchange(
            address,
            &format!(
                "POST /mail HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            ),
        );
        assert!(added.starts_with("HTTP/1.1 202"), "{added}");
        let id = body(&added).to_owned();

        let list = "GET /mail/dead HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let dead = loop {
            let answer = exchange(address, list);
            let dead: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
            if dead.as_array().is_some_and(|jobs| !jobs.is_empty()) {
                break dead;
            }
            assert!(Instant::now() < deadline, "the job never went dead");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(dead[0]["id"], id.as_str());
        assert_eq!(dead[0]["attempts"], 3);
        assert_eq!(dead[0]["error"], "bounce@example.com: mailbox unavailable");

        let requeued = exchange(
            address,
            &format!(
                "POST /mail/dead/{id}/requeue HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        assert!(requeued.starts_with("HTTP/1.1 202"), "{requeued}");
    }
}
