//! Cache-busting asset names: an [`AssetManifest`] maps a logical name (`css/styles.css`) to
//! a name carrying a hash of the content (`css/styles.3f9a2c1b.css`), so a page can link the
//! hashed name and the server can let browsers cache it forever (`immutable`): new content
//! gets a new name.
//!
//! # The hashed name
//! The hash is the first [`HASH_LEN`] hex digits of the SHA-256 of the file's bytes, inserted
//! before the file name's **last** extension: `app.js` → `app.3f9a2c1b.js`; a name without
//! an extension gets it appended (`LICENSE` → `LICENSE.3f9a2c1b`). Double extensions are not
//! special: `bundle.tar.gz` → `bundle.tar.3f9a2c1b.gz`, which stays unique and cacheable
//! even though it no longer ends in `.tar.gz`. [`is_hashed_name`] recognises such names.
//!
//! # Where a manifest comes from
//! - at start-up: [`AssetManifest::scan`] hashes every file under a directory (blocking I/O:
//!   call it before serving, or from the blocking pool); [`AssetManifest::provider`] does it
//!   when the app is built, and registers the manifest with the app's services;
//! - ahead of time: `weft build-assets DIR [--out OUT]` ([`write_hashed_copies`]) copies each
//!   file to its hashed name and writes [`MANIFEST_FILE`], which [`AssetManifest::load`]
//!   reads back.
//!
//! The manifest file is the flat JSON object bundlers such as Vite and webpack's manifest
//! plugin write: `{"css/styles.css": "css/styles.3f9a2c1b.css", ...}`, logical name to
//! hashed name, both relative and `/`-separated.
//!
//! # In handlers and templates
//! ```
//! use weft::prelude::*;
//! use weft::assets::AssetManifest;
//!
//! async fn page(assets: State<AssetManifest>) -> Html<String> {
//!     Html(format!(r#"<link rel="stylesheet" href="{}">"#, assets.url("css/styles.css")))
//! }
//!
//! let mut manifest = AssetManifest::new().with_prefix("/assets/");
//! manifest.insert("css/styles.css", "css/styles.3f9a2c1b.css").unwrap();
//! assert_eq!(manifest.url("css/styles.css"), "/assets/css/styles.3f9a2c1b.css");
//! let app = App::new().state(manifest).get("/", page);
//! # let _ = app.build().unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::services::Provider;

/// How many hex digits of the SHA-256 a hashed name carries: 32 bits, ample to tell versions
/// of one file apart (the name is unique per logical name, not across the site).
pub const HASH_LEN: usize = 8;

/// What [`AssetManifest::url`] percent-encodes in a name: what may not appear in a URL
/// path (RFC 3986 §3.3) or would end an HTML attribute (`"`, `'`, `<`, `>`); `/` stays.
const URL_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'\'')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The manifest's file name, written at the root of the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The largest manifest [`AssetManifest::load`] reads: a manifest is names, not content.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// Bounds on a directory walk ([`AssetManifest::scan_with`]), so that a deep or huge tree
/// (or a mistaken `/`) fails clearly instead of running without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Directories deeper than this below the root are an error (32 by default).
    pub max_depth: usize,
    /// More files than this is an error (100 000 by default).
    pub max_files: usize,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            max_depth: 32,
            max_files: 100_000,
        }
    }
}

/// Why a manifest could not be built, read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum AssetError {
    /// Reading or writing `path` failed.
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The root given to a scan is not a directory.
    NotADirectory(PathBuf),
    /// A directory lies deeper than [`ScanLimits::max_depth`].
    TooDeep {
        /// The first directory too deep.
        path: PathBuf,
        /// The limit.
        max_depth: usize,
    },
    /// The tree holds more than [`ScanLimits::max_files`] files.
    TooManyFiles {
        /// The limit.
        max_files: usize,
    },
    /// The manifest file is larger than [`MAX_MANIFEST_BYTES`].
    ManifestTooLarge(PathBuf),
    /// The manifest is not a JSON object of strings.
    InvalidManifest(serde_json::Error),
    /// A name is not a safe relative `/`-separated path (absolute, `..`, empty segment,
    /// backslash or control character): it could point outside the asset directory.
    UnsafeName(String),
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssetError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            AssetError::NotADirectory(path) => write!(f, "{} is not a directory", path.display()),
            AssetError::TooDeep { path, max_depth } => write!(
                f,
                "{} is more than {max_depth} directories deep",
                path.display()
            ),
            AssetError::TooManyFiles { max_files } => {
                write!(f, "more than {max_files} asset files")
            }
            AssetError::ManifestTooLarge(path) => write!(
                f,
                "{} is larger than {MAX_MANIFEST_BYTES} bytes",
                path.display()
            ),
            AssetError::InvalidManifest(error) => {
                write!(f, "the manifest is not a JSON object of names ({error})")
            }
            AssetError::UnsafeName(name) => {
                write!(f, "{name:?} is not a relative asset name")
            }
        }
    }
}

