//! Moving a file region ([`FileRegion`], from [`Dispatcher::poll_transmit_file`]) to a socket:
//! `sendfile(2)` on Linux, from the page cache to the socket without a user-space copy; a
//! bounded read/write copy through a reused buffer elsewhere (and for streams that are not
//! sockets).
//!
//! Each call checks the file's identity first ([`FileRegion::check_unchanged`]): a file changed
//! in place while it is sent fails the call, and the driver cuts the response short
//! ([`Dispatcher::file_failed`]), so the client sees fewer bytes than the Content-Length
//! promised instead of a body mixing two versions under the old validators.
//!
//! On an event loop thread, `sendfile` of a file in the page cache costs what a `write` of
//! the same bytes does; a cold file makes the call wait for the disk (briefly: one call sends
//! at most what the socket buffer takes). That is what nginx does without `aio threads`.
//!
//! While a file response goes out its socket is corked ([`Cork`], nginx's `tcp_nopush`): the
//! head leaves in one packet with the file's first bytes, which halves what a loopback client
//! spends receiving a 1 MiB file (`benches/README.md`, static files).
//!
//! [`Dispatcher::poll_transmit_file`]: crate::Dispatcher::poll_transmit_file
//! [`Dispatcher::file_failed`]: crate::Dispatcher::file_failed

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use weft_service::file::FileRegion;

/// Most bytes one call moves: a blocking socket would otherwise hold the thread for the
/// whole file in one call, and a stalled peer is noticed only between calls.
pub const TRANSMIT_MAX: usize = 1024 * 1024;

/// Size of the buffer the copy fallback reads into (one per thread, reused).
const COPY_BUFFER: usize = 64 * 1024;

/// Bytes of file regions every driver in this process moved with [`transmit`] or [`copy`].
static TRANSMITTED: AtomicU64 = AtomicU64::new(0);

/// Bytes of file regions moved straight to sockets by this process's drivers so far (never
/// through a polled body): how tests and metrics tell that path was taken.
pub fn bytes_transmitted() -> u64 {
    TRANSMITTED.load(Ordering::Relaxed)
}

fn count(sent: usize) -> usize {
    TRANSMITTED.fetch_add(sent as u64, Ordering::Relaxed);
    sent
}

/// Whether a socket is corked (`TCP_CORK`) while a response's head and its file body go out:
/// the head then shares its packet with the first bytes of the file instead of going out
/// alone, and only full segments leave until the cork is cleared after the last `sendfile`
/// (what nginx's `tcp_nopush` does). One per connection, owned by its driver, which calls
/// [`Cork::sync`] before it writes output and after it sent file bytes.
#[derive(Debug, Default)]
pub struct Cork {
    /// The cork is set on the socket now.
    on: bool,
}

impl Cork {
    /// The change to make so that the socket is corked exactly while `file_follows`
    /// ([`Dispatcher::file_pending`](crate::Dispatcher::file_pending)): `Some(on)` to set,
    /// `None` when it already is. Kept apart from the system call so the bookkeeping is tested.
    pub fn change(&mut self, file_follows: bool) -> Option<bool> {
        if self.on == file_follows {
            return None;
        }
        self.on = file_follows;
        Some(file_follows)
    }

    /// Corks `socket` when a file body follows the output, uncorks it once none does (sent,
    /// failed or dropped), so nothing waits in the kernel for the cork's 200 ms timeout. A
    /// socket that refuses the option (not TCP) is left as it is: corking only saves packets.
    #[cfg(target_os = "linux")]
    pub fn sync<S: std::os::fd::AsFd>(&mut self, socket: &S, file_follows: bool) {
        if let Some(on) = self.change(file_follows) {
            if let Err(error) = rustix::net::sockopt::set_tcp_cork(socket, on) {
                tracing::trace!(%error, on, "TCP_CORK not changed");
            }
        }
    }

    /// Does nothing where `TCP_CORK` does not exist.
    #[cfg(not(target_os = "linux"))]
    pub fn sync<S>(&mut self, _socket: &S, _file_follows: bool) {}
}

