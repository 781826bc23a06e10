//! When a job's ticks fall, and what to do when the scheduler wakes: the scheduler's sans-IO
//! core. It never reads a clock nor sleeps: the scheduler's loop gives it `now` and does what
//! it answers ([`Timing::poll`]), so every rule about late wake-ups and clock jumps is here.
//!
//! The rules are documented in the [module](super#missed-ticks-and-clock-jumps).

use std::time::{Duration, SystemTime};

use super::cron::CronSchedule;
use super::job::{Interval, Missed};

/// Most ticks counted as missed in one wake-up (a per-second job after a year's jump).
const MAX_COUNTED: u64 = 10_000;

/// What makes a job's ticks.
#[derive(Debug, Clone)]
pub(crate) enum Trigger {
    /// The ticks of a cron expression.
    Cron(Box<CronSchedule>),
    /// One tick, this long after the job is started.
    Once(Duration),
    /// Ticks every period (at a fixed rate, or a fixed delay after each run ends).
    Every(Interval),
}

/// What the loop does after [`Timing::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nothing is due: sleep this long (at most), then poll again.
    Sleep(Duration),
    /// Ticks came: see [`Due`].
    Due(Due),
    /// No tick will ever come again (a one-shot ran, a date that never comes, a fixed-delay
    /// job waiting for its run to end).
    Idle,
}

/// The ticks found due at one wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    /// The latest due tick: the one that runs, if any does.
    pub(crate) tick: SystemTime,
    /// Whether it runs (on time, or a catch-up the policy allows).
    pub(crate) run: bool,
    /// How many due ticks do not run (capped at [`MAX_COUNTED`]).
    pub(crate) missed: u64,
}

/// A job's ticks: the next one, the last one handled, and the policy for late ones.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    trigger: Trigger,
    missed: Missed,
    tolerance: Duration,
    next: Option<SystemTime>,
    last_tick: Option<SystemTime>,
    /// A one-shot fired: it never ticks again, even if started again.
    spent: bool,
}

impl Timing {
    pub(crate) fn new(trigger: Trigger, missed: Missed, tolerance: Duration) -> Self {
        Timing {
            trigger,
            missed,
            tolerance,
            next: None,
            last_tick: None,
            spent: false,
        }
    }

    /// The next tick, if one is planned.
    pub(crate) fn next(&self) -> Option<SystemTime> {
        self.next
    }

    /// The job's tick description, for its status.
    pub(crate) fn describe(&self) -> String {
        match &self.trigger {
            Trigger::Cron(schedule) => schedule.to_string(),
            Trigger::Once(after) => format!("once, after {after:?}"),
            Trigger::Every(Interval::FixedRate(period)) => format!("every {period:?}"),
            Trigger::Every(Interval::FixedDelay(period)) => {
                format!("{period:?} after each run")
            }
        }
    }

    /// Whether this job's ticks are wall-clock times shared by every instance (cron ticks),
    /// so a [lease](super::lease::TickLease) decides which instance runs each.
    pub(crate) fn is_cron(&self) -> bool {
        matches!(self.trigger, Trigger::Cron(_))
    }

    /// Whether the job waits for each run to end before planning the next (fixed delay).
    pub(crate) fn waits_for_runs(&self) -> bool {
        matches!(self.trigger, Trigger::Every(Interval::FixedDelay(_)))
    }

    /// The job (re)starts at `now`: plans its first tick.
    pub(crate) fn start(&mut self, now: SystemTime) {
        self.next = match &self.trigger {
            Trigger::Cron(schedule) => schedule.next_after(self.after_last(now)),
            Trigger::Once(_) if self.spent => None,
            Trigger::Once(after) => now.checked_add(*after),
            Trigger::Every(interval) => now.checked_add(interval.period()),
        };
    }

    /// A run of a fixed-delay job ended at `now`: the next tick is one period later.
    pub(crate) fn run_ended(&mut self, now: SystemTime) {
        if let Trigger::Every(Interval::FixedDelay(period)) = &self.trigger {
            self.next = now.checked_add(*period);
        }
    }