impl std::error::Error for AssetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AssetError::Io { source, .. } => Some(source),
            AssetError::InvalidManifest(error) => Some(error),
            _ => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AssetError + '_ {
    move |source| AssetError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Logical asset names and their hashed names, both ways, with the public URL prefix they
/// are served under. Register it with [`App::state`](crate::App::state) (or
/// [`AssetManifest::provider`]) and take it in handlers as
/// [`State<AssetManifest>`](crate::services::State).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetManifest {
    /// Logical → hashed, sorted so the saved file is stable.
    hashed: BTreeMap<String, String>,
    /// Hashed → logical.
    logical: HashMap<String, String>,
    prefix: String,
}

impl Default for AssetManifest {
    fn default() -> Self {
        AssetManifest::new()
    }
}

impl AssetManifest {
    /// An empty manifest, its URLs under `/`.
    pub fn new() -> Self {
        AssetManifest {
            hashed: BTreeMap::new(),
            logical: HashMap::new(),
            prefix: "/".to_owned(),
        }
    }

    /// The public path the assets are served under (`/assets/`), which [`url`](Self::url)
    /// puts before names; a missing trailing `/` is added.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.prefix = prefix;
        self
    }

    /// The public URL prefix, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Adds (or replaces) an entry. Both names must be relative `/`-separated paths without
    /// `..`, since a static file service resolves them under its root.
    ///
    /// # Errors
    /// [`AssetError::UnsafeName`] for a name that could leave the asset directory.
    pub fn insert(
        &mut self,
        logical: impl Into<String>,
        hashed: impl Into<String>,
    ) -> Result<(), AssetError> {
        let (logical, hashed) = (logical.into(), hashed.into());
        for name in [&logical, &hashed] {
            if !is_safe_name(name) {
                return Err(AssetError::UnsafeName(name.clone()));
            }
        }
        if let Some(old) = self.hashed.insert(logical.clone(), hashed.clone()) {
            self.logical.remove(&old);
        }
        self.logical.insert(hashed, logical);
        Ok(())
    }

    /// The hashed name of a logical name: `css/styles.css` → `css/styles.3f9a2c1b.css`.
    pub fn hashed(&self, logical: &str) -> Option<&str> {
        self.hashed.get(logical).map(String::as_str)
    }

    /// The logical name of a hashed name, so a file service can answer `styles.3f9a2c1b.css`
    /// from `styles.css` without a copy on disk.
    pub fn logical(&self, hashed: &str) -> Option<&str> {
        self.logical.get(hashed).map(String::as_str)
    }

    /// The URL a page links for a logical name: the prefix and the hashed name
    /// (percent-encoded where a URL path or an HTML attribute needs it), or the name as given
    /// when the manifest does not know it (logged at debug: a typo, or an asset
    /// added after start-up), so a page still renders.
    pub fn url(&self, logical: &str) -> String {
        let relative = logical.trim_start_matches('/');
        let name = self.hashed(relative).unwrap_or_else(|| {
            tracing::debug!(asset = relative, "asset not in the manifest: unhashed URL");
            relative
        });
        let encoded = percent_encoding::utf8_percent_encode(name, URL_ESCAPED);
        format!("{}{encoded}", self.prefix)
    }

    /// How many assets the manifest names.
    pub fn len(&self) -> usize {
        self.hashed.len()
    }

    /// Whether the manifest names no asset.
    pub fn is_empty(&self) -> bool {
        self.hashed.is_empty()
    }

    /// Every `(logical, hashed)` pair, by logical name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hashed.iter().map(|(l, h)| (l.as_str(), h.as_str()))
    }

    /// Hashes every file under `dir` ([`ScanLimits::default`]): see [`scan_with`](Self::scan_with).
    ///
    /// # Errors
    /// As [`scan_with`](Self::scan_with).
    pub fn scan(dir: impl AsRef<Path>) -> Result<Self, AssetError> {
        AssetManifest::scan_with(dir, ScanLimits::default())
    }

    /// Hashes every file under `dir`, the "built at start-up" path. Blocking (it reads every
    /// file): call it before serving, or on the blocking pool.
    ///
    /// Skipped: names starting with `.` (dotfiles and dot-directories), names that already
    /// look hashed ([`is_hashed_name`]), names that are not UTF-8, and symbolic links to
    /// directories (a link cycle would never end). A symbolic link to a file is hashed only
    /// when its target lies inside `dir`.
    ///
    /// # Errors
    /// [`AssetError::NotADirectory`], [`AssetError::Io`] for a file or directory that cannot
    /// be read, [`AssetError::TooDeep`] and [`AssetError::TooManyFiles`] beyond `limits`.
    pub fn scan_with(dir: impl AsRef<Path>, limits: ScanLimits) -> Result<Self, AssetError> {
        let files = walk(dir.as_ref(), limits, &[])?;
        let mut manifest = AssetManifest::new();
        for file in files {
            let hash = hash_file(&file.path)?;
            let hashed = hashed_name(&file.logical, &hash);
            manifest.insert(file.logical, hashed)?;
        }
        Ok(manifest)
    }

    /// A provider that scans `dir` when the app is built (failing the build on error) and
    /// registers the manifest, under `prefix`, for [`State<AssetManifest>`](crate::services::State)
    /// and [`Inject<AssetManifest>`](crate::services::Inject).
    pub fn provider(dir: impl Into<PathBuf>, prefix: impl Into<String>) -> Provider {
        let (dir, prefix) = (dir.into(), prefix.into());
        Provider::fallible(move || {
            AssetManifest::scan(&dir).map(|manifest| manifest.with_prefix(prefix))
        })
    }

    /// Reads a manifest file (the JSON object of the [module documentation](self)); URLs go
    /// under `/` until [`with_prefix`](Self::with_prefix).
    ///
    /// # Errors
    /// [`AssetError::Io`], [`AssetError::ManifestTooLarge`], [`AssetError::InvalidManifest`],
    /// or [`AssetError::UnsafeName`] for an entry that could leave the asset directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AssetError> {
        let path = path.as_ref();
        let file = fs::File::open(path).map_err(io_error(path))?;
        let mut json = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut json)
            .map_err(io_error(path))?;
        if json.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(AssetError::ManifestTooLarge(path.to_owned()));
        }
        AssetManifest::from_json(&json)
    }

    /// Parses the manifest's JSON.
    ///
    /// # Errors
    /// [`AssetError::InvalidManifest`] or [`AssetError::UnsafeName`].
    pub fn from_json(json: &str) -> Result<Self, AssetError> {
        let entries: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(AssetError::InvalidManifest)?;
        let mut manifest = AssetManifest::new();
        for (logical, hashed) in entries {
            manifest.insert(logical, hashed)?;
        }
        Ok(manifest)
    }

    /// The manifest's JSON, pretty-printed, sorted by logical name.
    pub fn to_json(&self) -> String {
        // A map of strings always serializes.
        serde_json::to_string_pretty(&self.hashed).unwrap_or_default()
    }

    /// Writes the manifest file.
    ///
    /// # Errors
    /// [`AssetError::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), AssetError> {
        let path = path.as_ref();
        let mut json = self.to_json();
        json.push('\n');
        fs::write(path, json).map_err(io_error(path))
    }
}

