//! The scheduler: cron expressions in time zones and across daylight-saving changes, and
//! the scheduler's jobs driven by a virtual clock (no real waiting for ticks), then a real
//! runtime and a served app.
//!
//! The virtual-clock tests run the scheduler's loops on `weft_runtime::background_runtime()`
//! and move the clock by hand; after each move they wait (bounded, in real time) until the
//! loops are asleep again, which says they handled the move.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::TimeZone as _;
use weft::backend::StoreError;
use weft::clock::{Clock, VirtualClock};
use weft::events::Events;
use weft::prelude::*;
use weft::schedule::{
    CronError, CronFinished, CronSchedule, CronSkipped, CronStarted, Interval, Job, JobError,
    JobSpec, LocalLease, Missed, Overlap, ScheduleError, Scheduler, SkipReason, TickLease,
};

/// How long a test waits for something that should happen at once (a busy 2-core machine).
const BOUND: Duration = Duration::from_secs(20);

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
    chrono::Utc
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("a valid UTC time")
        .into()
}

fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("an unambiguous Paris time")
        .into()
}

fn next(schedule: &CronSchedule, time: SystemTime) -> SystemTime {
    schedule.next_after(time).expect("a next tick")
}

/// Polls `done` until it holds, failing the test after [`BOUND`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < BOUND, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Cron expressions

#[test]
fn five_and_six_fields_and_aliases() {
    let noon = utc(2026, 6, 10, 12, 0, 0);
    let every_five = CronSchedule::parse("0 */5 * * *").unwrap();
    assert_eq!(next(&every_five, noon), utc(2026, 6, 10, 15, 0, 0));
    let every_ten_seconds = CronSchedule::parse("*/10 * * * * *").unwrap();
    assert_eq!(next(&every_ten_seconds, noon), utc(2026, 6, 10, 12, 0, 10));
    let cases = [
        ("@hourly", utc(2026, 6, 10, 13, 0, 0)),
        ("@daily", utc(2026, 6, 11, 0, 0, 0)),
        ("@midnight", utc(2026, 6, 11, 0, 0, 0)),
        ("@weekly", utc(2026, 6, 14, 0, 0, 0)), // a Sunday
        ("@monthly", utc(2026, 7, 1, 0, 0, 0)),
        ("@yearly", utc(2027, 1, 1, 0, 0, 0)),
        ("@annually", utc(2027, 1, 1, 0, 0, 0)),
        ("30 9 * * MON-FRI", utc(2026, 6, 11, 9, 30, 0)),
    ];
    for (expression, expected) in cases {
        let schedule = CronSchedule::parse(expression).unwrap();
        assert_eq!(next(&schedule, noon), expected, "{expression}");
    }
}

#[test]
fn next_after_is_strictly_later_inside_a_second() {
    let schedule = CronSchedule::parse("* * * * * *").unwrap();
    let inside = utc(2026, 6, 10, 12, 0, 0) + Duration::from_millis(500);
    assert_eq!(next(&schedule, inside), utc(2026, 6, 10, 12, 0, 1));
    assert_eq!(
        schedule.last_at_or_before(inside),
        Some(utc(2026, 6, 10, 12, 0, 0))
    );
}

#[test]
fn refuses_bad_expressions_and_unknown_zones_with_errors() {
    for bad in [
        "",
        "* * *",
        "61 * * * *",
        "* * * * * * * *",
        "@often",
        "a b c d e",
        " , 8 *  * *",
    ] {
        assert!(
            matches!(CronSchedule::parse(bad), Err(CronError::Expression { .. })),
            "{bad:?} parsed"
        );
    }
    assert_eq!(
        CronSchedule::parse_in_zone("* * * * *", "Mars/Olympus").unwrap_err(),
        CronError::UnknownZone("Mars/Olympus".to_owned())
    );
    // A date that never comes has no tick.
    let never = CronSchedule::parse("0 0 30 2 *").unwrap();
    assert_eq!(never.next_after(utc(2026, 1, 1, 0, 0, 0)), None);
}

