//! A bounded, thread-safe cache of static files' compressed forms, for serving text files
//! compressed on the fly (`weft serve`) without compressing them again on every request.
//!
//! An entry is keyed by the file's path and the [`Coding`], and remembers the
//! [`FileIdentity`] (path, size, modification time) it was made from: a file that changed is
//! a miss, and its new form replaces the old. The cache holds at most
//! [`CacheLimits::max_bytes`] (64 MiB by default), evicting the least recently used entries;
//! only files of a compressible type ([`is_compressible`]) between
//! [`CacheLimits::min_file_size`] and [`CacheLimits::max_file_size`] (1 MiB by default) are
//! compressed, so memory stays bounded whatever the requests.
//!
//! [`CachedCompression`] is the middleware that puts it in front of
//! [`StaticFiles`](crate::static_files::StaticFiles) (what `weft serve` does): each version of
//! a compressible file is compressed once, then answered from the cache.
//!
//! Compressing runs on the runtime's blocking pool (in place when there is no runtime).
//! Requests for an entry being compressed wait for that one compression instead of starting
//! their own, and at most [`CacheLimits::max_pending`] compressions run at once: beyond that
//! a request gets `None` and serves the file uncompressed.
//!
//! ```no_run
//! use weft::compressed_cache::{CompressedCache, FileIdentity};
//! use weft::compression::Coding;
//!
//! # async fn serve(cache: &CompressedCache) -> std::io::Result<()> {
//! let path = std::path::Path::new("public/app.js");
//! let identity = FileIdentity::from_metadata(path, &std::fs::metadata(path)?);
//! match cache.get_or_compress(&identity, "text/javascript", Coding::Brotli).await {
//!     Some(compressed) => { /* send with Content-Encoding: br */ }
//!     None => { /* send the file as it is */ }
//! }
//! # Ok(()) }
//! ```

mod middleware;

pub use middleware::CachedCompression;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use bytes::Bytes;
use weft_service::runtime::spawn_blocking_or_inline;

use crate::compression::{Coding, compress_all};

/// What an entry costs beyond its bytes (key, bookkeeping), so that even entries of a few
/// bytes (or none: a file not worth compressing) count against the bound.
const ENTRY_OVERHEAD: usize = 64;