/// What [`write_hashed_copies`] did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The manifest written.
    pub manifest: AssetManifest,
    /// Where it was written.
    pub manifest_path: PathBuf,
    /// The directory the hashed copies went to.
    pub out_dir: PathBuf,
}

/// `weft build-assets`: hashes every file under `dir` (as [`AssetManifest::scan`]), copies
/// each to its hashed name under `out_dir` (or alongside the original when `None`), keeping
/// the directory layout, and writes [`MANIFEST_FILE`] at the top of that directory. Only the
/// hashed copies go to `out_dir`, as bundlers do.
///
/// Running it again is safe: hashed names, the manifest, and `out_dir` itself when it lies
/// inside `dir` are not hashed again.
///
/// # Errors
/// As [`AssetManifest::scan`], and [`AssetError::Io`] for a copy or the manifest.
pub fn write_hashed_copies(dir: &Path, out_dir: Option<&Path>) -> Result<BuildReport, AssetError> {
    let out_dir = out_dir.unwrap_or(dir).to_owned();
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let skip = [out_dir.clone(), manifest_path.clone()];
    let files = walk(dir, ScanLimits::default(), &skip)?;
    let mut manifest = AssetManifest::new();
    for file in files {
        let hashed = copy_hashed(&file, &out_dir)?;
        manifest.insert(file.logical, hashed)?;
    }
    manifest.save(&manifest_path)?;
    Ok(BuildReport {
        manifest,
        manifest_path,
        out_dir,
    })
}

