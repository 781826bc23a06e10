//! The open-file cache: what resolving a request path produced (the opened file or, for a
//! small file, its content read once; its validators and headers), kept for a short validity
//! window so that a repeated request is answered with no blocking hop and no system call
//! (nginx's `open_file_cache`).
//!
//! An entry is keyed by what decides the resolution: the path below the mount as received
//! (only a path that passed sanitising has an entry), whether the mount point is redirected, and the client's accept
//! class (which precompressed sibling it would be sent). Only successful file resolutions are
//! cached: `404`, `403`, redirects and listings are decided afresh each time. The cache is made
//! when a [`StaticFiles`](super::StaticFiles) is mounted, so one mount's policy (dotfiles,
//! symlinks, SPA fallback) never answers for another's.
//!
//! Within the window an entry is trusted without looking at the disk; after it, the next
//! request resolves the path again on the blocking pool (every policy check included), while
//! concurrent requests keep answering from the entry until that one resolution is done, and
//! keeps the entry's content and tag when the file's version (size, modification time, inode)
//! is unchanged; a path that no longer resolves to a file loses its entry. So:
//! - validators always describe the bytes sent: cached bytes and their tag are taken
//!   together, and a cached handle is sent as a region carrying its identity, which a write in
//!   place makes fail rather than mix versions;
//! - a file replaced by rename, deleted, or whose permissions changed is served as it was for
//!   at most the window (and the one resolution that notices); a new file at a path that was `404` is found at once (misses are not
//!   cached);
//! - what it holds is bounded: entries, the files they keep open (only files too large to hold
//!   in memory keep one), and the bytes of the small files' content held in memory.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use weft_service::file::FileIdentity;

use super::validators::Version;
use crate::compression::{AcceptEncoding, Choice, Coding};
use crate::conditional::{ETag, Validators};

/// The settings of a mount's open-file cache: how long an entry is trusted, and its bounds.
///
/// [`StaticFiles`](super::StaticFiles) has none unless [`open_file_cache`] is called;
/// [`OpenFileCache::new`] trusts an entry for 1 s, holds up to 1 024 entries of which up to
/// 256 keep a file open (well under the usual limit of 1 024 descriptors a process), and
/// keeps in memory the content of files up to 32 KiB, 32 MiB in all. A validity of zero turns the cache
/// off. See the [module](self) for what is cached and what the window allows.
///
/// [`open_file_cache`]: super::StaticFiles::open_file_cache
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileCache {
    valid: Duration,
    max_entries: usize,
    max_open_files: usize,
    max_bytes: usize,
    max_file_bytes: u64,
}

impl Default for OpenFileCache {
    fn default() -> Self {
        OpenFileCache {
            valid: Duration::from_secs(1),
            max_entries: 1024,
            max_open_files: 256,
            max_bytes: 32 * 1024 * 1024,
            max_file_bytes: 32 * 1024,
        }
    }
}

impl OpenFileCache {
    /// The default settings (see the type's documentation).
    pub fn new() -> Self {
        OpenFileCache::default()
    }

    /// No cache: every request resolves its path on the blocking pool.
    pub fn disabled() -> Self {
        OpenFileCache::default().valid_for(Duration::ZERO)
    }

    /// How long an entry is trusted without looking at the disk (zero: no cache). A file
    /// changed, replaced or deleted is served as it was for at most this long.
    pub fn valid_for(mut self, window: Duration) -> Self {
        self.valid = window;
        self
    }

    /// At most this many entries (each holds at most one open file handle).
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// At most this many entries keep a file open (those of files over
    /// [`max_file_size`](Self::max_file_size)); each open file is a descriptor the server
    /// cannot use for a connection.
    pub fn max_open_files(mut self, files: usize) -> Self {
        self.max_open_files = files;
        self
    }

    /// At most this many bytes of file content held in memory, all entries together.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Files up to this size have their content held in memory and sent from there (one
    /// write with the head); larger ones keep an open handle and are sent from it.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Whether the cache is on.
    pub fn is_enabled(&self) -> bool {
        !self.valid.is_zero() && self.max_entries > 0
    }