#[test]
fn reads_the_fields_on_the_zones_wall_clock() {
    let nine = CronSchedule::parse_in_zone("0 9 * * *", "Europe/Paris").unwrap();
    // Winter: Paris is UTC+1; summer: UTC+2.
    assert_eq!(
        next(&nine, utc(2026, 1, 15, 0, 0, 0)),
        utc(2026, 1, 15, 8, 0, 0)
    );
    assert_eq!(
        next(&nine, utc(2026, 7, 15, 0, 0, 0)),
        utc(2026, 7, 15, 7, 0, 0)
    );
    assert_eq!(nine.zone(), chrono_tz::Europe::Paris);
}

#[test]
fn a_fixed_time_in_the_spring_gap_runs_once_right_after_it() {
    // On 2026-03-29 Paris goes from 02:00 CET straight to 03:00 CEST: 02:30 never happens.
    let schedule = CronSchedule::parse_in_zone("30 2 * * *", "Europe/Paris").unwrap();
    let gap_day = next(&schedule, paris(2026, 3, 28, 12, 0, 0));
    assert_eq!(gap_day, paris(2026, 3, 29, 3, 0, 0));
    assert_eq!(gap_day, utc(2026, 3, 29, 1, 0, 0));
    // Once: the next run is the following day's 02:30.
    assert_eq!(next(&schedule, gap_day), paris(2026, 3, 30, 2, 30, 0));
}

#[test]
fn a_fixed_time_in_the_autumn_overlap_runs_once() {
    // On 2026-10-25 Paris goes from 03:00 CEST back to 02:00 CET: 02:30 happens twice.
    let schedule = CronSchedule::parse_in_zone("30 2 * * *", "Europe/Paris").unwrap();
    let first = next(&schedule, paris(2026, 10, 24, 12, 0, 0));
    assert_eq!(first, utc(2026, 10, 25, 0, 30, 0)); // 02:30 CEST
    // Not again at 02:30 CET (01:30 UTC): the next run is the day after.
    assert_eq!(next(&schedule, first), utc(2026, 10, 26, 1, 30, 0));
}

#[test]
fn an_interval_in_the_overlap_follows_the_wall_clock_both_times() {
    let schedule = CronSchedule::parse_in_zone("*/30 * * * *", "Europe/Paris").unwrap();
    let mut tick = utc(2026, 10, 25, 0, 0, 0); // 02:00 CEST
    let mut ticks = Vec::new();
    for _ in 0..4 {
        tick = next(&schedule, tick);
        ticks.push(tick);
    }
    assert_eq!(
        ticks,
        [
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 25, 1, 0, 0),  // 02:00 CET
            utc(2026, 10, 25, 1, 30, 0), // 02:30 CET
            utc(2026, 10, 25, 2, 0, 0),  // 03:00 CET
        ]
    );
    // In the spring gap, the interval just has no ticks.
    let after_gap = next(&schedule, utc(2026, 3, 29, 0, 45, 0)); // 01:45 CET
    assert_eq!(after_gap, utc(2026, 3, 29, 1, 0, 0)); // 03:00 CEST
}

// ---------------------------------------------------------------------------------------------
// The scheduler on a virtual clock

/// A scheduler on a virtual clock, with its events recorded.
struct Rig {
    clock: VirtualClock,
    scheduler: Scheduler,
    started: Arc<Mutex<Vec<(String, SystemTime)>>>,
    finished: Arc<Mutex<Vec<CronFinished>>>,
    skipped: Arc<Mutex<Vec<CronSkipped>>>,
}

impl Rig {
    fn new(start: SystemTime) -> Rig {
        Rig::with(start, |scheduler| scheduler)
    }

    fn with(start: SystemTime, configure: impl FnOnce(Scheduler) -> Scheduler) -> Rig {
        let clock = VirtualClock::new(start);
        let events = Events::new();
        let started = Arc::new(Mutex::new(Vec::new()));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let skipped = Arc::new(Mutex::new(Vec::new()));
        {
            let started = Arc::clone(&started);
            events.on(move |event: &CronStarted| {
                started
                    .lock()
                    .unwrap()
                    .push((event.job.clone(), event.tick));
            });
            let finished = Arc::clone(&finished);
            events.on(move |event: &CronFinished| finished.lock().unwrap().push(event.clone()));
            let skipped = Arc::clone(&skipped);
            events.on(move |event: &CronSkipped| skipped.lock().unwrap().push(event.clone()));
        }
        let scheduler = configure(
            Scheduler::new()
                .with_clock(Arc::new(clock.clone()))
                .with_events(events),
        );
        Rig {
            clock,
            scheduler,
            started,
            finished,
            skipped,
        }
    }

