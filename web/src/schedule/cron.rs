//! Cron expressions in a time zone: when a cron job's next tick falls.
//!
//! The syntax is [croner]'s: five fields (`minute hour day-of-month month day-of-week`), or six
//! with seconds first, or seven with a year last; `*`, lists, ranges, steps, `L`, `W` and `#`;
//! names for months (`JAN`) and weekdays (`MON`, where `0` and `7` are both Sunday); and the
//! aliases `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`.
//! The fields are read on the wall clock of the schedule's time zone (an IANA name such as
//! `Europe/Paris`, UTC by default).
//!
//! # Daylight saving time
//!
//! A time zone's wall clock skips an hour in spring and repeats one in autumn. What a job
//! does then depends on its kind, as [croner] (and the Open Cron Pattern Specification) rule:
//!
//! - A **fixed-time** job (second, minute and hour each one plain value, like `30 2 * * *`)
//!   runs once a day, always. When its time falls in the skipped hour (02:30 in Paris on
//!   2026-03-29), it runs at the first instant after the gap (03:00 summer time). When its
//!   time falls in the repeated hour (02:30 on 2026-10-25), it runs once, at the first 02:30
//!   (summer time), not again an hour later.
//! - An **interval** job (a wildcard, range, list or step in those fields, like `*/15 * * * *`)
//!   follows the wall clock: the skipped hour has no ticks, and the repeated hour has its ticks
//!   twice, once in each offset, as the hour really passes twice.
//!
//! This module uses only `std`, croner, chrono and chrono-tz, so the fuzz target compiles it
//! on its own.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed cron expression with its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

/// Why a cron expression or a time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not parse.
    Expression {
        /// The expression as given.
        expression: String,
        /// What croner says is wrong.
        reason: String,
    },
    /// The time zone is not an IANA name chrono-tz knows.
    UnknownZone(String),
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::Expression { expression, reason } => {
                write!(f, "invalid cron expression `{expression}`: {reason}")
            }
            CronError::UnknownZone(zone) => write!(f, "unknown time zone `{zone}`"),
        }
    }
}

impl std::error::Error for CronError {}

impl CronSchedule {
    /// Parses `expression` on the UTC wall clock.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        Self::parse_in(expression, Tz::UTC)
    }

    /// Parses `expression` on the wall clock of the time zone named `zone` (`"Europe/Paris"`).
    pub fn parse_in_zone(expression: &str, zone: &str) -> Result<Self, CronError> {
        let zone = Tz::from_str(zone).map_err(|_| CronError::UnknownZone(zone.to_owned()))?;
        Self::parse_in(expression, zone)
    }

    /// Parses `expression` on the wall clock of `zone`.
    pub fn parse_in(expression: &str, zone: Tz) -> Result<Self, CronError> {
        let refuse = |reason: String| CronError::Expression {
            expression: expression.to_owned(),
            reason,
        };
        // croner knows every alias but this one.
        let trimmed = expression.trim();
        let pattern = if trimmed.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            trimmed
        };
        // A year field past croner's range is accepted by its parser and then makes every
        // search fail; more than seven fields is refused by the parser.
        let cron = Cron::from_str(pattern).map_err(|error| refuse(error.to_string()))?;
        if let Some(field) = empty_field(&cron) {
            return Err(refuse(format!("its {field} field matches nothing")));
        }
        Ok(CronSchedule {
            expression: expression.to_owned(),
            cron,
            zone,
        })
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone whose wall clock the fields are read on.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first tick strictly after `time`, or `None` if there is none (a date that never
    /// comes, like February 30, or a year past croner's last), or `time` is before 1970.
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        let start = self.zoned(time)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        let next = SystemTime::from(next.with_timezone(&Utc));
        // The search starts at `time`'s whole second and excludes it: the answer is later.
        (next > time).then_some(next)
    }

    /// The last tick at or before `time`, or `None` if there is none.
    pub fn last_at_or_before(&self, time: SystemTime) -> Option<SystemTime> {
        let start = self.zoned(time)?;
        let previous = self.cron.find_previous_occurrence(&start, true).ok()?;
        let previous = SystemTime::from(previous.with_timezone(&Utc));
        (previous <= time).then_some(previous)
    }

    /// Whether `time` (to the second) is a time the expression's fields match, on the zone's
    /// wall clock. Every tick matches but one kind: a fixed-time tick carried past a
    /// spring-forward gap (02:30 run at 03:00), whose wall-clock time never happened.
    pub fn matches(&self, time: SystemTime) -> bool {
        self.zoned(time)
            .is_some_and(|zoned| self.cron.is_time_matching(&zoned).unwrap_or(false))
    }

    /// `time`, down to the whole second (ticks fall on whole seconds), on the zone's wall
    /// clock; `None` before 1970 or past chrono's range.
    fn zoned(&self, time: SystemTime) -> Option<DateTime<Tz>> {
        let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        let seconds = i64::try_from(since.as_secs()).ok()?;
        let utc = DateTime::<Utc>::from_timestamp(seconds, 0)?;
        Some(utc.with_timezone(&self.zone))
    }
}

/// The first field that matches no value at all (croner accepts `,` as a field), if any: such
/// an expression has no tick, and croner would search second by second for thousands of
/// years to say so.
fn empty_field(cron: &Cron) -> Option<&'static str> {
    let pattern = &cron.pattern;
    [
        ("second", &pattern.seconds),
        ("minute", &pattern.minutes),
        ("hour", &pattern.hours),
        ("day-of-month", &pattern.days),
        ("month", &pattern.months),
        ("day-of-week", &pattern.days_of_week),
        ("year", &pattern.years),
    ]
    .into_iter()
    .find(|(_, component)| component.values().is_empty() && !component.has_modifiers())
    .map(|(field, _)| field)
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone.name())
    }
}