    /// The size up to which a file's content is held in memory (zero when off).
    pub(crate) fn content_limit(&self) -> u64 {
        if self.is_enabled() {
            self.max_file_bytes.min(self.max_bytes as u64)
        } else {
            0
        }
    }
}

/// Where a cached file's bytes come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// The whole content, read once.
    Content(Bytes),
    /// The open handle, and the identity the validators were computed from.
    Handle(Arc<File>, FileIdentity),
}

/// A resolved file, ready to answer from: everything a response needs that does not depend
/// on the request.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) source: Source,
    pub(crate) len: u64,
    /// What the entry is revalidated against.
    pub(crate) version: Version,
    pub(crate) disk_path: PathBuf,
    pub(crate) coding: Option<Coding>,
    pub(crate) vary: bool,
    pub(crate) validators: Validators,
    pub(crate) etag: ETag,
    /// `ETag`, `Last-Modified`, `Cache-Control`, `Vary`: what every answer about the file,
    /// `304` included, carries.
    pub(crate) validator_headers: HeaderMap,
    /// Those and `Accept-Ranges`, `Content-Type`, `Content-Encoding`, `Content-Length`: a
    /// `200` with the whole file.
    pub(crate) whole_file_headers: HeaderMap,
    pub(crate) modified: Option<SystemTime>,
}

impl Served {
    /// The bytes of content this entry holds in memory.
    fn content_bytes(&self) -> usize {
        match &self.source {
            Source::Content(bytes) => bytes.len(),
            Source::Handle(..) => 0,
        }
    }

    /// The files this entry keeps open (0 or 1).
    fn open_files(&self) -> usize {
        usize::from(matches!(self.source, Source::Handle(..)))
    }
}

/// What decides a resolution: see the [module](self).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The request path below the mount, as received (still percent-encoded): only one that
    /// was sanitised and resolved to a file has an entry, so a hit needs neither again.
    /// Spellings of one file are separate entries, within the same bounds.
    raw_path: Box<str>,
    redirect_root: bool,
    accept: u8,
}

impl Key {
    /// The key of a request for `raw_path` (below the mount) with `accept` (already emptied
    /// when precompressed siblings are off).
    pub(crate) fn new(raw_path: &str, redirect_root: bool, accept: &AcceptEncoding) -> Key {
        Key {
            raw_path: raw_path.into(),
            redirect_root,
            accept: accept_class(accept),
        }
    }
}

/// The siblings a client would be sent, for each set of siblings a file may have (resolution
/// offers brotli before gzip): two requests of one class resolve a path alike.
fn accept_class(accept: &AcceptEncoding) -> u8 {
    let code = |offered: &[Coding]| match accept.choose(offered) {
        Choice::Encode(Coding::Brotli) => 1,
        Choice::Encode(Coding::Gzip) => 2,
        Choice::Encode(Coding::Deflate) => 3,
        Choice::Identity | Choice::NotAcceptable => 0,
    };
    code(&[Coding::Brotli, Coding::Gzip])
        | code(&[Coding::Brotli]) << 2
        | code(&[Coding::Gzip]) << 4
}

/// An entry and when it was last checked against the disk (or its check claimed), in
/// nanoseconds since the cache was made: an atomic, so that of the requests finding it stale
/// one claims the check while the others keep answering from it.
#[derive(Debug)]
struct Slot {
    served: Arc<Served>,
    checked: AtomicU64,
}

/// The entries, the content bytes and the open files they hold.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, Slot>,
    bytes: usize,
    open_files: usize,
}

/// A duration in nanoseconds, saturating (585 years).
fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Checked within the window: answer from it.
    Fresh(Arc<Served>),
    /// Older: resolve again, keeping it if the file did not change.
    Stale(Arc<Served>),
    /// Nothing cached.
    Missing,
}

