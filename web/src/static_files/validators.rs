//! Validators of a file as it was opened: its `ETag` (a content hash, computed once per
//! version of the file and cached) and its `Last-Modified`.
//!
//! A version is (size, modification time, inode), read from the metadata of the **open**
//! handle, so the validators describe the file the body is read from: a file replaced by a
//! rename (how deployments write) keeps its old inode open and its old tag. A changed version
//! misses the cache and is hashed again.
//!
//! Files larger than [`HASH_LIMIT`] are not hashed (a first request would read a GiB before
//! answering): they get a weak tag made of size and modification time, which `If-None-Match`
//! accepts but `If-Range` (strong comparison only) does not, so a resumed download of such a
//! file restarts from zero rather than risk mixing two versions.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::conditional::ETag;

/// Files up to this size get a content hash; larger ones a weak size-and-date tag.
pub const HASH_LIMIT: u64 = 8 * 1024 * 1024;

/// One version of a file: what invalidates its cached tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Version {
    /// The version the metadata of an open handle describes.
    pub(crate) fn of(metadata: &Metadata) -> Version {
        Version {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode: inode(metadata),
        }
    }

    /// The weak tag of size and modification time, for files not hashed.
    pub(crate) fn weak_tag(&self) -> ETag {
        let nanos = self
            .modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        ETag::weak(format!("{:x}-{nanos:x}", self.len))
    }
}

#[cfg(unix)]
fn inode(metadata: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &Metadata) -> u64 {
    0
}

/// The cache of content hashes, bounded in entries: at most one per file path.
#[derive(Debug)]
pub(crate) struct EtagCache {
    entries: Mutex<HashMap<PathBuf, (Version, ETag)>>,
    capacity: usize,
}

impl EtagCache {
    /// A cache holding the tags of at most `capacity` files.
    pub(crate) fn new(capacity: usize) -> Self {
        EtagCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The tag of `file` (open at `path`, with `metadata` from the handle): cached, or hashed
    /// now (blocking; call on the blocking pool). Leaves the file positioned at its start.
    pub(crate) fn etag(
        &self,
        path: &Path,
        file: &mut File,
        metadata: &Metadata,
    ) -> std::io::Result<ETag> {
        let version = Version::of(metadata);
        if version.len > HASH_LIMIT {
            return Ok(version.weak_tag());
        }
        if let Some((cached, tag)) = self.lock().get(path)
            && *cached == version
        {
            return Ok(tag.clone());
        }
        let tag = hash(file, version.len)?;
        // Written while it was hashed: the hash may mix versions, so it is neither cached
        // nor trusted as strong.
        if Version::of(&file.metadata()?) != version {
            return Ok(version.weak_tag());
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(path) {
            // Evict one entry; which does not matter for correctness, only for hit rate.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(path.to_owned(), (version, tag.clone()));
        Ok(tag)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Version, ETag)>> {
        // A panic elsewhere while holding the lock leaves a map that is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many tags are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// SHA-256 of the first `len` bytes, truncated to 128 bits, in hex; the file is rewound.
fn hash(file: &mut File, len: u64) -> std::io::Result<ETag> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut limited = (&mut *file).take(len);
    loop {
        let n = limited.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(digest_tag(hasher))
}

/// The tag of `content` held in memory: the same as [`hash`] gives the file it was read from.
pub(crate) fn content_tag(content: &[u8]) -> ETag {
    let mut hasher = Sha256::new();
    hasher.update(content);
    digest_tag(hasher)
}

/// The first 128 bits of the digest, in hex, as a strong tag.
fn digest_tag(hasher: Sha256) -> ETag {
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    ETag::strong(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, content: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("weft-etag-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    fn tag_of(cache: &EtagCache, path: &Path) -> ETag {
        let mut file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        cache.etag(path, &mut file, &metadata).unwrap()
    }

    #[test]
    fn a_changed_file_gets_a_new_tag_and_the_cache_stays_bounded() {
        let cache = EtagCache::new(2);
        let a = temp("a", b"first");
        let first = tag_of(&cache, &a);
        assert!(!first.is_weak());
        assert_eq!(tag_of(&cache, &a), first);
        std::fs::write(&a, b"second, longer").unwrap();
        assert_ne!(tag_of(&cache, &a), first);
        let b = temp("b", b"b");
        let c = temp("c", b"c");
        tag_of(&cache, &b);
        tag_of(&cache, &c);
        assert_eq!(cache.len(), 2);
        for path in [a, b, c] {
            std::fs::remove_file(path).unwrap();
        }
    }
}