    fn run(&self) {
        self.scheduler
            .run_on(&weft_runtime::background_runtime())
            .unwrap();
    }

    /// Waits until `sleepers` loops sleep on the clock and no job runs: the scheduler has
    /// handled everything the clock's last move made due.
    fn settle(&self, sleepers: usize) {
        wait_until(&format!("{sleepers} sleepers and no run"), || {
            self.clock.sleepers() == sleepers
                && self.scheduler.list().iter().all(|job| !job.running)
        });
    }

    /// Moves the clock by `step`, `times` times, settling after each.
    fn step(&self, step: Duration, times: u32, sleepers: usize) {
        for _ in 0..times {
            self.clock.advance(step);
            self.settle(sleepers);
        }
    }

    fn runs(&self, name: &str) -> u64 {
        self.scheduler.status(name).expect("the job").runs
    }

    fn started_ticks(&self, name: &str) -> Vec<SystemTime> {
        let started = self.started.lock().unwrap();
        started
            .iter()
            .filter(|(job, _)| job == name)
            .map(|(_, tick)| *tick)
            .collect()
    }
}

fn counter() -> (
    Arc<AtomicU64>,
    impl Fn() -> std::future::Ready<()> + Send + Sync + 'static,
) {
    let count = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&count);
    (count, move || {
        counting.fetch_add(1, Ordering::SeqCst);
        std::future::ready(())
    })
}

/// A gate a blocking job waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn pass(&self) {
        let open = self.open.lock().unwrap();
        let _open = self
            .changed
            .wait_timeout_while(open, BOUND, |open| !*open)
            .unwrap();
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// A blocking job that counts its runs and waits at `gate`.
fn gated(gate: &Arc<Gate>) -> (Arc<AtomicU64>, Job) {
    let count = Arc::new(AtomicU64::new(0));
    let (counting, gate) = (Arc::clone(&count), Arc::clone(gate));
    (
        count,
        Job::blocking(move || {
            counting.fetch_add(1, Ordering::SeqCst);
            gate.pass();
        }),
    )
}

const TEN_SECONDS: Duration = Duration::from_secs(10);

#[test]
fn cron_job_runs_on_each_tick_of_the_virtual_clock() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let (count, job) = counter();
    rig.scheduler
        .add_cron("tick", "*/10 * * * * *", job)
        .unwrap();
    assert_eq!(rig.scheduler.status("tick").unwrap().next_run, None);
    rig.run();
    rig.settle(1);
    let status = rig.scheduler.status("tick").unwrap();
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 12, 0, 10)));
    assert_eq!(status.schedule, "*/10 * * * * * (UTC)");

    rig.step(Duration::from_secs(5), 1, 1);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    rig.step(Duration::from_secs(5), 5, 1);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let status = rig.scheduler.status("tick").unwrap();
    assert_eq!(status.runs, 3);
    assert_eq!(status.last_run, Some(utc(2026, 6, 10, 12, 0, 30)));
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 12, 0, 40)));
    assert_eq!(
        rig.started_ticks("tick"),
        [
            utc(2026, 6, 10, 12, 0, 10),
            utc(2026, 6, 10, 12, 0, 20),
            utc(2026, 6, 10, 12, 0, 30)
        ]
    );
    assert!(
        rig.finished
            .lock()
            .unwrap()
            .iter()
            .all(|f| f.outcome.is_ok())
    );
}

#[test]
fn cron_job_in_a_zone_runs_across_the_spring_gap_once() {
    // 01:59:00 CET on the day of the gap; the job is set for 02:30.
    let rig = Rig::new(paris(2026, 3, 29, 1, 59, 0));
    let (count, job) = counter();
    let spec = JobSpec::cron(CronSchedule::parse_in_zone("30 2 * * *", "Europe/Paris").unwrap());
    rig.scheduler.add("gap", spec, job).unwrap();
    rig.run();
    rig.settle(1);
    // Minute by minute through the gap (02:00 CET is 03:00 CEST) up to 04:00 CEST.
    rig.step(Duration::from_secs(60), 62, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.started_ticks("gap"), [paris(2026, 3, 29, 3, 0, 0)]);
}

