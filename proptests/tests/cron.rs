//! Properties of the scheduler's cron expressions (`weft::schedule::CronSchedule`, on croner):
//! in the syntax croner shares with the `cron` crate, the next ticks are the reference's;
//! ticks strictly increase; every tick is one the expression's fields match; parsing never
//! panics.
//!
//! The common subset: six fields with seconds first; numbers, `*`, ranges, lists and steps;
//! weekdays by name only (the two crates number them differently); a day of the month and a
//! day of the week never both restricted (croner ORs them as Vixie cron does, the `cron`
//! crate ANDs them).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use weft::schedule::CronSchedule;

/// One field over `min..=max`: `*`, a value, a range, a step, a stepped range or a list.
fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
    let value = min..=max;
    prop_oneof![
        Just("*".to_owned()),
        value.clone().prop_map(|v| v.to_string()),
        (value.clone(), value.clone()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (1..(max - min + 1).min(31)).prop_map(|step| format!("*/{step}")),
        (value.clone(), value.clone(), 1..=10u32).prop_map(|(a, b, s)| format!(
            "{}-{}/{s}",
            a.min(b),
            a.max(b)
        )),
        prop::collection::btree_set(value, 1..4).prop_map(|values| {
            values
                .into_iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }),
    ]
}

const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// A day-of-week field by names: a day, a Monday-based range (no wrap), or a list.
fn weekdays() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..7usize).prop_map(|d| DAYS[d].to_owned()),
        (0..6usize, 0..6usize).prop_map(|(a, b)| format!("{}-{}", DAYS[a.min(b)], DAYS[a.max(b)])),
        prop::collection::btree_set(0..7usize, 1..4).prop_map(|days| {
            days.into_iter()
                .map(|d| DAYS[d])
                .collect::<Vec<_>>()
                .join(",")
        }),
    ]
}

/// A six-field expression in the common subset.
fn expression() -> impl Strategy<Value = String> {
    let days = prop_oneof![
        (field(1, 28), Just("*".to_owned())),
        (Just("*".to_owned()), weekdays()),
        (Just("*".to_owned()), Just("*".to_owned())),
    ];
    (field(0, 59), field(0, 59), field(0, 23), days, field(1, 12)).prop_map(
        |(second, minute, hour, (dom, dow), month)| {
            format!("{second} {minute} {hour} {dom} {month} {dow}")
        },
    )
}

/// A start time between 2000 and 2040, with milliseconds.
fn start() -> impl Strategy<Value = SystemTime> {
    (946_684_800u64..2_208_988_800, 0u64..1000).prop_map(|(seconds, millis)| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    })
}

fn utc(time: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(time)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn next_ticks_match_the_reference(expression in expression(), from in start()) {
        let ours = CronSchedule::parse(&expression).unwrap();
        let reference = cron::Schedule::from_str(&expression).unwrap();
        let expected: Vec<DateTime<Utc>> = reference.after(&utc(from)).take(4).collect();
        let mut got = Vec::new();
        let mut time = from;
        for _ in 0..expected.len() {
            let Some(next) = ours.next_after(time) else { break };
            got.push(utc(next));
            time = next;
        }
        prop_assert_eq!(got, expected, "{}", expression);
    }

    #[test]
    fn ticks_strictly_increase_and_match_the_fields(expression in expression(), from in start()) {
        let ours = CronSchedule::parse(&expression).unwrap();
        let reference = cron::Schedule::from_str(&expression).unwrap();
        let Some(first) = ours.next_after(from) else { return Ok(()) };
        prop_assert!(first > from);
        let Some(second) = ours.next_after(first) else { return Ok(()) };
        prop_assert!(second > first, "{} then {}", utc(first), utc(second));
        for tick in [first, second] {
            prop_assert!(ours.matches(tick));
            prop_assert!(reference.includes(utc(tick)), "{} at {}", expression, utc(tick));
            prop_assert_eq!(ours.last_at_or_before(tick), Some(tick));
        }
        // No tick between them, nor between the start and the first.
        prop_assert_eq!(ours.last_at_or_before(second - Duration::from_millis(1)), Some(first));
        let before_first = ours.last_at_or_before(first - Duration::from_millis(1));
        prop_assert!(before_first.is_none_or(|before| before <= from));
    }

    #[test]
    fn parse_never_panics_on_any_string(text in "\\PC{0,40}", zone in "\\PC{0,20}") {
        let _ = CronSchedule::parse(&text);
        if let Ok(schedule) = CronSchedule::parse_in_zone(&text, &zone) {
            let _ = schedule.next_after(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        }
    }

    #[test]
    fn parse_never_panics_on_cron_like_strings(text in "[0-9*/,\\-LW#?@A-Z ]{0,40}") {
        if let Ok(schedule) = CronSchedule::parse(&text) {
            let from = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            if let Some(next) = schedule.next_after(from) {
                prop_assert!(next > from);
            }
        }
    }
}