/// Copies `file` under `out_dir` to its hashed name, returning that name. The hash is of the
/// bytes copied (read once, into a temporary dotfile renamed at the end), so a file changing
/// meanwhile cannot leave a copy whose name is not its content's hash.
fn copy_hashed(file: &Found, out_dir: &Path) -> Result<String, AssetError> {
    // One staging name per process: two builds into one directory do not mix their bytes.
    let staging_name = format!(".weft-build-assets.{}.tmp", std::process::id());
    let staging = out_dir.join(match file.logical.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{staging_name}"),
        None => staging_name,
    });
    if let Some(parent) = staging.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let source = fs::File::open(&file.path).map_err(io_error(&file.path))?;
    let copy = fs::File::create(&staging).map_err(io_error(&staging))?;
    let mut tee = Tee {
        reader: source,
        writer: io::BufWriter::new(copy),
        write_failed: false,
    };
    let hashed = content_hash(&mut tee)
        .and_then(|hash| {
            use std::io::Write;
            tee.writer.flush()?;
            Ok(hash)
        })
        .map_err(|error| {
            let _ = fs::remove_file(&staging);
            let at_fault = if tee.write_failed {
                &staging
            } else {
                &file.path
            };
            io_error(at_fault)(error)
        })
        .map(|hash| hashed_name(&file.logical, &hash))?;
    let target = out_dir.join(&hashed);
    fs::rename(&staging, &target).map_err(io_error(&target))?;
    Ok(hashed)
}

/// A reader that writes what it reads to `writer`, remembering whether a write failed.
struct Tee<R, W> {
    reader: R,
    writer: W,
    write_failed: bool,
}

impl<R: Read, W: io::Write> Read for Tee<R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.reader.read(buffer)?;
        if let Err(error) = self.writer.write_all(&buffer[..read]) {
            self.write_failed = true;
            return Err(error);
        }
        Ok(read)
    }
}

/// The hashed form of a logical name: `hash` inserted before the file name's last extension
/// (`css/app.js` → `css/app.<hash>.js`), or appended when it has none.
pub fn hashed_name(logical: &str, hash: &str) -> String {
    let (dir, file) = match logical.rfind('/') {
        Some(slash) => logical.split_at(slash + 1),
        None => ("", logical),
    };
    match file.rfind('.') {
        Some(dot) if dot > 0 => format!("{dir}{}.{hash}{}", &file[..dot], &file[dot..]),
        _ => format!("{dir}{file}.{hash}"),
    }
}

/// Whether a name (or path: only its last segment counts) carries a content hash: a
/// `.`-separated segment of at least [`HASH_LEN`] hex digits right before the extension, as
/// in `app.3f9a2c1b.js`, or at the end of a name whose extension it is (`LICENSE.3f9a2c1b`,
/// what [`hashed_name`] makes of a name without one). A static file service uses it to send `Cache-Control: immutable`.
///
/// Bundlers' chunk names, where the hash follows a `-` or `_` (`chunk-5e0f1a2b.css`), count
/// too when the hash has at least one digit (so that `index-deadbeef.js`, a plausible word,
/// does not).
///
/// A name that merely looks so (`report.20261207.csv`) is taken as hashed too.
pub fn is_hashed_name(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    is_dot_hashed(file) || is_chunk_hashed(file)
}

/// `app.3f9a2c1b.js`, `LICENSE.3f9a2c1b`: what [`hashed_name`] makes.
fn is_dot_hashed(file: &str) -> bool {
    let segments: Vec<&str> = file.split('.').collect();
    // The hash must follow a stem: `.3f9a2c1b.js` is a dotfile, not a hashed name.
    let stem_before = |index: usize| index > 0 && !segments[..index].concat().is_empty();
    match segments.len() {
        0 | 1 => false,
        // `LICENSE.3f9a2c1b`: the hash appended to a name without extension.
        2 => is_hash(segments[1]) && stem_before(1),
        n => (is_hash(segments[n - 2]) && stem_before(n - 2)) || is_hash(segments[n - 1]),
    }
}