#[test]
fn cron_job_in_a_zone_runs_once_in_the_autumn_overlap() {
    // 02:00 CEST on the day the clock goes back; 02:30 comes twice.
    let rig = Rig::new(utc(2026, 10, 25, 0, 0, 0));
    let (count, job) = counter();
    let spec = JobSpec::cron(CronSchedule::parse_in_zone("30 2 * * *", "Europe/Paris").unwrap());
    rig.scheduler.add("overlap", spec, job).unwrap();
    rig.run();
    rig.settle(1);
    // Two and a half hours, minute by minute: through both 02:30s.
    rig.step(Duration::from_secs(60), 150, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.started_ticks("overlap"), [utc(2026, 10, 25, 0, 30, 0)]);
}

#[test]
fn overlap_skip_skips_a_tick_while_the_run_goes_on() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let gate = Arc::new(Gate::default());
    let (count, job) = gated(&gate);
    rig.scheduler
        .add_cron("slow", "*/10 * * * * *", job)
        .unwrap();
    rig.run();
    rig.settle(1);
    rig.clock.advance(TEN_SECONDS);
    wait_until("the first run", || count.load(Ordering::SeqCst) == 1);
    // Two more ticks while it runs: both skipped.
    for _ in 0..2 {
        rig.clock.advance(TEN_SECONDS);
        wait_until("the tick handled", || rig.clock.sleepers() == 1);
    }
    let status = rig.scheduler.status("slow").unwrap();
    assert!(status.running);
    assert_eq!(status.skipped, 2);
    gate.open();
    rig.settle(1);
    let status = rig.scheduler.status("slow").unwrap();
    assert_eq!((status.runs, status.skipped), (1, 2));
    let reasons: Vec<SkipReason> = rig
        .skipped
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.reason.clone())
        .collect();
    assert_eq!(reasons, [SkipReason::Overlap, SkipReason::Overlap]);
}

#[test]
fn overlap_queue_runs_one_tick_after_the_run_and_skips_the_rest() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let gate = Arc::new(Gate::default());
    let (count, job) = gated(&gate);
    let spec =
        JobSpec::cron(CronSchedule::parse("*/10 * * * * *").unwrap()).overlap(Overlap::Queue);
    rig.scheduler.add("queued", spec, job).unwrap();
    rig.run();
    rig.settle(1);
    rig.clock.advance(TEN_SECONDS);
    wait_until("the first run", || count.load(Ordering::SeqCst) == 1);
    for _ in 0..2 {
        rig.clock.advance(TEN_SECONDS);
        wait_until("the tick handled", || rig.clock.sleepers() == 1);
    }
    // The first tick during the run waits; the second is skipped (one waits already).
    assert_eq!(rig.scheduler.status("queued").unwrap().skipped, 1);
    gate.open();
    rig.settle(1);
    let status = rig.scheduler.status("queued").unwrap();
    assert_eq!((status.runs, status.skipped), (2, 1));
    assert_eq!(
        rig.started_ticks("queued"),
        [utc(2026, 6, 10, 12, 0, 10), utc(2026, 6, 10, 12, 0, 20)]
    );
}

/// An hourly job whose clock jumps five hours forward.
fn jump_forward(missed: Missed) -> (Rig, Arc<AtomicU64>) {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 30));
    let (count, job) = counter();
    let spec = JobSpec::cron(CronSchedule::parse("0 * * * *").unwrap()).missed(missed);
    rig.scheduler.add("hourly", spec, job).unwrap();
    rig.run();
    rig.settle(1);
    rig.clock.set(utc(2026, 6, 10, 17, 0, 30));
    // The loop reads the wall clock again within a minute (its recheck).
    rig.step(Duration::from_secs(60), 1, 1);
    (rig, count)
}

#[test]
fn missed_skip_runs_nothing_after_a_jump_forward_until_the_next_tick() {
    let (rig, count) = jump_forward(Missed::Skip);
    let status = rig.scheduler.status("hourly").unwrap();
    assert_eq!((status.runs, status.missed), (0, 5));
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 18, 0, 0)));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(rig.skipped.lock().unwrap()[0].reason, SkipReason::Missed(5));
    // Up to 18:00:30: the next tick runs.
    rig.step(Duration::from_secs(60), 59, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.started_ticks("hourly"), [utc(2026, 6, 10, 18, 0, 0)]);
}