    /// The loop woke at `now`: what is due, and the next tick planned after it.
    pub(crate) fn poll(&mut self, now: SystemTime) -> Wake {
        let Some(next) = self.next else {
            return Wake::Idle;
        };
        if now < next {
            self.rebase_interval(now, next);
            return Wake::Sleep(self.next.map_or(Duration::ZERO, |next| {
                next.duration_since(now).unwrap_or(Duration::ZERO)
            }));
        }
        let (tick, due) = self.latest_due(next, now);
        let late = now.duration_since(tick).unwrap_or(Duration::ZERO) > self.tolerance;
        let run =
            !late || self.missed == Missed::RunOnce || matches!(self.trigger, Trigger::Once(_));
        self.last_tick = Some(tick);
        self.next = match &self.trigger {
            Trigger::Cron(schedule) => schedule.next_after(now.max(tick)),
            Trigger::Once(_) => {
                self.spent = true;
                None
            }
            Trigger::Every(Interval::FixedRate(period)) => tick.checked_add(*period),
            // Planned when the run ends; a skipped tick plans from now.
            Trigger::Every(Interval::FixedDelay(period)) if !run => now.checked_add(*period),
            Trigger::Every(Interval::FixedDelay(_)) => None,
        };
        Wake::Due(Due {
            tick,
            run,
            missed: due - u64::from(run),
        })
    }

    /// The latest due tick at `now`, the first being `next`, and how many are due.
    fn latest_due(&self, next: SystemTime, now: SystemTime) -> (SystemTime, u64) {
        match &self.trigger {
            Trigger::Cron(schedule) => {
                let last = schedule
                    .last_at_or_before(now)
                    .filter(|last| *last >= next)
                    .unwrap_or(next);
                let mut count = 1;
                let mut tick = next;
                while count < MAX_COUNTED {
                    match schedule.next_after(tick) {
                        Some(later) if later <= last => {
                            tick = later;
                            count += 1;
                        }
                        _ => break,
                    }
                }
                (last, count)
            }
            Trigger::Every(Interval::FixedRate(period)) if !period.is_zero() => {
                let behind = now.duration_since(next).unwrap_or(Duration::ZERO);
                let periods = behind.as_nanos() / period.as_nanos();
                let step = u32::try_from(periods).unwrap_or(u32::MAX);
                let tick = period
                    .checked_mul(step)
                    .and_then(|offset| next.checked_add(offset))
                    .filter(|tick| *tick <= now)
                    .unwrap_or(next);
                let count = u64::try_from(periods.saturating_add(1)).unwrap_or(u64::MAX);
                (tick, count.min(MAX_COUNTED))
            }
            _ => (next, 1),
        }
    }

    /// A cron search starts after the last tick handled, so a clock that went back does not
    /// find that tick (or earlier ones) again.
    fn after_last(&self, now: SystemTime) -> SystemTime {
        self.last_tick.map_or(now, |last| now.max(last))
    }