/// `chunk-5e0f1a2b.css`: a `-` or `_` separated part of the stem, hex with a digit.
fn is_chunk_hashed(file: &str) -> bool {
    let Some((stem, _extension)) = file.rsplit_once('.') else {
        return false;
    };
    stem.split(['-', '_'])
        .skip(1)
        .any(|part| is_hash(part) && part.bytes().any(|b| b.is_ascii_digit()))
}

/// A run of hex digits as long as a content hash (up to a whole SHA-256).
fn is_hash(segment: &str) -> bool {
    (HASH_LEN..=64).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first [`HASH_LEN`] hex digits of the SHA-256 of everything `reader` yields, read in
/// pieces (memory stays small whatever the size).
///
/// # Errors
/// The reader's.
pub fn content_hash(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    Ok(hex)
}

fn hash_file(path: &Path) -> Result<String, AssetError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    content_hash(file).map_err(io_error(path))
}

/// A relative `/`-separated name whose segments are all ordinary file names.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && !name.contains(':')
}

/// A file found by [`walk`].
struct Found {
    path: PathBuf,
    logical: String,
}

/// The files under `root` an asset manifest names (see [`AssetManifest::scan_with`]), by
/// logical name; paths in `skip` (and what is under them) are left out.
fn walk(root: &Path, limits: ScanLimits, skip: &[PathBuf]) -> Result<Vec<Found>, AssetError> {
    let metadata = fs::metadata(root).map_err(io_error(root))?;
    if !metadata.is_dir() {
        return Err(AssetError::NotADirectory(root.to_owned()));
    }
    let canonical_root = root.canonicalize().map_err(io_error(root))?;
    // Skipping the root itself (`--out` naming the source) would skip everything.
    let skip: Vec<PathBuf> = skip
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| *p != canonical_root)
        .collect();
    let mut walker = Walker {
        root: canonical_root,
        limits,
        skip,
        found: Vec::new(),
    };
    walker.directory(root, "", 0)?;
    walker.found.sort_by(|a, b| a.logical.cmp(&b.logical));
    Ok(walker.found)
}

struct Walker {
    root: PathBuf,
    limits: ScanLimits,
    skip: Vec<PathBuf>,
    found: Vec<Found>,
}