#[test]
fn missed_run_once_catches_up_once_after_a_jump_forward() {
    let (rig, count) = jump_forward(Missed::RunOnce);
    let status = rig.scheduler.status("hourly").unwrap();
    assert_eq!((status.runs, status.missed), (1, 4));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.started_ticks("hourly"), [utc(2026, 6, 10, 17, 0, 0)]);
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 18, 0, 0)));
}

#[test]
fn a_late_wake_within_the_tolerance_runs_the_tick() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let (count, job) = counter();
    rig.scheduler.add_cron("hourly", "0 * * * *", job).unwrap();
    rig.run();
    rig.settle(1);
    // A stall: the clock is 30 s past the tick when the loop sees it (tolerance: 60 s).
    rig.clock.set(utc(2026, 6, 10, 12, 59, 30));
    rig.step(Duration::from_secs(60), 1, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.scheduler.status("hourly").unwrap().missed, 0);
}

#[test]
fn a_clock_jumping_back_never_runs_a_tick_twice() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let (count, job) = counter();
    rig.scheduler
        .add_cron("tick", "*/10 * * * * *", job)
        .unwrap();
    rig.run();
    rig.settle(1);
    rig.step(TEN_SECONDS, 2, 1);
    assert_eq!(count.load(Ordering::SeqCst), 2); // 12:00:10 and 12:00:20
    rig.clock.set(utc(2026, 6, 10, 11, 59, 0));
    // 80 s of steady time brings the wall clock back to 12:00:20, then 10 s more.
    rig.step(TEN_SECONDS, 9, 1);
    assert_eq!(
        rig.started_ticks("tick"),
        [
            utc(2026, 6, 10, 12, 0, 10),
            utc(2026, 6, 10, 12, 0, 20),
            utc(2026, 6, 10, 12, 0, 30),
        ]
    );
    assert_eq!(rig.scheduler.status("tick").unwrap().missed, 0);
}

#[test]
fn pause_resume_stop_start_and_status() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let (count, job) = counter();
    rig.scheduler
        .add_cron("tick", "*/10 * * * * *", job)
        .unwrap();
    let (other, other_job) = counter();
    rig.scheduler
        .add_cron("other", "*/10 * * * * *", other_job)
        .unwrap();
    rig.run();
    rig.settle(2);
    rig.step(TEN_SECONDS, 1, 2);
    assert_eq!(rig.runs("tick"), 1);

    rig.scheduler.pause("tick").unwrap();
    rig.step(TEN_SECONDS, 2, 2);
    let status = rig.scheduler.status("tick").unwrap();
    assert!(status.paused);
    assert_eq!((status.runs, status.skipped), (1, 2));
    assert!(matches!(
        rig.skipped.lock().unwrap().last().map(|s| &s.reason),
        Some(SkipReason::Paused)
    ));
    rig.scheduler.resume("tick").unwrap();
    rig.step(TEN_SECONDS, 1, 2);
    assert_eq!(rig.runs("tick"), 2);

    rig.scheduler.stop("tick").unwrap();
    rig.settle(1);
    let status = rig.scheduler.status("tick").unwrap();
    assert!(status.stopped);
    assert_eq!(status.next_run, None);
    rig.step(TEN_SECONDS, 3, 1);
    assert_eq!(count.load(Ordering::SeqCst), 2);
    rig.scheduler.start("tick").unwrap();
    rig.settle(2);
    rig.step(TEN_SECONDS, 1, 2);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(other.load(Ordering::SeqCst), 8);

    let names: Vec<String> = rig.scheduler.list().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["other", "tick"]);
    assert_eq!(
        rig.scheduler.pause("nope"),
        Err(ScheduleError::UnknownJob("nope".to_owned()))
    );
    assert_eq!(rig.scheduler.status("nope"), None);
}

#[test]
fn run_after_runs_once() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let (count, job) = counter();
    rig.run();
    let name = rig
        .scheduler
        .run_after(None, Duration::from_secs(30), job)
        .unwrap();
    assert_eq!(name, "after-1");
    rig.settle(1);
    rig.step(Duration::from_secs(29), 1, 1);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    rig.clock.advance(Duration::from_secs(1));
    wait_until("the one-shot ran", || count.load(Ordering::SeqCst) == 1);
    rig.settle(0);
    rig.step(Duration::from_secs(60), 3, 0);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(rig.scheduler.status(&name).unwrap().next_run, None);
}

