//! The scheduler's cron expressions (`weft::schedule::cron`), on arbitrary input read as
//! `expression` or `expression|zone`, from start times around the daylight-saving changes.
//! Properties: no panic; a parsed expression's next ticks strictly increase, each matches the
//! expression, and each is its own last tick at or before it.
//!
//! The module is compiled here from its source file (it uses only `std`, croner, chrono and
//! chrono-tz) rather than through the `weft` crate, which would bring the runtimes into the
//! fuzz build.
#![no_main]

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;

#[path = "../../web/src/schedule/cron.rs"]
#[allow(dead_code)]
mod cron;

/// 2026-01-01, the day before Paris springs forward, the day before it falls back (UTC).
const STARTS: [u64; 3] = [1_767_225_600, 1_774_656_000, 1_792_800_000];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match text.split_once('|') {
        Some((expression, zone)) => cron::CronSchedule::parse_in_zone(expression, zone),
        None => cron::CronSchedule::parse(text),
    };
    let Ok(schedule) = parsed else {
        return;
    };
    for start in STARTS {
        let mut time = SystemTime::UNIX_EPOCH + Duration::from_secs(start);
        for _ in 0..3 {
            let Some(next) = schedule.next_after(time) else {
                break;
            };
            assert!(next > time, "{schedule}: {next:?} is not after {time:?}");
            // A fixed-time tick carried past a spring-forward gap is the one tick that does
            // not match: its wall-clock time never happened.
            assert!(
                schedule.matches(next) || after_a_transition(schedule.zone(), next),
                "{schedule}: {next:?} does not match"
            );
            assert_eq!(schedule.last_at_or_before(next), Some(next), "{schedule}");
            time = next;
        }
    }
});

/// Whether `zone`'s offset changed at `time` (it differs one second before).
fn after_a_transition(zone: Tz, time: SystemTime) -> bool {
    let offset = |time: SystemTime| {
        let utc = DateTime::<Utc>::from(time).naive_utc();
        zone.offset_from_utc_datetime(&utc).fix()
    };
    offset(time) != offset(time - Duration::from_secs(1))
}