/// The version of a file a compressed form was made from: a change of size or modification
/// time makes a cached form stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileIdentity {
    /// A file at `path` of `len` bytes, last modified at `modified` (`None` where the
    /// platform does not say: then only the size tells versions apart).
    pub fn new(path: impl Into<PathBuf>, len: u64, modified: Option<SystemTime>) -> Self {
        FileIdentity {
            path: path.into(),
            len,
            modified,
        }
    }

    /// The identity of the file at `path` from its metadata (`std::fs::metadata`, or that of
    /// a file already opened).
    pub fn from_metadata(path: impl Into<PathBuf>, metadata: &std::fs::Metadata) -> Self {
        FileIdentity::new(path, metadata.len(), metadata.modified().ok())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The bounds and levels of a [`CompressedCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most bytes held, compressed bytes plus a small overhead per entry (64 MiB).
    pub max_bytes: usize,
    /// Larger files are not compressed here (1 MiB): they would crowd out the many small
    /// text files a site is made of; precompress them (`.br`, `.gz` next to the file).
    pub max_file_size: u64,
    /// Smaller files are not compressed (860 bytes, as the compression middleware): below
    /// about a packet the saving is not worth it.
    pub min_file_size: u64,
    /// Most compressions running at once (16); each holds a file and its compressed form.
    pub max_pending: usize,
    /// Brotli's quality, 0 to 11 (9: compressed once, served many times).
    pub brotli_quality: u32,
    /// gzip and deflate's level, 0 to 9 (9).
    pub flate_level: u32,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_bytes: 64 * 1024 * 1024,
            max_file_size: 1024 * 1024,
            min_file_size: 860,
            max_pending: 16,
            brotli_quality: 9,
            flate_level: 9,
        }
    }
}

/// Whether a static file of this content type is worth compressing: text (but event
/// streams), JavaScript, JSON, XML and their `+json` / `+xml` kinds (SVG, RSS, Atom,
/// web manifests), WebAssembly, and uncompressed fonts and icons.
///
/// An allow list, unlike [`compression::is_compressible`](crate::compression::is_compressible)
/// (the middleware's, which compresses whatever a handler produces unless known to be
/// compressed): a file on disk of an unknown type, `application/octet-stream`, is as likely
/// an archive as anything, and compressing it would spend CPU and cache for nothing.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = crate::compression::media_essence(content_type);
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    if subtype.ends_with("+json") || subtype.ends_with("+xml") {
        return true;
    }
    match kind {
        "text" => subtype != "event-stream",
        "application" => matches!(
            subtype,
            "javascript"
                | "x-javascript"
                | "ecmascript"
                | "json"
                | "ld+json"
                | "xml"
                | "wasm"
                | "yaml"
                | "toml"
                | "vnd.ms-fontobject"
                | "x-font-ttf"
                | "x-font-otf"
        ),
        "font" => matches!(subtype, "ttf" | "otf" | "collection"),
        "image" => matches!(subtype, "x-icon" | "vnd.microsoft.icon" | "bmp"),
        _ => false,
    }
}

/// The bounded cache of compressed files: see the [module documentation](self). Cloning
/// shares it.
#[derive(Debug, Clone, Default)]
pub struct CompressedCache {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    limits: CacheLimits,
    state: Mutex<State>,
}

/// An entry's key: one compressed form per file and coding.
type Key = (PathBuf, Coding);

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Entries by last use (a tick), the least recent first.
    recency: BTreeMap<u64, Key>,
    tick: u64,
    /// What the entries cost, at most `max_bytes`.
    bytes: usize,
    /// Compressions running, each with the requests waiting for it.
    pending: HashMap<Key, Arc<Slot>>,
}

#[derive(Debug)]
struct Entry {
    identity: FileIdentity,
    /// `None`: compressing did not make the file smaller, so it is served as it is.
    compressed: Option<Bytes>,
    cost: usize,
    tick: u64,
}

impl CompressedCache {
    /// A cache with the default [`CacheLimits`].
    pub fn new() -> Self {
        CompressedCache::default()
    }

    /// A cache with these limits.
    pub fn with_limits(limits: CacheLimits) -> Self {
        CompressedCache {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::default(),
            }),
        }
    }

    /// The cache's limits.
    pub fn limits(&self) -> &CacheLimits {
        &self.shared.limits
    }

    /// The cached compressed form of this version of the file, if any (`None` too when the
    /// file is cached as not worth compressing).
    pub fn get(&self, identity: &FileIdentity, coding: Coding) -> Option<Bytes> {
        match self.shared.lookup(identity, coding) {
            Lookup::Hit(compressed) => compressed,
            Lookup::Miss => None,
        }
    }

    /// The compressed form of the file `identity` names, reading it from its path: see
    /// [`get_or_compress_with`](Self::get_or_compress_with).
    pub async fn get_or_compress(
        &self,
        identity: &FileIdentity,
        content_type: &str,
        coding: Coding,
    ) -> Option<Bytes> {
        let path = identity.path.clone();
        let max = self.shared.limits.max_file_size;
        self.get_or_compress_with(identity, content_type, coding, move || {
            read_at_most(&path, max)
        })
        .await
    }

    /// The compressed form of a file, from the cache or compressed now: `load` reads the
    /// file's bytes (on the blocking pool, with the compression) when it is not cached.
    ///
    /// `None` means "serve the file as it is": a type not worth compressing, a size outside
    /// the limits, a file whose compressed form is not smaller, a file that changed while
    /// read (its length is not `identity`'s) or could not be read (logged at debug), or too
    /// many compressions running already.
    pub async fn get_or_compress_with<F>(
        &self,
        identity: &FileIdentity,
        content_type: &str,
        coding: Coding,
        load: F,
    ) -> Option<Bytes>
    where
        F: FnOnce() -> io::Result<Vec<u8>> + Send + 'static,
    {
        let limits = &self.shared.limits;
        if !is_compressible(content_type)
            || identity.len > limits.max_file_size
            || identity.len < limits.min_file_size
        {
            return None;
        }
        let slot = match self.shared.claim(identity, coding) {
            Claim::Hit(compressed) => return compressed,
            Claim::Busy => return None,
            Claim::Wait(slot) => slot,
            Claim::Compress(slot) => {
                let job = Job {
                    shared: Arc::clone(&self.shared),
                    identity: identity.clone(),
                    coding,
                    slot: Arc::clone(&slot),
                    done: false,
                };
                spawn_blocking_or_inline(move || job.run(load)).await;
                slot
            }
        };
        Wait(slot).await
    }

    /// How many entries the cache holds.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the entries cost against [`CacheLimits::max_bytes`].
    pub fn weighed_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Empties the cache (compressions running still complete, and are cached).
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.entries.clear();
        state.recency.clear();
        state.bytes = 0;
    }
}

/// What a cache lookup found.
enum Lookup {
    Hit(Option<Bytes>),
    Miss,
}

/// What a request for a compressed form is to do.
enum Claim {
    Hit(Option<Bytes>),
    /// Another request is compressing it: wait for that.
    Wait(Arc<Slot>),
    /// Compress it, then publish in the slot.
    Compress(Arc<Slot>),
    /// Too many compressions running, or another version of the file being compressed.
    Busy,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, identity: &FileIdentity, coding: Coding) -> Lookup {
        self.lock()
            .lookup(&(identity.path.clone(), coding), identity)
    }

    fn claim(&self, identity: &FileIdentity, coding: Coding) -> Claim {
        let key = (identity.path.clone(), coding);
        let mut state = self.lock();
        if let Lookup::Hit(compressed) = state.lookup(&key, identity) {
            return Claim::Hit(compressed);
        }
        if let Some(slot) = state.pending.get(&key) {
            return if slot.identity == *identity {
                Claim::Wait(Arc::clone(slot))
            } else {
                Claim::Busy
            };
        }
        if state.pending.len() >= self.limits.max_pending {
            return Claim::Busy;
        }
        let slot = Arc::new(Slot::new(identity.clone()));
        state.pending.insert(key, Arc::clone(&slot));
        Claim::Compress(slot)
    }

    /// Ends the compression of `slot`: caches `compressed` (when `cache`), then wakes the
    /// requests waiting.
    fn publish(&self, coding: Coding, slot: &Arc<Slot>, compressed: Option<Bytes>, cache: bool) {
        let key = (slot.identity.path.clone(), coding);
        {
            let mut state = self.lock();
            if state
                .pending
                .get(&key)
                .is_some_and(|pending| Arc::ptr_eq(pending, slot))
            {
                state.pending.remove(&key);
            }
            if cache {
                state.insert(
                    key,
                    slot.identity.clone(),
                    compressed.clone(),
                    self.limits.max_bytes,
                );
            }
        }
        slot.complete(compressed);
    }
}

impl State {
    /// The entry for `key` if it is of this version of the file (marked as just used). An
    /// entry of another version stays: the asker may be the stale one (metadata read before
    /// a change), and the next compression of the file replaces it anyway.
    fn lookup(&mut self, key: &Key, identity: &FileIdentity) -> Lookup {
        let Some(entry) = self.entries.get(key) else {
            return Lookup::Miss;
        };
        if entry.identity != *identity {
            return Lookup::Miss;
        }
        let old_tick = entry.tick;
        let compressed = entry.compressed.clone();
        let tick = self.next_tick();
        self.recency.remove(&old_tick);
        self.recency.insert(tick, key.clone());
        if let Some(entry) = self.entries.get_mut(key) {
            entry.tick = tick;
        }
        Lookup::Hit(compressed)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.tick);
            self.bytes -= entry.cost;
        }
    }

    /// Adds an entry, evicting the least recently used until the total fits `max_bytes`; an
    /// entry that alone exceeds it is not kept.
    fn insert(
        &mut self,
        key: Key,
        identity: FileIdentity,
        compressed: Option<Bytes>,
        max_bytes: usize,
    ) {
        self.remove(&key);
        let cost =
            compressed.as_ref().map_or(0, Bytes::len) + key.0.as_os_str().len() + ENTRY_OVERHEAD;
        if cost > max_bytes {
            return;
        }
        while self.bytes + cost > max_bytes {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= entry.cost;
            }
        }
        let tick = self.next_tick();
        self.recency.insert(tick, key.clone());
        self.bytes += cost;
        let entry = Entry {
            identity,
            compressed,
            cost,
            tick,
        };
        self.entries.insert(key, entry);
    }
}

/// One compression's result, awaited by every request that wants it.
#[derive(Debug)]
struct Slot {
    identity: FileIdentity,
    state: Mutex<SlotState>,
}

#[derive(Debug)]
enum SlotState {
    Waiting(Vec<Waker>),
    Done(Option<Bytes>),
}

impl Slot {
    fn new(identity: FileIdentity) -> Self {
        Slot {
            identity,
            state: Mutex::new(SlotState::Waiting(Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn complete(&self, compressed: Option<Bytes>) {
        let previous = std::mem::replace(&mut *self.lock(), SlotState::Done(compressed));
        if let SlotState::Waiting(wakers) = previous {
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

/// Waits for a slot's result.
struct Wait(Arc<Slot>);

impl Future for Wait {
    type Output = Option<Bytes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.0.lock();
        match &mut *state {
            SlotState::Done(compressed) => Poll::Ready(compressed.clone()),
            SlotState::Waiting(wakers) => {
                if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// A compression to run; it always publishes a result, even when dropped unrun (a pool
/// shutting down, a panic while reading), so that no request waits for ever.
struct Job {
    shared: Arc<Shared>,
    identity: FileIdentity,
    coding: Coding,
    slot: Arc<Slot>,
    done: bool,
}

impl Job {
    fn run(mut self, load: impl FnOnce() -> io::Result<Vec<u8>>) {
        let (compressed, cache) = self.compress(load);
        self.done = true;
        self.shared
            .publish(self.coding, &self.slot, compressed, cache);
    }

    /// The compressed bytes (`None`: not smaller), and whether the result may be cached.
    fn compress(&self, load: impl FnOnce() -> io::Result<Vec<u8>>) -> (Option<Bytes>, bool) {
        let path = self.identity.path.display();
        let data = match load() {
            Ok(data) if data.len() as u64 == self.identity.len => data,
            Ok(_) => {
                tracing::debug!(%path, "file changed while read: not compressed");
                return (None, false);
            }
            Err(error) => {
                tracing::debug!(%path, %error, "file not read: not compressed");
                return (None, false);
            }
        };
        let limits = &self.shared.limits;
        match compress_all(
            self.coding,
            &data,
            limits.brotli_quality,
            limits.flate_level,
        ) {
            Ok(compressed) if compressed.len() < data.len() => (Some(compressed.into()), true),
            Ok(_) => (None, true),
            Err(error) => {
                tracing::debug!(%path, %error, "compression failed");
                (None, false)
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.done {
            self.shared.publish(self.coding, &self.slot, None, false);
        }
    }
}

/// Reads a whole file, refusing (as a changed file) more than `max` bytes: the size the
/// caller saw may be stale.
fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, UNIX_EPOCH};

    use futures_lite::future::{block_on, poll_once};
    use weft_service::runtime::{
        BlockingWork, BoxFuture, RuntimeHandle, RuntimeServices, ShutdownSignal,
    };

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    fn text(seed: &str) -> Vec<u8> {
        format!("{seed}: the quick brown fox jumps over the lazy dog. ")
            .repeat(100)
            .into_bytes()
    }

    fn identity(path: &str, data: &[u8], modified: u64) -> FileIdentity {
        FileIdentity::new(
            path,
            data.len() as u64,
            Some(UNIX_EPOCH + Duration::from_secs(modified)),
        )
    }

    /// Compresses `data` through `cache` as `path`, counting the loads in `loads`.
    fn fetch(
        cache: &CompressedCache,
        identity: &FileIdentity,
        data: &[u8],
        loads: &Arc<AtomicUsize>,
    ) -> Option<Bytes> {
        let (data, loads) = (data.to_vec(), Arc::clone(loads));
        block_on(
            cache.get_or_compress_with(identity, "text/plain", Coding::Gzip, move || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(data)
            }),
        )
    }

    fn gunzip(compressed: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(compressed)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn compresses_once_then_serves_from_the_cache() {
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let file = identity("/a.txt", &data, 1);
        let first = fetch(&cache, &file, &data, &loads).expect("compressed");
        assert!(first.len() < data.len());
        assert_eq!(gunzip(&first), data);
        let second = fetch(&cache, &file, &data, &loads).expect("cached");
        assert_eq!(first, second);
        assert_eq!(cache.get(&file, Coding::Gzip), Some(first));
        assert_eq!(cache.get(&file, Coding::Brotli), None);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_changed_file_is_a_miss_and_replaces_the_old_form() {
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let old = identity("/a.txt", &data, 1);
        fetch(&cache, &old, &data, &loads).expect("compressed");
        let touched = identity("/a.txt", &data, 2);
        assert_eq!(cache.get(&touched, Coding::Gzip), None);
        let new_data = text("b");
        let rewritten = identity("/a.txt", &new_data, 2);
        let compressed = fetch(&cache, &rewritten, &new_data, &loads).expect("compressed");
        assert_eq!(gunzip(&compressed), new_data);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(cache.get(&old, Coding::Gzip), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_file_that_changed_while_read_is_not_cached() {
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let stale = FileIdentity::new("/a.txt", data.len() as u64 + 1, None);
        assert_eq!(fetch(&cache, &stale, &data, &loads), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn evicts_the_least_recently_used_by_bytes() {
        let (a, b, c) = (text("a"), text("b"), text("c"));
        let loads = Arc::new(AtomicUsize::new(0));
        // One entry's cost, measured: the three compress to about the same size.
        let probe = CompressedCache::new();
        fetch(&probe, &identity("/a.txt", &a, 1), &a, &loads);
        let cost = probe.weighed_bytes();
        assert!(cost > ENTRY_OVERHEAD);
        let cache = CompressedCache::with_limits(CacheLimits {
            max_bytes: cost * 2 + cost / 2,
            ..CacheLimits::default()
        });
        let (ia, ib, ic) = (
            identity("/a.txt", &a, 1),
            identity("/b.txt", &b, 1),
            identity("/c.txt", &c, 1),
        );
        fetch(&cache, &ia, &a, &loads).unwrap();
        fetch(&cache, &ib, &b, &loads).unwrap();
        // Using `a` makes `b` the least recently used.
        assert!(cache.get(&ia, Coding::Gzip).is_some());
        fetch(&cache, &ic, &c, &loads).unwrap();
        assert!(cache.get(&ib, Coding::Gzip).is_none(), "b evicted");
        assert!(cache.get(&ia, Coding::Gzip).is_some());
        assert!(cache.get(&ic, Coding::Gzip).is_some());
        assert_eq!(cache.len(), 2);
        assert!(cache.weighed_bytes() <= cache.limits().max_bytes);
    }

    #[test]
    fn an_entry_larger_than_the_cache_is_served_but_not_kept() {
        let cache = CompressedCache::with_limits(CacheLimits {
            max_bytes: ENTRY_OVERHEAD,
            ..CacheLimits::default()
        });
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        assert!(fetch(&cache, &identity("/a.txt", &data, 1), &data, &loads).is_some());
        assert!(cache.is_empty());
        assert_eq!(cache.weighed_bytes(), 0);
    }

    #[test]
    fn incompressible_types_and_sizes_are_skipped_unread() {
        let cache = CompressedCache::with_limits(CacheLimits {
            max_file_size: 10_000,
            ..CacheLimits::default()
        });
        let loaded = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let cases = [
            ("image/png", data.len() as u64),
            ("application/octet-stream", data.len() as u64),
            ("application/zip", data.len() as u64),
            ("video/mp4", data.len() as u64),
            ("text/event-stream", data.len() as u64),
            ("text/plain", 10_001),
            ("text/plain", 100),
        ];
        for (content_type, len) in cases {
            let loaded = Arc::clone(&loaded);
            let file = FileIdentity::new("/f", len, None);
            let result = block_on(cache.get_or_compress_with(
                &file,
                content_type,
                Coding::Brotli,
                move || {
                    loaded.fetch_add(1, Ordering::SeqCst);
                    Ok(Vec::new())
                },
            ));
            assert_eq!(result, None, "{content_type} {len}");
        }
        assert_eq!(loaded.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn compressible_types() {
        for yes in [
            "text/html; charset=utf-8",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/json",
            "application/manifest+json",
            "image/svg+xml",
            "application/rss+xml",
            "application/wasm",
            "font/ttf",
        ] {
            assert!(is_compressible(yes), "{yes}");
        }
        for no in [
            "image/png",
            "image/webp",
            "video/webm",
            "audio/ogg",
            "font/woff2",
            "application/gzip",
            "application/octet-stream",
            "application/pdf",
            "text/event-stream",
            "nonsense",
            "",
        ] {
            assert!(!is_compressible(no), "{no}");
        }
    }

    #[test]
    fn concurrent_requests_wait_for_one_compression() {
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let file = identity("/a.txt", &data, 1);
        let (started, on_start) = mpsc::channel();
        let (go, on_go) = mpsc::channel::<()>();
        let leader = {
            let (cache, file, data, loads) = (
                cache.clone(),
                file.clone(),
                data.clone(),
                Arc::clone(&loads),
            );
            std::thread::spawn(move || {
                block_on(
                    cache.get_or_compress_with(&file, "text/plain", Coding::Gzip, move || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        started.send(()).unwrap();
                        on_go.recv_timeout(WAIT).expect("released");
                        Ok(data)
                    }),
                )
            })
        };
        on_start.recv_timeout(WAIT).expect("the leader compresses");
        let mut follower = Box::pin(fetch_async(&cache, &file, &data, &loads));
        assert_eq!(block_on(poll_once(&mut follower)), None, "waits");
        go.send(()).unwrap();
        let led = leader.join().unwrap().expect("compressed");
        assert_eq!(block_on(follower), Some(led));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    async fn fetch_async(
        cache: &CompressedCache,
        identity: &FileIdentity,
        data: &[u8],
        loads: &Arc<AtomicUsize>,
    ) -> Option<Bytes> {
        let (data, loads) = (data.to_vec(), Arc::clone(loads));
        cache
            .get_or_compress_with(identity, "text/plain", Coding::Gzip, move || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(data)
            })
            .await
    }

    /// Runtime services whose blocking pool runs work in place, counting it, or drops it.
    struct Pool {
        ran: Arc<AtomicUsize>,
        drop_work: bool,
    }

    impl RuntimeServices for Pool {
        fn name(&self) -> &'static str {
            "pool"
        }
        fn spawn(&self, task: BoxFuture<()>) {
            drop(task);
        }
        fn sleep_until(&self, _deadline: std::time::Instant) -> BoxFuture<()> {
            Box::pin(std::future::pending())
        }
        fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn std::any::Any + Send>> {
            self.ran.fetch_add(1, Ordering::SeqCst);
            if self.drop_work {
                drop(work);
                return Box::pin(async { Box::new(()) as Box<dyn std::any::Any + Send> });
            }
            let output = work();
            Box::pin(async move { output })
        }
    }

    /// A runtime whose blocking pool counts its jobs (and runs them, unless `drop_work`).
    fn pool_runtime(drop_work: bool) -> (RuntimeHandle, Arc<AtomicUsize>) {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = Pool {
            ran: Arc::clone(&ran),
            drop_work,
        };
        (RuntimeHandle::new(pool, ShutdownSignal::never()), ran)
    }

    #[test]
    fn compresses_on_the_blocking_pool_inside_a_runtime() {
        let (runtime, ran) = pool_runtime(false);
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let file = identity("/a.txt", &data, 1);
        let compressed = runtime.enter(|| fetch(&cache, &file, &data, &loads));
        assert_eq!(gunzip(&compressed.unwrap()), data);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn work_the_pool_drops_still_ends_the_wait() {
        let (runtime, ran) = pool_runtime(true);
        let cache = CompressedCache::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let data = text("a");
        let file = identity("/a.txt", &data, 1);
        // The runtime's future panics on the missing output; what matters is the slot.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.enter(|| fetch(&cache, &file, &data, &loads))
        }));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        assert!(
            cache.shared.lock().pending.is_empty(),
            "no request left waiting"
        );
        // Nothing was cached: the next request compresses.
        assert!(fetch(&cache, &file, &data, &loads).is_some());
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn reads_the_file_from_its_path() {
        let dir = std::env::temp_dir().join(format!("weft-compressed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.js");
        let data = text("js");
        std::fs::write(&path, &data).unwrap();
        let file = FileIdentity::from_metadata(&path, &std::fs::metadata(&path).unwrap());
        let cache = CompressedCache::new();
        let compressed = block_on(cache.get_or_compress(&file, "text/javascript", Coding::Gzip));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(gunzip(&compressed.expect("compressed")), data);
    }
}