#[test]
fn run_every_at_a_fixed_rate_ticks_whatever_the_runs_last() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let gate = Arc::new(Gate::default());
    let (count, job) = gated(&gate);
    rig.scheduler
        .run_every("rate", Interval::FixedRate(TEN_SECONDS), job)
        .unwrap();
    rig.run();
    rig.settle(1);
    rig.clock.advance(TEN_SECONDS);
    wait_until("the first run", || count.load(Ordering::SeqCst) == 1);
    rig.clock.advance(TEN_SECONDS); // t = 20 s: the run still goes on, the tick is skipped
    wait_until("the tick handled", || rig.clock.sleepers() == 1);
    gate.open();
    rig.settle(1);
    rig.step(TEN_SECONDS, 1, 1); // t = 30 s
    let status = rig.scheduler.status("rate").unwrap();
    assert_eq!((status.runs, status.skipped), (2, 1));
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 12, 0, 40)));
}

#[test]
fn run_every_with_a_fixed_delay_waits_for_each_run() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let gate = Arc::new(Gate::default());
    let (count, job) = gated(&gate);
    rig.scheduler
        .run_every("delay", Interval::FixedDelay(TEN_SECONDS), job)
        .unwrap();
    rig.run();
    rig.settle(1);
    rig.clock.advance(TEN_SECONDS);
    wait_until("the first run", || {
        rig.scheduler.status("delay").unwrap().running
    });
    // The run lasts 10 s: no tick meanwhile, the loop waits for it.
    rig.clock.advance(TEN_SECONDS);
    assert_eq!(rig.clock.sleepers(), 0);
    gate.open();
    rig.settle(1);
    // The next tick is 10 s after the end, at 12:00:30.
    let status = rig.scheduler.status("delay").unwrap();
    assert_eq!(status.next_run, Some(utc(2026, 6, 10, 12, 0, 30)));
    assert_eq!((status.runs, status.skipped), (1, 0));
    rig.step(Duration::from_secs(5), 1, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    rig.step(Duration::from_secs(5), 1, 1);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn failures_and_panics_are_reported_in_status_and_events() {
    let rig = Rig::new(utc(2026, 6, 10, 12, 0, 0));
    let fail = Arc::new(AtomicBool::new(true));
    let failing = Arc::clone(&fail);
    rig.scheduler
        .add_cron("flaky", "*/10 * * * * *", move || {
            let fail = failing.load(Ordering::SeqCst);
            async move { if fail { Err("disk full") } else { Ok(()) } }
        })
        .unwrap();
    rig.scheduler
        .add_cron(
            "panics",
            "*/10 * * * * *",
            Job::blocking(|| {
                if true {
                    panic!("boom");
                }
            }),
        )
        .unwrap();
    rig.run();
    rig.settle(2);
    rig.step(TEN_SECONDS, 1, 2);
    let flaky = rig.scheduler.status("flaky").unwrap();
    assert_eq!(
        flaky.last_error,
        Some(JobError::Failed("disk full".to_owned()))
    );
    let panics = rig.scheduler.status("panics").unwrap();
    assert_eq!(
        panics.last_error,
        Some(JobError::Panicked("boom".to_owned()))
    );
    assert_eq!(panics.runs, 1);
    fail.store(false, Ordering::SeqCst);
    rig.step(TEN_SECONDS, 1, 2);
    assert_eq!(rig.scheduler.status("flaky").unwrap().last_error, None);
    let outcomes: Vec<Result<(), JobError>> = rig
        .finished
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f.job == "flaky")
        .map(|f| f.outcome.clone())
        .collect();
    assert_eq!(
        outcomes,
        [Err(JobError::Failed("disk full".to_owned())), Ok(())]
    );
}