/// One mount's cache.
#[derive(Debug)]
pub(crate) struct OpenCache {
    settings: OpenFileCache,
    entries: RwLock<Entries>,
    /// The origin of the slots' check times.
    made: Instant,
}

impl OpenCache {
    /// An empty cache with `settings`.
    pub(crate) fn new(settings: OpenFileCache) -> Self {
        OpenCache {
            settings,
            entries: RwLock::new(Entries::default()),
            made: Instant::now(),
        }
    }

    /// The settings.
    pub(crate) fn settings(&self) -> &OpenFileCache {
        &self.settings
    }

    /// The entry for `key`, as of `now`. Of the requests that find an entry stale, the first
    /// gets [`Lookup::Stale`] and checks it; until it is done (one resolution), the others
    /// are answered from the entry as if fresh.
    pub(crate) fn get(&self, key: &Key, now: Instant) -> Lookup {
        if !self.settings.is_enabled() {
            return Lookup::Missing;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = entries.map.get(key) else {
            return Lookup::Missing;
        };
        let now = self.nanos(now);
        let checked = slot.checked.load(Ordering::Acquire);
        let fresh = now.saturating_sub(checked) < duration_nanos(self.settings.valid);
        let claimed = !fresh
            && slot
                .checked
                .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if claimed {
            Lookup::Stale(Arc::clone(&slot.served))
        } else {
            Lookup::Fresh(Arc::clone(&slot.served))
        }
    }

    /// `at` in nanoseconds since the cache was made.
    fn nanos(&self, at: Instant) -> u64 {
        duration_nanos(at.saturating_duration_since(self.made))
    }

    /// Keeps `served` for `key`, checked at `now`, evicting the least recently checked
    /// entries to stay within the bounds; an entry larger than the bounds is not kept.
    pub(crate) fn insert(&self, key: Key, served: Arc<Served>, now: Instant) {
        if !self.settings.is_enabled() {
            return;
        }
        let (size, files) = (served.content_bytes(), served.open_files());
        if size > self.settings.max_bytes || files > self.settings.max_open_files {
            return;
        }
        // A panic elsewhere while holding the lock leaves a map that is still consistent.
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(&key);
        while entries.map.len() >= self.settings.max_entries
            || entries.bytes + size > self.settings.max_bytes
            || entries.open_files + files > self.settings.max_open_files
        {
            if !entries.evict_oldest() {
                break;
            }
        }
        entries.bytes += size;
        entries.open_files += files;
        let checked = AtomicU64::new(self.nanos(now));
        entries.map.insert(key, Slot { served, checked });
    }

    /// Forgets the entry for `key`: its path no longer resolves to a file (its handle is
    /// closed once the answers being sent from it are done).
    pub(crate) fn remove(&self, key: &Key) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// How many entries, content bytes and open files are held.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize, usize) {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        (entries.map.len(), entries.bytes, entries.open_files)
    }
}

