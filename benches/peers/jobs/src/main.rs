//! `jobs-bench`: jobs per second through weft's job queue and through apalis 1.0, on the same
//! SQLite file, the same Redis server, and in memory. benches/jobs.sh builds and runs it.
//!
//! ```text
//! jobs-bench --sqlite-file PATH --redis-url URL [--runs 3] [--jobs-memory 20000]
//!            [--jobs-redis 5000] [--jobs-sqlite 5000] [--stores memory,sqlite,redis]
//!            [--consumers 1,8] [--modes phased,mixed]
//! ```
//!
//! For each store, consumer count and mode, each library runs the scenario `--runs` times,
//! alternating (weft, apalis, weft, ...) so that a slow spell of the machine hits both; the
//! table gives the medians. See benches/README.md for what is measured and how.

mod apalis_side;
mod common;
mod weft_side;

use std::time::Duration;

use common::{Mode, RunError, Sample, Scenario, Store};

/// The command line.
struct Args {
    sqlite_path: std::path::PathBuf,
    redis_url: String,
    runs: usize,
    jobs_memory: u64,
    jobs_redis: u64,
    jobs_sqlite: u64,
    stores: Vec<Store>,
    consumers: Vec<usize>,
    modes: Vec<Mode>,
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("jobs-bench: {message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run_all(&args) {
        eprintln!("jobs-bench: {error}");
        std::process::exit(1);
    }
}

/// Reads the options; an unknown one is an error.
fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sqlite_path: std::env::temp_dir().join("weft-jobs-bench.db"),
        redis_url: "redis://127.0.0.1:6379/0".to_owned(),
        runs: 3,
        jobs_memory: 20_000,
        // apalis-redis 1.0 fails above about 8000 jobs queued before its first fetch: its
        // fetch script promotes every due job with one Lua `unpack` (a stack of 8000).
        jobs_redis: 5_000,
        jobs_sqlite: 5_000,
        stores: vec![Store::Memory, Store::Sqlite, Store::Redis],
        consumers: vec![1, 8],
        modes: vec![Mode::Phased, Mode::Mixed],
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--sqlite-file" => args.sqlite_path = value.clone().into(),
            "--redis-url" => args.redis_url = value.clone(),
            "--runs" => args.runs = number()?.max(1) as usize,
            "--jobs-memory" => args.jobs_memory = number()?,
            "--jobs-redis" => args.jobs_redis = number()?,
            "--jobs-sqlite" => args.jobs_sqlite = number()?,
            "--stores" => args.stores = list(&value, parse_store)?,
            "--consumers" => {
                args.consumers = list(&value, |word| word.parse::<usize>().ok())?;
            }
            "--modes" => args.modes = list(&value, parse_mode)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// A comma-separated list, each word read by `read`.
fn list<T>(value: &str, read: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|word| read(word.trim()).ok_or_else(|| format!("not understood: {word}")))
        .collect()
}

fn parse_store(word: &str) -> Option<Store> {
    [Store::Memory, Store::Sqlite, Store::Redis]
        .into_iter()
        .find(|store| store.name() == word)
}

fn parse_mode(word: &str) -> Option<Mode> {
    [Mode::Phased, Mode::Mixed]
        .into_iter()
        .find(|mode| mode.name() == word)
}

/// One row of the table: a scenario's medians for both libraries.
struct Row {
    scenario: Scenario,
    weft: Sample,
    apalis: Sample,
}

/// Runs every scenario and prints the table.
fn run_all(args: &Args) -> Result<(), RunError> {
    let mut rows = Vec::new();
    for &store in &args.stores {
        for &mode in &args.modes {
            if store == Store::Memory && mode == Mode::Mixed {
                // apalis's MemoryStorage cannot be pushed to while a worker consumes it.
                continue;
            }
            for &consumers in &args.consumers {
                let scenario = Scenario {
                    store,
                    consumers,
                    jobs: match store {
                        Store::Memory => args.jobs_memory,
                        Store::Sqlite => args.jobs_sqlite,
                        Store::Redis => args.jobs_redis,
                    },
                    mode,
                    sqlite_path: args.sqlite_path.clone(),
                    redis_url: args.redis_url.clone(),
                };
                rows.push(measure(&scenario, args.runs)?);
            }
        }
    }
    print_table(&rows);
    Ok(())
}

/// Runs `scenario` `runs` times on each side, alternating, and keeps the medians.
fn measure(scenario: &Scenario, runs: usize) -> Result<Row, RunError> {
    let mut weft = Vec::new();
    let mut apalis = Vec::new();
    for run in 0..runs {
        let w = weft_side::run(scenario)?;
        eprintln!(
            "  {} weft   run {}: {}",
            label(scenario),
            run + 1,
            show(scenario, &w)
        );
        weft.push(w);
        let a = apalis_side::run(scenario)?;
        eprintln!(
            "  {} apalis run {}: {}",
            label(scenario),
            run + 1,
            show(scenario, &a)
        );
        apalis.push(a);
    }
    Ok(Row {
        scenario: scenario.clone(),
        weft: median(&weft),
        apalis: median(&apalis),
    })
}

fn label(scenario: &Scenario) -> String {
    format!(
        "{} {} c={} n={}",
        scenario.store.name(),
        scenario.mode.name(),
        scenario.consumers,
        scenario.jobs
    )
}

fn show(scenario: &Scenario, sample: &Sample) -> String {
    match scenario.mode {
        Mode::Phased => format!(
            "enqueue {:.0}/s, process {:.0}/s",
            rate(scenario.jobs, sample.enqueue),
            rate(scenario.jobs, sample.process)
        ),
        Mode::Mixed => format!("{:.0}/s", rate(scenario.jobs, sample.enqueue)),
    }
}

/// The median of each timing, taken apart.
fn median(samples: &[Sample]) -> Sample {
    let pick = |get: fn(&Sample) -> Duration| {
        let mut values: Vec<Duration> = samples.iter().map(get).collect();
        values.sort();
        values[values.len() / 2]
    };
    Sample {
        enqueue: pick(|s| s.enqueue),
        process: pick(|s| s.process),
    }
}

fn rate(jobs: u64, time: Duration) -> f64 {
    jobs as f64 / time.as_secs_f64().max(1e-9)
}

/// Reads one timing of a sample.
type Timing = fn(&Sample) -> Duration;

/// Prints the medians as a Markdown table: jobs per second and the ratio weft/apalis.
fn print_table(rows: &[Row]) {
    println!(
        "| store | mode | consumers | jobs | phase | weft jobs/s | apalis jobs/s | weft/apalis |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        let scenario = &row.scenario;
        let phases: &[(&str, Timing)] = match scenario.mode {
            Mode::Phased => &[("enqueue", |s| s.enqueue), ("process", |s| s.process)],
            Mode::Mixed => &[("enqueue+process", |s| s.enqueue)],
        };
        for (phase, get) in phases {
            let weft = rate(scenario.jobs, get(&row.weft));
            let apalis = rate(scenario.jobs, get(&row.apalis));
            println!(
                "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2}× |",
                scenario.store.name(),
                scenario.mode.name(),
                scenario.consumers,
                scenario.jobs,
                phase,
                weft,
                apalis,
                weft / apalis
            );
        }
    }
}