#[test]
fn two_schedulers_sharing_a_lease_run_each_tick_once() {
    let start = utc(2026, 6, 10, 12, 0, 0);
    let lease: Arc<dyn TickLease> = Arc::new(LocalLease::new());
    let clock = VirtualClock::new(start);
    let total = Arc::new(AtomicU64::new(0));
    let schedulers: Vec<Scheduler> = (0..2)
        .map(|i| {
            let scheduler = Scheduler::new()
                .with_clock(Arc::new(clock.clone()))
                .with_lease(Arc::clone(&lease))
                .with_instance_id(format!("instance-{i}"));
            let total = Arc::clone(&total);
            scheduler
                .add_cron("report", "*/10 * * * * *", move || {
                    total.fetch_add(1, Ordering::SeqCst);
                    async {}
                })
                .unwrap();
            scheduler
                .run_on(&weft_runtime::background_runtime())
                .unwrap();
            scheduler
        })
        .collect();
    let settle = || {
        wait_until("both asleep", || {
            clock.sleepers() == 2
                && schedulers
                    .iter()
                    .all(|s| !s.status("report").unwrap().running)
        });
    };
    settle();
    for _ in 0..5 {
        clock.advance(TEN_SECONDS);
        settle();
    }
    assert_eq!(total.load(Ordering::SeqCst), 5);
    let (runs, skipped) = schedulers.iter().fold((0, 0), |(runs, skipped), s| {
        let status = s.status("report").unwrap();
        (runs + status.runs, skipped + status.skipped)
    });
    assert_eq!((runs, skipped), (5, 5));
}

/// A lease whose backend is down, answered on the blocking pool.
struct BrokenLease;

impl TickLease for BrokenLease {
    fn claim_tick(
        &self,
        _job: &str,
        _tick: i64,
        _holder: &str,
        _keep: Duration,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Corrupt("the backend is down".to_owned()))
    }
}

#[test]
fn a_lease_error_skips_the_tick() {
    let rig = Rig::with(utc(2026, 6, 10, 12, 0, 0), |scheduler| {
        scheduler.with_lease(Arc::new(BrokenLease))
    });
    let (count, job) = counter();
    rig.scheduler
        .add_cron("report", "*/10 * * * * *", job)
        .unwrap();
    rig.run();
    rig.settle(1);
    rig.step(TEN_SECONDS, 2, 1);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(rig.scheduler.status("report").unwrap().skipped, 2);
    assert!(matches!(
        &rig.skipped.lock().unwrap()[0].reason,
        SkipReason::LeaseError(message) if message.contains("the backend is down")
    ));
}

#[test]
fn registration_errors_are_typed() {
    let scheduler = Scheduler::new();
    let (_, job) = counter();
    scheduler.add_cron("a", "* * * * *", job).unwrap();
    let (_, job) = counter();
    assert_eq!(
        scheduler.add_cron("a", "* * * * *", job),
        Err(ScheduleError::Duplicate("a".to_owned()))
    );
    let (_, job) = counter();
    assert!(matches!(
        scheduler.add_cron("b", "nope", job),
        Err(ScheduleError::Cron(CronError::Expression { .. }))
    ));
    let (_, job) = counter();
    assert_eq!(
        scheduler.run_every("c", Interval::FixedRate(Duration::ZERO), job),
        Err(ScheduleError::ZeroPeriod("c".to_owned()))
    );
}

#[test]
fn hooks_run_at_start_and_after_the_stop() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (on_start, on_shutdown) = (Arc::clone(&log), Arc::clone(&log));
    let rig = Rig::with(utc(2026, 6, 10, 12, 0, 0), |scheduler| {
        scheduler
            .on_start(move || on_start.lock().unwrap().push("start"))
            .on_shutdown(move || on_shutdown.lock().unwrap().push("shutdown"))
    });
    let gate = Arc::new(Gate::default());
    let (count, job) = gated(&gate);
    rig.scheduler
        .add_cron("slow", "*/10 * * * * *", job)
        .unwrap();
    rig.run();
    assert_eq!(*log.lock().unwrap(), ["start"]);
    rig.settle(1);
    rig.clock.advance(TEN_SECONDS);
    wait_until("the run", || count.load(Ordering::SeqCst) == 1);
    rig.scheduler.begin_stop();
    // The run goes on: a deadline already passed gives up at once.
    assert!(!rig.scheduler.wait_stopped(Instant::now()));
    assert_eq!(*log.lock().unwrap(), ["start", "shutdown"]);
    gate.open();
    assert!(rig.scheduler.wait_stopped(Instant::now() + BOUND));
    wait_until("the loops ended", || rig.clock.sleepers() == 0);
    // No tick after the stop.
    rig.clock.advance(TEN_SECONDS);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(*log.lock().unwrap(), ["start", "shutdown"]);
}

// ---------------------------------------------------------------------------------------------
// The app