/// Sends the next bytes of `region` (at most [`TRANSMIT_MAX`]) to `socket` without advancing
/// the region, and returns how many went out: `sendfile(2)`. A non-blocking socket that takes
/// nothing answers [`io::ErrorKind::WouldBlock`]: wait until it is writable, then call again.
/// A file changed since the region was made, or shorter than it, is an error.
#[cfg(target_os = "linux")]
pub fn transmit<S>(socket: &mut S, region: &FileRegion) -> io::Result<usize>
where
    S: std::os::fd::AsFd + Write,
{
    region.check_unchanged()?;
    let want = usize::try_from(region.len()).map_or(TRANSMIT_MAX, |len| len.min(TRANSMIT_MAX));
    if want == 0 {
        return Ok(0);
    }
    loop {
        let mut offset = region.offset();
        match rustix::fs::sendfile(&*socket, &**region.file(), Some(&mut offset), want) {
            // The file ended before the region did: it shrank since the check.
            Ok(0) => return Err(weft_service::file::FileError::Shrank.into()),
            Ok(sent) => return Ok(count(sent)),
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Sends the next bytes of `region` to `socket` without advancing the region: a read/write
/// copy, where `sendfile(2)` is not available. See the Linux version for the contract.
#[cfg(not(target_os = "linux"))]
pub fn transmit<S: Write>(socket: &mut S, region: &FileRegion) -> io::Result<usize> {
    copy(socket, region)
}

/// Sends the next bytes of `region` (at most 64 KiB) to `writer` without advancing the
/// region: a positional read into a buffer reused by the thread, then one `write`. Bytes read
/// but not accepted by the writer are read again next time. For any `Write` (the portable
/// fallback of [`transmit`]).
pub fn copy<W: Write + ?Sized>(writer: &mut W, region: &FileRegion) -> io::Result<usize> {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        // A reentrant call (a writer that sends a file itself) gets a buffer of its own.
        let mut own = Vec::new();
        let mut borrowed = buffer.try_borrow_mut();
        let buffer = match &mut borrowed {
            Ok(buffer) => &mut **buffer,
            Err(_) => &mut own,
        };
        buffer.resize(COPY_BUFFER, 0);
        let read = region.read_into(buffer)?;
        if read == 0 {
            return Ok(0);
        }
        loop {
            match writer.write(&buffer[..read]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => return Ok(count(sent)),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use super::*;

    fn temp_region(name: &str, content: &[u8]) -> (std::path::PathBuf, FileRegion) {
        let path =
            std::env::temp_dir().join(format!("weft-adapters-{name}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let region = FileRegion::new(file, 0, content.len() as u64).unwrap();
        (path, region)
    }

    /// Sends the whole region with `send` to a connected socket and returns what arrived.
    fn send_all(
        region: &mut FileRegion,
        send: fn(&mut TcpStream, &FileRegion) -> io::Result<usize>,
    ) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let expected = region.len() as usize;
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            client.read_to_end(&mut received).unwrap();
            received
        });
        while !region.is_empty() {
            let sent = send(&mut server, region).unwrap();
            assert!(sent > 0 && sent <= TRANSMIT_MAX);
            region.advance(sent as u64);
        }
        drop(server);
        let received = reader.join().unwrap();
        assert_eq!(received.len(), expected);
        received
    }

    #[test]
    fn transmit_and_copy_send_the_region_and_count_it() {
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let (path, region) = temp_region("transmit", &content);
        let before = bytes_transmitted();
        assert_eq!(send_all(&mut region.clone(), transmit), content);
        assert_eq!(send_all(&mut region.clone(), copy), content);
        assert!(bytes_transmitted() - before >= 2 * content.len() as u64);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_cork_is_set_once_and_cleared_once_the_file_is_gone() {
        let mut cork = Cork::default();
        assert_eq!(cork.change(false), None, "no file: never corked");
        assert_eq!(
            cork.change(true),
            Some(true),
            "head of a file response: cork"
        );
        assert_eq!(cork.change(true), None, "still sending: no second call");
        assert_eq!(
            cork.change(false),
            Some(false),
            "file sent or failed: uncork"
        );
        assert_eq!(cork.change(false), None);
        assert_eq!(
            cork.change(true),
            Some(true),
            "the next file response corks again"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sync_sets_and_clears_tcp_cork_on_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let corked = || rustix::net::sockopt::tcp_cork(&server).unwrap();
        let mut cork = Cork::default();
        cork.sync(&server, true);
        assert!(corked());
        cork.sync(&server, false);
        assert!(!corked());
    }

    #[test]
    fn a_changed_file_fails_the_next_call() {
        let (path, region) = temp_region("changed", b"0123456789");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let mut sink = Vec::new();
        assert!(copy(&mut sink, &region).is_err());
        assert!(sink.is_empty(), "nothing of the new version went out");
        std::fs::remove_file(path).unwrap();
    }
}
