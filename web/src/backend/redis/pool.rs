//! The connections a [`RedisBackend`](super::RedisBackend) keeps open between calls: opening
//! one per call costs a TCP handshake, which would dominate every queue operation.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, RedisError, RedisResult};

/// How long opening a connection may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one command may wait for the server: no script of this backend blocks, so only a
/// hung or unreachable server gets near this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections kept; more are opened when more calls run at once, and closed after.
const MAX_IDLE: usize = 32;

/// A client and the idle connections opened from it.
pub(super) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// A pool that opens connections from `client` when first needed.
    pub(super) fn new(client: Client) -> Self {
        Pool {
            client,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `call` on an idle connection, or a new one. A connection that failed at the
    /// transport level is dropped, so the next call opens a fresh one (this is how the
    /// backend reconnects after the server restarts). The call itself is not retried: the
    /// server may have run it, and running it twice would answer wrongly.
    pub(super) fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut connection = match self.take_idle() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = call(&mut connection);
        match &result {
            Err(error) if is_broken(error) => {}
            _ => self.put_back(connection),
        }
        result
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn open(&self) -> RedisResult<Connection> {
        let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(IO_TIMEOUT))?;
        connection.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(connection)
    }
}

/// Whether the connection can no longer be trusted: after an I/O error or a timeout, the
/// stream may hold half a reply.
fn is_broken(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}