    /// An interval's next tick more than a period away means the wall clock went back: the
    /// period starts again from `now`.
    fn rebase_interval(&mut self, now: SystemTime, next: SystemTime) {
        let period = match &self.trigger {
            Trigger::Every(interval) => interval.period(),
            Trigger::Once(after) => *after,
            Trigger::Cron(_) => return,
        };
        if next.duration_since(now).is_ok_and(|wait| wait > period) {
            self.next = now.checked_add(period);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(seconds: u64) -> SystemTime {
        // 2026-06-10 12:00:00 UTC, plus `seconds`.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_781_092_800 + seconds)
    }

    fn hourly(missed: Missed) -> Timing {
        let schedule = CronSchedule::parse("0 * * * *").unwrap();
        Timing::new(Trigger::Cron(Box::new(schedule)), missed, MINUTE)
    }

    fn due(tick: SystemTime, run: bool, missed: u64) -> Wake {
        Wake::Due(Due { tick, run, missed })
    }

    #[test]
    fn an_on_time_tick_runs_and_plans_the_next() {
        let mut timing = hourly(Missed::Skip);
        timing.start(at(0));
        assert_eq!(timing.next(), Some(at(3600)));
        assert_eq!(
            timing.poll(at(1800)),
            Wake::Sleep(Duration::from_secs(1800))
        );
        assert_eq!(timing.poll(at(3601)), due(at(3600), true, 0));
        assert_eq!(timing.next(), Some(at(7200)));
    }

    #[test]
    fn a_jump_forward_misses_every_tick_but_may_catch_up_once() {
        let mut skip = hourly(Missed::Skip);
        skip.start(at(0));
        assert_eq!(skip.poll(at(5 * 3600 + 90)), due(at(5 * 3600), false, 5));
        assert_eq!(skip.next(), Some(at(6 * 3600)));

        let mut once = hourly(Missed::RunOnce);
        once.start(at(0));
        assert_eq!(once.poll(at(5 * 3600 + 90)), due(at(5 * 3600), true, 4));
        // Within the tolerance, the latest tick runs whatever the policy.
        let mut late = hourly(Missed::Skip);
        late.start(at(0));
        assert_eq!(late.poll(at(2 * 3600 + 30)), due(at(2 * 3600), true, 1));
    }

    #[test]
    fn a_jump_back_never_finds_a_handled_tick_again() {
        let mut timing = hourly(Missed::Skip);
        timing.start(at(0));
        assert_eq!(timing.poll(at(3600)), due(at(3600), true, 0));
        // Back two hours: sleep until the tick after the last one handled.
        assert!(matches!(timing.poll(at(0)), Wake::Sleep(_)));
        assert_eq!(timing.next(), Some(at(7200)));
        // Restarted while the clock is behind: still after the last tick.
        timing.start(at(10));
        assert_eq!(timing.next(), Some(at(7200)));
    }

    #[test]
    fn a_fixed_rate_counts_the_periods_it_missed() {
        let every = Trigger::Every(Interval::FixedRate(Duration::from_secs(10)));
        let mut timing = Timing::new(every, Missed::Skip, Duration::from_secs(1));
        timing.start(at(0));
        assert_eq!(timing.poll(at(10)), due(at(10), true, 0));
        assert_eq!(timing.poll(at(65)), due(at(60), false, 5)); // 20 to 60
        assert_eq!(timing.next(), Some(at(70)));
    }

    #[test]
    fn an_interval_starts_its_period_again_after_a_jump_back() {
        let every = Trigger::Every(Interval::FixedRate(Duration::from_secs(10)));
        let mut timing = Timing::new(every, Missed::Skip, MINUTE);
        timing.start(at(3600));
        assert_eq!(timing.poll(at(0)), Wake::Sleep(Duration::from_secs(10)));
        assert_eq!(timing.next(), Some(at(10)));
    }

    #[test]
    fn a_one_shot_runs_once_even_late_and_a_fixed_delay_waits_for_its_run() {
        let mut once = Timing::new(Trigger::Once(MINUTE), Missed::Skip, MINUTE);
        once.start(at(0));
        assert_eq!(once.poll(at(3600)), due(at(60), true, 0));
        assert_eq!(once.poll(at(7200)), Wake::Idle);
        once.start(at(7200));
        assert_eq!(once.poll(at(9000)), Wake::Idle);

        let delay = Trigger::Every(Interval::FixedDelay(Duration::from_secs(10)));
        let mut timing = Timing::new(delay, Missed::Skip, MINUTE);
        timing.start(at(0));
        assert_eq!(timing.poll(at(10)), due(at(10), true, 0));
        assert_eq!(timing.poll(at(30)), Wake::Idle);
        timing.run_ended(at(30));
        assert_eq!(timing.next(), Some(at(40)));
    }
}

/// Properties of the timing core under any sequence of wake-ups: clock moves forward by
/// small or large steps, and jumps back.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_781_092_800 + seconds)
    }