impl Walker {
    fn directory(&mut self, dir: &Path, prefix: &str, depth: usize) -> Result<(), AssetError> {
        if depth > self.limits.max_depth {
            return Err(AssetError::TooDeep {
                path: dir.to_owned(),
                max_depth: self.limits.max_depth,
            });
        }
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            self.entry(&entry.path(), prefix, depth)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, prefix: &str, depth: usize) -> Result<(), AssetError> {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            tracing::debug!(path = %path.display(), "asset name is not UTF-8: skipped");
            return Ok(());
        };
        if name.starts_with('.') || !is_safe_name(name) {
            return Ok(());
        }
        let link = fs::symlink_metadata(path).map_err(io_error(path))?;
        let is_link = link.file_type().is_symlink();
        let resolved = path
            .canonicalize()
            .and_then(|c| Ok((fs::metadata(path)?, c)));
        let (metadata, canonical) = match resolved {
            Ok(resolved) => resolved,
            // A dangling link names no asset; any other file that cannot be read is an error.
            Err(_) if is_link => return Ok(()),
            Err(error) => return Err(io_error(path)(error)),
        };
        if self.skip.iter().any(|skip| canonical.starts_with(skip)) {
            return Ok(());
        }
        let logical = format!("{prefix}{name}");
        if metadata.is_dir() {
            if is_link {
                return Ok(());
            }
            return self.directory(path, &format!("{logical}/"), depth + 1);
        }
        let outside = !canonical.starts_with(&self.root);
        if !metadata.is_file() || outside || is_hashed_name(name) {
            return Ok(());
        }
        if self.found.len() >= self.limits.max_files {
            return Err(AssetError::TooManyFiles {
                max_files: self.limits.max_files,
            });
        }
        self.found.push(Found {
            path: path.to_owned(),
            logical,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `content` to `name` under `dir`, creating its directories.
    fn write(dir: &Path, name: &str, content: &[u8]) {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn sha_prefix(content: &[u8]) -> String {
        let digest = Sha256::digest(content);
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hash_is_the_start_of_the_sha256_in_hex() {
        let hash = content_hash(&b"body { color: red }"[..]).unwrap();
        assert_eq!(hash.len(), HASH_LEN);
        assert_eq!(hash, sha_prefix(b"body { color: red }"));
        assert_ne!(hash, content_hash(&b"body { color: blue }"[..]).unwrap());
    }

    #[test]
    fn the_hash_goes_before_the_last_extension() {
        assert_eq!(hashed_name("app.js", "3f9a2c1b"), "app.3f9a2c1b.js");
        assert_eq!(
            hashed_name("css/site.min.css", "3f9a2c1b"),
            "css/site.min.3f9a2c1b.css"
        );
        assert_eq!(hashed_name("b.tar.gz", "3f9a2c1b"), "b.tar.3f9a2c1b.gz");
        assert_eq!(hashed_name("LICENSE", "3f9a2c1b"), "LICENSE.3f9a2c1b");
        assert_eq!(
            hashed_name("v1.2/LICENSE", "3f9a2c1b"),
            "v1.2/LICENSE.3f9a2c1b"
        );
    }

    #[test]
    fn hashed_names_are_recognised() {
        for name in [
            "app.3f9a2c1b.js",
            "css/app.3F9A2C1B.css",
            "b.tar.3f9a2c1b.gz",
            "x.0123456789abcdef.wasm",
            "LICENSE.3f9a2c1b",
            "app.js.3f9a2c1b",
            "chunk-5e0f1a2b.css",
            "assets/index_0123abcd.js",
        ] {
            assert!(is_hashed_name(name), "{name}");
        }
        for name in [
            "app.js",
            "app.3f9a2c1.js",
            "app.3f9a2c1g.js",
            ".3f9a2c1b.js",
            "3f9a2c1b.js",
            "3f9a2c1b/app.js",
            ".3f9a2c1b",
            "index-deadbeef.js",
            "my-file.js",
            "",
        ] {
            assert!(!is_hashed_name(name), "{name}");
        }
        // Our own output is always recognised, whatever the name.
        for logical in ["a.css", "LICENSE", "x.tar.gz", "d/e.f.js"] {
            let hashed = hashed_name(logical, "00000000");
            assert!(is_hashed_name(&hashed), "{hashed}");
        }
    }

    #[test]
    fn lookups_go_both_ways_and_urls_fall_back() {
        let mut manifest = AssetManifest::new().with_prefix("/assets");
        manifest.insert("css/s.css", "css/s.3f9a2c1b.css").unwrap();
        assert_eq!(manifest.hashed("css/s.css"), Some("css/s.3f9a2c1b.css"));
        assert_eq!(manifest.logical("css/s.3f9a2c1b.css"), Some("css/s.css"));
        assert_eq!(manifest.logical("css/s.css"), None);
        assert_eq!(manifest.url("css/s.css"), "/assets/css/s.3f9a2c1b.css");
        assert_eq!(manifest.url("/css/s.css"), "/assets/css/s.3f9a2c1b.css");
        assert_eq!(manifest.url("img/logo.png"), "/assets/img/logo.png");
        assert_eq!(
            manifest.url("my file\"><x>.css"),
            "/assets/my%20file%22%3E%3Cx%3E.css"
        );
        // A new version replaces the old one in both directions.
        manifest.insert("css/s.css", "css/s.0000aaaa.css").unwrap();
        assert_eq!(manifest.logical("css/s.3f9a2c1b.css"), None);
        assert_eq!(manifest.logical("css/s.0000aaaa.css"), Some("css/s.css"));
        assert_eq!(manifest.len(), 1);
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        let mut manifest = AssetManifest::new();
        for bad in [
            "../x.css",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\b",
            "",
            "c:x",
            "a\nb",
        ] {
            assert!(
                matches!(
                    manifest.insert(bad, "ok.css"),
                    Err(AssetError::UnsafeName(_))
                ),
                "{bad:?}"
            );
            assert!(manifest.insert("ok.css", bad).is_err(), "{bad:?}");
        }
        assert!(manifest.is_empty());
        let error = AssetManifest::from_json(r#"{"a.css": "../../etc/passwd"}"#).unwrap_err();
        assert!(matches!(error, AssetError::UnsafeName(_)), "{error}");
        let error = AssetManifest::from_json(r#"{"a.css": 3}"#).unwrap_err();
        assert!(matches!(error, AssetError::InvalidManifest(_)), "{error}");
        assert!(AssetManifest::from_json("[]").is_err());
    }

    #[test]
    fn scan_hashes_files_and_skips_dotfiles_and_hashed_names() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "css/styles.css", b"body{}");
        write(dir.path(), "app.js", b"let x;");
        write(dir.path(), ".env", b"SECRET=1");
        write(dir.path(), ".git/config", b"[core]");
        write(dir.path(), "vendor.3f9a2c1b.js", b"old");
        let manifest = AssetManifest::scan(dir.path()).unwrap();
        let names: Vec<_> = manifest.iter().map(|(l, _)| l.to_owned()).collect();
        assert_eq!(names, ["app.js", "css/styles.css"]);
        assert_eq!(
            manifest.hashed("css/styles.css").unwrap(),
            format!("css/styles.{}.css", sha_prefix(b"body{}"))
        );
    }

    #[test]
    fn scan_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/b/c/d.txt", b"deep");
        write(dir.path(), "e.txt", b"1");
        write(dir.path(), "f.txt", b"2");
        let limits = ScanLimits {
            max_depth: 2,
            max_files: 10,
        };
        let error = AssetManifest::scan_with(dir.path(), limits).unwrap_err();
        assert!(
            matches!(error, AssetError::TooDeep { max_depth: 2, .. }),
            "{error}"
        );
        let limits = ScanLimits {
            max_depth: 10,
            max_files: 2,
        };
        let error = AssetManifest::scan_with(dir.path(), limits).unwrap_err();
        assert!(
            matches!(error, AssetError::TooManyFiles { max_files: 2 }),
            "{error}"
        );
        let error = AssetManifest::scan(dir.path().join("e.txt")).unwrap_err();
        assert!(matches!(error, AssetError::NotADirectory(_)), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn scan_follows_no_link_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"secret");
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "inside.txt", b"in");
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("inside.txt"), dir.path().join("alias.txt"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.txt"), dir.path().join("dangling.txt"))
            .unwrap();
        let manifest = AssetManifest::scan(dir.path()).unwrap();
        let names: Vec<_> = manifest.iter().map(|(l, _)| l.to_owned()).collect();
        assert_eq!(names, ["alias.txt", "inside.txt"]);
    }

    #[test]
    fn save_and_load_round_trip_in_the_bundlers_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = AssetManifest::new();
        manifest.insert("b.js", "b.11111111.js").unwrap();
        manifest.insert("a/c.css", "a/c.22222222.css").unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        manifest.save(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a/c.css": "a/c.22222222.css", "b.js": "b.11111111.js"})
        );
        assert_eq!(AssetManifest::load(&path).unwrap(), manifest);
        let missing = AssetManifest::load(dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, AssetError::Io { .. }), "{missing}");
    }

    #[test]
    fn a_manifest_over_the_size_limit_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        // Sparse: one byte past the limit costs no disk.
        fs::File::create(&path)
            .unwrap()
            .set_len(MAX_MANIFEST_BYTES + 1)
            .unwrap();
        let error = AssetManifest::load(&path).unwrap_err();
        assert!(matches!(error, AssetError::ManifestTooLarge(_)), "{error}");
    }

    #[test]
    fn hashed_copies_go_alongside_and_a_second_run_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "js/app.js", b"console.log(1)");
        let report = write_hashed_copies(dir.path(), None).unwrap();
        let hashed = format!("js/app.{}.js", sha_prefix(b"console.log(1)"));
        assert_eq!(report.manifest.hashed("js/app.js"), Some(hashed.as_str()));
        assert_eq!(
            fs::read(dir.path().join(&hashed)).unwrap(),
            b"console.log(1)"
        );
        assert_eq!(report.manifest_path, dir.path().join(MANIFEST_FILE));
        let again = write_hashed_copies(dir.path(), None).unwrap();
        assert_eq!(again.manifest, report.manifest);
    }

    #[test]
    fn hashed_copies_into_an_out_dir_inside_the_source() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.css", b"a{}");
        let out = dir.path().join("dist");
        write_hashed_copies(dir.path(), Some(&out)).unwrap();
        let again = write_hashed_copies(dir.path(), Some(&out)).unwrap();
        assert_eq!(again.manifest.len(), 1, "{:?}", again.manifest);
        assert!(
            out.join(hashed_name("a.css", &sha_prefix(b"a{}")))
                .is_file()
        );
        assert!(!out.join("a.css").exists());
    }
}