fn build_error(app: App) -> String {
    match app.build() {
        Ok(_) => panic!("the app built"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn app_build_fails_on_a_bad_schedule() {
    let bad_expression = App::new().cron("bad", "61 * * * *", || async {});
    let error = build_error(bad_expression);
    assert!(error.contains("61 * * * *"), "{error}");

    let bad_zone = App::new().cron_in("bad", "@daily", "Nowhere/City", || async {});
    let error = build_error(bad_zone);
    assert!(error.contains("Nowhere/City"), "{error}");

    let twice = App::new()
        .cron("job", "@daily", || async {})
        .cron("job", "@hourly", || async {});
    let error = build_error(twice);
    assert!(error.contains("job"), "{error}");

    let configured = App::new().scheduler(|scheduler| {
        scheduler.run_every("zero", Interval::FixedDelay(Duration::ZERO), || async {})?;
        Ok(scheduler)
    });
    assert!(configured.build().is_err());
}

#[weft::cron("0 */5 * * *", tz = "Europe/Paris")]
async fn report() -> Result<(), std::io::Error> {
    Ok(())
}

#[weft::cron("@hourly", name = "cleanup")]
async fn sweep() {}

#[test]
fn the_cron_attribute_makes_a_task_for_app_schedule() {
    let task = report();
    assert_eq!(task.name(), "report");
    assert_eq!(sweep().name(), "cleanup");
    let scheduler = Scheduler::new();
    report().add_to(&scheduler).unwrap();
    let status = scheduler.status("report").unwrap();
    assert_eq!(status.schedule, "0 */5 * * * (Europe/Paris)");
    App::new()
        .schedule(report)
        .schedule(sweep)
        .build()
        .expect("valid tasks");
}

#[test]
fn a_seconds_cron_job_runs_on_a_real_runtime() {
    let scheduler = Scheduler::new();
    let (count, job) = counter();
    scheduler
        .add_cron("every-second", "* * * * * *", job)
        .unwrap();
    scheduler
        .run_on(&weft_runtime::background_runtime())
        .unwrap();
    wait_until("two runs", || count.load(Ordering::SeqCst) >= 2);
    scheduler.begin_stop();
    assert!(scheduler.wait_stopped(Instant::now() + BOUND));
    assert_eq!(
        scheduler.run_on(&weft_runtime::background_runtime()),
        Err(ScheduleError::AlreadyRunning)
    );
}

#[test]
fn a_served_apps_scheduler_waits_for_its_running_job_on_shutdown() {
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (starting, finishing) = (Arc::clone(&started), Arc::clone(&finished));
    let app = App::new()
        .cron("slow", "* * * * * *", move || {
            let (starting, finishing) = (Arc::clone(&starting), Arc::clone(&finishing));
            async move {
                if !starting.swap(true, Ordering::SeqCst) {
                    weft_service::runtime::sleep(Duration::from_millis(1500)).await;
                    finishing.store(true, Ordering::SeqCst);
                }
            }
        })
        .get("/jobs", |scheduler: Inject<Scheduler>| async move {
            scheduler
                .list()
                .into_iter()
                .map(|job| job.name)
                .collect::<Vec<_>>()
                .join(",")
        });
    let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app.listen(config).unwrap();
    let address = server.local_addrs()[0];
    let answer = exchange(
        address,
        b"GET /jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow"), "{answer}");
    wait_until("the job started", || started.load(Ordering::SeqCst));
    server.shutdown();
    server.join().unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the drain did not wait for the running job"
    );
}

fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_virtual_clock_wakes_sleepers_whose_time_came() {
    let clock = VirtualClock::new(utc(2026, 6, 10, 12, 0, 0));
    let mut short = clock.sleep(Duration::from_secs(5));
    let mut long = clock.sleep(Duration::from_secs(10));
    assert_eq!(clock.sleepers(), 2);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(short.as_mut().poll(&mut cx).is_pending());
    clock.advance(Duration::from_secs(5));
    assert!(short.as_mut().poll(&mut cx).is_ready());
    assert!(long.as_mut().poll(&mut cx).is_pending());
    // A jump of the wall clock ends no sleep.
    clock.set(utc(2030, 1, 1, 0, 0, 0));
    assert!(long.as_mut().poll(&mut cx).is_pending());
    assert_eq!(clock.now(), utc(2030, 1, 1, 0, 0, 0));
    drop(long);
    assert_eq!(clock.sleepers(), 0);
}