    /// Cron expressions with seconds, so that a few hundred steps cross many ticks.
    fn expressions() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u32..30).prop_map(|step| format!("*/{step} * * * * *")),
            (0u32..60).prop_map(|second| format!("{second} * * * * *")),
            (0u32..60, 1u32..10).prop_map(|(second, step)| format!("{second} */{step} * * * *")),
        ]
    }

    /// A wake-up: how far the clock moved since the last one (negative: it went back).
    fn moves() -> impl Strategy<Value = i64> {
        prop_oneof![
            8 => 0i64..90,             // a timely wake-up
            1 => 90i64..20_000,        // a stall or a jump forward
            1 => -20_000i64..0,        // a jump back
        ]
    }

    fn moved(now: SystemTime, by: i64) -> SystemTime {
        if by >= 0 {
            now + Duration::from_secs(by.unsigned_abs())
        } else {
            now - Duration::from_secs(by.unsigned_abs())
        }
    }

    /// Polls `timing` at each time; the ticks that ran, and how many were counted missed.
    fn run_ticks(timing: &mut Timing, times: &[SystemTime]) -> (Vec<SystemTime>, u64) {
        let mut ran = Vec::new();
        let mut missed = 0;
        for &now in times {
            if let Wake::Due(due) = timing.poll(now) {
                assert!(due.tick <= now, "a tick ran before its time");
                missed += due.missed;
                if due.run {
                    ran.push(due.tick);
                }
            }
        }
        (ran, missed)
    }

    proptest! {
        /// Whatever the clock does, a cron tick never runs twice (ticks that run strictly
        /// increase), and every tick that runs is one of the expression's.
        #[test]
        fn a_cron_tick_never_runs_twice(
            expression in expressions(),
            catch_up in any::<bool>(),
            steps in proptest::collection::vec(moves(), 1..200),
        ) {
            let schedule = CronSchedule::parse(&expression).unwrap();
            let missed = if catch_up { Missed::RunOnce } else { Missed::Skip };
            let mut timing =
                Timing::new(Trigger::Cron(Box::new(schedule.clone())), missed, Duration::from_secs(60));
            timing.start(at(0));
            let mut now = at(0);
            let times: Vec<SystemTime> = steps
                .iter()
                .map(|by| {
                    now = moved(now, *by);
                    now
                })
                .collect();
            let (ran, _) = run_ticks(&mut timing, &times);
            for pair in ran.windows(2) {
                prop_assert!(pair[0] < pair[1], "tick {:?} ran again or out of order", pair[1]);
            }
            for tick in &ran {
                prop_assert!(schedule.matches(*tick), "{tick:?} is not a tick of {expression}");
            }
        }

        /// With timely wake-ups only (the clock moving forward by less than the tolerance),
        /// every tick of the expression up to the last wake-up is accounted for: each wake-up
        /// with ticks due runs the latest of them (it is on time) and counts the others as
        /// missed, so ran + missed is every tick, and the last tick ran.
        #[test]
        fn timely_wake_ups_miss_no_tick(
            expression in expressions(),
            steps in proptest::collection::vec(0u64..60, 1..300),
        ) {
            let schedule = CronSchedule::parse(&expression).unwrap();
            let mut timing =
                Timing::new(Trigger::Cron(Box::new(schedule.clone())), Missed::Skip, Duration::from_secs(60));
            timing.start(at(0));
            let mut now = at(0);
            let times: Vec<SystemTime> = steps
                .iter()
                .map(|by| {
                    now += Duration::from_secs(*by);
                    now
                })
                .collect();
            let (ran, missed) = run_ticks(&mut timing, &times);
            let mut expected = Vec::new();
            let mut tick = schedule.next_after(at(0));
            while let Some(t) = tick.filter(|t| *t <= now) {
                expected.push(t);
                tick = schedule.next_after(t);
            }
            prop_assert_eq!(ran.len() as u64 + missed, expected.len() as u64);
            prop_assert!(ran.iter().all(|tick| expected.contains(tick)));
            prop_assert_eq!(ran.last(), expected.last());
        }
    }
}