impl Entries {
    /// Drops the entry for `key`, if any, and what it counted.
    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.served.content_bytes();
            self.open_files -= old.served.open_files();
        }
    }

    /// Drops the entry checked longest ago; `false` when there is none. A linear scan: it
    /// runs only when a full cache takes a new entry, at most once per path and window.
    fn evict_oldest(&mut self) -> bool {
        let Some(victim) = self
            .map
            .iter()
            .min_by_key(|(_, slot)| slot.checked.load(Ordering::Relaxed))
            .map(|(key, _)| key.clone())
        else {
            return false;
        };
        self.remove(&victim);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(content: &[u8]) -> Arc<Served> {
        with_source(
            Source::Content(Bytes::copy_from_slice(content)),
            content.len(),
        )
    }

    /// An entry keeping a file open (the executable itself: any file will do).
    fn handle() -> Arc<Served> {
        let file = File::open(std::env::current_exe().unwrap()).unwrap();
        let identity = FileIdentity::of(&file).unwrap();
        with_source(Source::Handle(Arc::new(file), identity), 0)
    }

    fn with_source(source: Source, len: usize) -> Arc<Served> {
        // Any metadata makes a version: the cache never looks at the disk.
        let path = std::env::temp_dir();
        let metadata = std::fs::metadata(&path).unwrap();
        Arc::new(Served {
            source,
            len: len as u64,
            version: Version::of(&metadata),
            disk_path: path,
            coding: None,
            vary: false,
            validators: Validators::new(Some(ETag::strong("t")), None),
            etag: ETag::strong("t"),
            validator_headers: HeaderMap::new(),
            whole_file_headers: HeaderMap::new(),
            modified: None,
        })
    }

    fn key(name: &str) -> Key {
        Key::new(name, false, &AcceptEncoding::parse(""))
    }

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let cache = OpenCache::new(OpenFileCache::new().max_entries(3).max_bytes(10));
        let start = Instant::now();
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let at = start + Duration::from_millis(i as u64);
            cache.insert(key(name), served(b"1234"), at);
        }
        // Four entries of 4 bytes: the bytes bound (10) keeps two, the newest.
        assert_eq!(cache.usage(), (2, 8, 0));
        assert!(matches!(cache.get(&key("a"), start), Lookup::Missing));
        assert!(matches!(cache.get(&key("d"), start), Lookup::Fresh(_)));
        for (i, name) in ["e", "f", "g", "h"].into_iter().enumerate() {
            let at = start + Duration::from_millis(10 + i as u64);
            cache.insert(key(name), served(b""), at);
        }
        assert_eq!(cache.usage().0, 3);
        // Larger than the whole cache: not kept.
        cache.insert(key("big"), served(&[0; 11]), start);
        assert!(matches!(cache.get(&key("big"), start), Lookup::Missing));
    }

    #[test]
    fn open_files_stay_within_their_bound() {
        let cache = OpenCache::new(OpenFileCache::new().max_open_files(2));
        let start = Instant::now();
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.insert(key(name), handle(), start + Duration::from_millis(i as u64));
        }
        cache.insert(key("small"), served(b"x"), start + Duration::from_millis(9));
        assert_eq!(cache.usage(), (3, 1, 2));
        assert!(matches!(cache.get(&key("d"), start), Lookup::Fresh(_)));
        cache.remove(&key("d"));
        assert_eq!(cache.usage(), (2, 1, 1));
        let none = OpenCache::new(OpenFileCache::new().max_open_files(0));
        none.insert(key("a"), handle(), start);
        assert_eq!(none.usage(), (0, 0, 0));
    }

    #[test]
    fn an_entry_goes_stale_after_the_window_and_a_zero_window_caches_nothing() {
        let cache = OpenCache::new(OpenFileCache::new().valid_for(Duration::from_secs(1)));
        let start = Instant::now();
        cache.insert(key("a"), served(b"a"), start);
        assert!(matches!(cache.get(&key("a"), start), Lookup::Fresh(_)));
        let later = start + Duration::from_secs(1);
        assert!(matches!(cache.get(&key("a"), later), Lookup::Stale(_)));
        // One request checks a stale entry; the others meanwhile answer from it.
        assert!(matches!(cache.get(&key("a"), later), Lookup::Fresh(_)));
        let much_later = later + Duration::from_secs(1);
        assert!(matches!(cache.get(&key("a"), much_later), Lookup::Stale(_)));
        let off = OpenCache::new(OpenFileCache::disabled());
        off.insert(key("a"), served(b"a"), start);
        assert!(matches!(off.get(&key("a"), start), Lookup::Missing));
        assert_eq!(off.settings().content_limit(), 0);
    }

    #[test]
    fn the_accept_class_separates_what_resolution_would_choose() {
        let class = |value: &str| accept_class(&AcceptEncoding::parse(value));
        assert_eq!(class(""), class("identity"));
        assert_ne!(class("br"), class("gzip"));
        assert_ne!(class("br, gzip"), class("br"));
        assert_eq!(class("gzip, br"), class("br, gzip"));
        assert_ne!(class("gzip;q=1, br;q=0.5"), class("br, gzip"));
    }
}
