//! How job records are written into a Redis hash and read back: the field values the Lua
//! scripts pass around, each a byte string.

use crate::backend::StoreError;
use crate::queue::store::{Backoff, JobRecord, JobState, Priority, Progress};

/// A job's fields as a script returns them (`job_fields` in `common.lua`): the id, then the
/// hash's fields in this order, each `None` when the hash lacks it.
pub(super) type Fields = Vec<Option<Vec<u8>>>;

/// The hash fields after the id, in the order of `FIELDS` in `common.lua`.
const NAMES: [&str; 13] = [
    "queue",
    "name",
    "data",
    "priority",
    "state",
    "run_at",
    "created_at",
    "attempts",
    "max_attempts",
    "backoff",
    "progress_percent",
    "progress_message",
    "last_error",
];

/// The stored form of a priority: its rank, which is also the suffix of its waiting set.
pub(super) fn priority_rank(priority: Priority) -> u8 {
    priority as u8
}

/// The stored form of a backoff policy.
pub(super) fn backoff_json(backoff: &Backoff) -> String {
    // Backoff is plain data: serializing it cannot fail.
    serde_json::to_string(backoff).unwrap_or_default()
}

/// Reads a job record from its fields.
pub(super) fn decode(fields: Fields) -> Result<JobRecord, StoreError> {
    let [
        id,
        queue,
        name,
        data,
        priority,
        state,
        run_at,
        created_at,
        attempts,
        max_attempts,
        backoff,
        percent,
        message,
        last_error,
    ]: [Option<Vec<u8>>; 14] = fields
        .try_into()
        .map_err(|fields: Fields| corrupt(format!("{} fields, not 14", fields.len())))?;
    let id = text("id", id)?;
    let field = |index: usize, value: Option<Vec<u8>>| {
        value.ok_or_else(|| corrupt(format!("job {id}: no field {}", NAMES[index])))
    };
    let progress = match (percent, message) {
        (Some(percent), message) => Some(Progress {
            percent: number("progress_percent", Some(percent))?,
            message: text("progress_message", message)?,
        }),
        (None, _) => None,
    };
    Ok(JobRecord {
        queue: text("queue", Some(field(0, queue)?))?,
        name: text("name", Some(field(1, name)?))?,
        data: field(2, data)?,
        priority: priority_of(number("priority", priority)?)?,
        state: state_of(&field(4, state)?)?,
        run_at: number("run_at", run_at)?,
        created_at: number("created_at", created_at)?,
        attempts: number("attempts", attempts)?,
        max_attempts: number("max_attempts", max_attempts)?,
        backoff: serde_json::from_slice(&field(9, backoff)?)
            .map_err(|error| corrupt(format!("job {id}: backoff: {error}")))?,
        progress,
        last_error: last_error
            .map(|bytes| text("last_error", Some(bytes)))
            .transpose()?,
        id,
    })
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

/// A UTF-8 field (an absent one reads as empty: only optional fields may be absent here,
/// the required ones are checked before).
fn text(name: &str, value: Option<Vec<u8>>) -> Result<String, StoreError> {
    String::from_utf8(value.unwrap_or_default())
        .map_err(|_| corrupt(format!("field {name} is not UTF-8")))
}

/// A decimal field.
fn number<T: std::str::FromStr>(name: &str, value: Option<Vec<u8>>) -> Result<T, StoreError> {
    let value = value.ok_or_else(|| corrupt(format!("no field {name}")))?;
    std::str::from_utf8(&value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| corrupt(format!("field {name} is not a number")))
}

fn priority_of(rank: u8) -> Result<Priority, StoreError> {
    match rank {
        0 => Ok(Priority::Urgent),
        1 => Ok(Priority::Normal),
        2 => Ok(Priority::Low),
        other => Err(corrupt(format!("priority {other}"))),
    }
}

/// Reads a state by the name the scripts store and return.
pub(super) fn state_of(name: &[u8]) -> Result<JobState, StoreError> {
    match name {
        b"waiting" => Ok(JobState::Waiting),
        b"active" => Ok(JobState::Active),
        b"dead" => Ok(JobState::Dead),
        other => Err(corrupt(format!("state {}", String::from_utf8_lossy(other)))),
    }
}
