//! The scheduler: a cron job in a time zone (`#[weft::cron]`), one by the builder, an interval
//! job, start-up and shutdown hooks, and a route showing every job's status through
//! `Inject<Scheduler>`.
//!
//! ```text
//! cargo run -p weft --example cron -- 127.0.0.1:8080
//! curl http://127.0.0.1:8080/jobs
//! ```
//!
//! Ctrl-C drains the server: the scheduler stops ticking and waits for a running job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weft::ServerConfig;
use weft::prelude::*;
use weft::schedule::{Interval, JobStatus, Scheduler};

/// Every five minutes on the Paris wall clock, whatever the server's zone.
#[weft::cron("0 */5 * * * *", tz = "Europe/Paris")]
async fn report() -> Result<(), std::io::Error> {
    println!("report: five more minutes in Paris");
    Ok(())
}

static BEATS: AtomicU64 = AtomicU64::new(0);

/// The scheduler's jobs, as JSON.
async fn jobs(scheduler: Inject<Scheduler>) -> Json<serde_json::Value> {
    let jobs: Vec<serde_json::Value> = scheduler.list().iter().map(describe).collect();
    Json(serde_json::json!({ "jobs": jobs, "beats": BEATS.load(Ordering::Relaxed) }))
}

fn describe(job: &JobStatus) -> serde_json::Value {
    let seconds = |time: Option<std::time::SystemTime>| {
        time.and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|since| since.as_secs())
    };
    serde_json::json!({
        "name": job.name,
        "schedule": job.schedule,
        "last_run": seconds(job.last_run),
        "next_run": seconds(job.next_run),
        "running": job.running,
        "runs": job.runs,
        "skipped": job.skipped,
        "missed": job.missed,
        "last_error": job.last_error.as_ref().map(ToString::to_string),
        "paused": job.paused,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = App::new()
        .schedule(report)
        .cron_in("lunch", "0 12 * * MON-FRI", "Europe/Paris", || async {
            println!("lunch time in Paris");
        })
        .scheduler(|scheduler| {
            let scheduler = scheduler
                .on_start(|| println!("scheduler started"))
                .on_shutdown(|| println!("scheduler stopped"));
            scheduler.run_every(
                "heartbeat",
                Interval::FixedRate(Duration::from_secs(2)),
                || async {
                    BEATS.fetch_add(1, Ordering::Relaxed);
                },
            )?;
            Ok(scheduler)
        })
        .on(|event: &weft::schedule::CronFinished| {
            if let Err(error) = &event.outcome {
                eprintln!("job {} failed: {error}", event.job);
            }
        })
        .get("/jobs", jobs);
    let mut config = ServerConfig::new([address.parse()?]);
    config.handle_signals = true;
    let server = app.listen(config)?;
    println!("listening on {:?}; see /jobs", server.local_addrs());
    server.join()?;
    Ok(())
}
