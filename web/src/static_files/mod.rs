//! Static files: a directory served under any route, hardened for production.
//!
//! ```no_run
//! use weft::prelude::*;
//! use weft::static_files::{CacheControl, StaticFiles, Symlinks};
//!
//! let files = StaticFiles::new("public")
//!     .index_file("index.html")
//!     .list_directories(false)
//!     .spa_fallback(true)
//!     .symlinks(Symlinks::WithinRoot)
//!     .cache_control(CacheControl::default());
//! let app = App::new().static_files("/assets", files.clone()).static_files("/", files);
//! # let _ = app;
//! ```
//!
//! What it does, per request (`GET` and `HEAD`, through the normal router, so middleware,
//! guards and `405` apply as to any route):
//! - the path below the mount point is percent-decoded once and checked ([`path`]): `..`,
//!   encoded separators, backslashes, NUL are refused (`400` / `403`), dotfiles are `404`
//!   unless enabled, symlinks follow the [`Symlinks`] policy;
//! - the file is opened, and its metadata read from the open handle, on the runtime's
//!   blocking pool (inline without a runtime), never on an event-loop thread;
//! - `ETag` (a content hash cached per file version, see [`validators`](self#validators)),
//!   `Last-Modified`, `304` for `If-None-Match` / `If-Modified-Since`;
//! - `Range` ([`range`]): one range (`206`), several (`multipart/byteranges`), `If-Range`,
//!   `416` with `Content-Range: bytes */len`;
//! - a precompressed sibling (`app.js.br`, `app.js.gz`) when the client accepts it, with
//!   `Vary: Accept-Encoding`;
//! - `Content-Type` by extension with `charset=utf-8` for text; `Cache-Control` by kind
//!   ([`CacheControl`]);
//! - directories: the index file, a `308` to the slash form, a listing when enabled, or the
//!   SPA fallback (the root's index for any unknown path);
//! - the body is read in 64 KiB chunks from the opened handle, never whole (or sent with
//!   `sendfile(2)` where the driver can);
//! - with [`StaticFiles::open_file_cache`] on, a path resolved within the last window is
//!   answered from memory with no blocking hop: see [`OpenFileCache`].
//!
//! # Validators
//! A file's tag is the SHA-256 of its content (128 bits shown), computed once per version
//! (size, modification time, inode of the open handle) and cached for up to 4 096 files.
//! Files over 8 MiB get a weak tag of size and modification time instead. A file replaced by
//! rename keeps being served from the handle opened before; one written in place while it is
//! sent may end the body with an error (shorter) but never with a tag naming other bytes
//! than those hashed.

mod body;
mod cache_control;
mod listing;
mod mime;
pub mod open_cache;
pub mod path;
pub mod range;
mod resolve;
mod response;
mod validators;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;

pub use cache_control::CacheControl;
pub use open_cache::OpenFileCache;
pub use validators::HASH_LIMIT;

use crate::Request;
use crate::app::{Group, Route};
use crate::assets::AssetManifest;
use crate::handler::{Endpoint, Outcome};
use open_cache::OpenCache;
use resolve::Config;
use validators::EtagCache;

/// How many files' content hashes are cached.
const ETAG_CACHE_ENTRIES: usize = 4096;

/// What to do with symbolic links under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Symlinks {
    /// Follow a link only when its target is inside the root (the default); one that
    /// escapes is `403`.
    #[default]
    WithinRoot,
    /// Follow every link, wherever it points: for roots that link shared assets in on
    /// purpose.
    Follow,
    /// Refuse every path through a link (`403`).
    Never,
}

/// The root directory could not be used.
#[derive(Debug, Clone)]
pub struct RootError {
    /// The root as given.
    pub root: PathBuf,
    /// Why: the I/O error's kind and message.
    pub kind: std::io::ErrorKind,
    message: String,
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the static files root `{}` cannot be served: {}",
            self.root.display(),
            self.message
        )
    }
}

impl std::error::Error for RootError {}

/// A directory served as static files; cheap to clone (settings shared), mounted with
/// [`App::static_files`](crate::App::static_files) or
/// [`Group::static_files`](crate::Group::static_files).
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: Result<PathBuf, RootError>,
    index: Option<String>,
    listing: bool,
    spa: bool,
    dotfiles: bool,
    symlinks: Symlinks,
    precompressed: bool,
    cache_control: CacheControl,
    manifest: Option<Arc<AssetManifest>>,
    etags: Arc<EtagCache>,
    open_file_cache: OpenFileCache,
}

impl StaticFiles {
    /// Serves the directory `root`, canonicalised now. When it does not exist or is not a
    /// directory, mounting it makes [`App::build`](crate::App::build) fail (see
    /// [`try_new`](Self::try_new) to see the error here).
    pub fn new(root: impl AsRef<Path>) -> Self {
        let given = root.as_ref();
        let root = given
            .canonicalize()
            .and_then(|root| {
                if root.is_dir() {
                    Ok(root)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "not a directory",
                    ))
                }
            })
            .map_err(|error| RootError {
                root: given.to_owned(),
                kind: error.kind(),
                message: error.to_string(),
            });
        StaticFiles {
            root,
            index: Some("index.html".to_owned()),
            listing: false,
            spa: false,
            dotfiles: false,
            symlinks: Symlinks::default(),
            precompressed: true,
            cache_control: CacheControl::default(),
            manifest: None,
            etags: Arc::new(EtagCache::new(ETAG_CACHE_ENTRIES)),
            // Off, as nginx's: with it, a changed file may be served as it was for the window.
            open_file_cache: OpenFileCache::disabled(),
        }
    }

    /// As [`new`](Self::new), but the root's error is returned here.
    pub fn try_new(root: impl AsRef<Path>) -> Result<Self, RootError> {
        let files = StaticFiles::new(root);
        files.root()?;
        Ok(files)
    }

    /// The canonical root, or why it cannot be served.
    pub fn root(&self) -> Result<&Path, RootError> {
        self.root.as_deref().map_err(Clone::clone)
    }

    /// The file served for a directory (default `index.html`).
    pub fn index_file(mut self, name: impl Into<String>) -> Self {
        self.index = Some(name.into());
        self
    }

    /// No index file: a directory is listed (when enabled) or `404`.
    pub fn no_index(mut self) -> Self {
        self.index = None;
        self
    }

    /// Lists directories without an index file (default off: listings reveal names).
    pub fn list_directories(mut self, enabled: bool) -> Self {
        self.listing = enabled;
        self
    }

    /// Answers unknown paths with the root's index file, `200` (default off): for
    /// single-page apps that route in the browser.
    pub fn spa_fallback(mut self, enabled: bool) -> Self {
        self.spa = enabled;
        self
    }

    /// Serves names starting with `.` (default off: `.env`, `.git` are `404`, and so is
    /// `.well-known`: enable this, or mount that directory on its own, to serve it).
    pub fn dotfiles(mut self, enabled: bool) -> Self {
        self.dotfiles = enabled;
        self
    }

    /// The symlink policy (default [`Symlinks::WithinRoot`]).
    pub fn symlinks(mut self, policy: Symlinks) -> Self {
        self.symlinks = policy;
        self
    }

    /// Serves `name.br` / `name.gz` siblings to clients that accept them (default on).
    pub fn precompressed(mut self, enabled: bool) -> Self {
        self.precompressed = enabled;
        self
    }

    /// The `Cache-Control` policy (default [`CacheControl::default`]).
    pub fn cache_control(mut self, policy: CacheControl) -> Self {
        self.cache_control = policy;
        self
    }

    /// Serves the content-hashed names of `manifest` (`app.3f9a2c1b.js`) from their logical
    /// files (`app.js`), without hashed copies on disk: the cache-busting names that
    /// [`AssetManifest::url`] gives templates, built at start-up by [`AssetManifest::scan`]
    /// (`weft build-assets` writes copies instead, which need no manifest here). Such a name
    /// is answered only while the file's content still has that hash (`404` once the file
    /// changed, so an immutable URL never names other bytes); files over [`HASH_LIMIT`] are
    /// not re-hashed and are served as they are.
    pub fn manifest(mut self, manifest: AssetManifest) -> Self {
        self.manifest = Some(Arc::new(manifest));
        self
    }

    /// Turns on an open-file cache with these settings (default off, as nginx's
    /// `open_file_cache`): repeated requests for a file are then answered without touching the
    /// disk and without a blocking hop, small files from memory, in one write with the head.
    /// The price: a file changed, replaced or deleted is served as it was for up to the
    /// window ([`OpenFileCache::valid_for`], 1 s by default). Each mount has its own cache.
    /// See [`OpenFileCache`].
    pub fn open_file_cache(mut self, settings: OpenFileCache) -> Self {
        self.open_file_cache = settings;
        self
    }

    /// Adds the routes serving these files under `prefix` to `group`: `prefix`,
    /// `prefix/` and `prefix/{*path}`, `GET` (and so `HEAD`). An unusable root becomes a
    /// build error of the app.
    pub(crate) fn mount(self, group: Group, prefix: &str) -> Group {
        let prefix = prefix.trim_end_matches('/');
        let mut group = group;
        if let Err(error) = &self.root {
            group = group.static_root_error(prefix, error.to_string());
        }
        // Made here, once the settings are final: a mount's cache answers for its policy only.
        let cache = Arc::new(OpenCache::new(self.open_file_cache));
        let endpoint = |redirect_root| ServeFiles {
            files: self.clone(),
            cache: Arc::clone(&cache),
            redirect_root,
        };
        if prefix.is_empty() {
            // Within a group, `/` is the group's own path: its slash form cannot be routed,
            // so the mount point is served as it is asked for, never redirected.
            group
                .add_route(Route::endpoint(Method::GET, "/", endpoint(false)))
                .add_route(Route::endpoint(Method::GET, "/{*path}", endpoint(false)))
        } else {
            group
                .add_route(Route::endpoint(Method::GET, prefix, endpoint(true)))
                .add_route(Route::endpoint(
                    Method::GET,
                    &format!("{prefix}/"),
                    endpoint(true),
                ))
                .add_route(Route::endpoint(
                    Method::GET,
                    &format!("{prefix}/{{*path}}"),
                    endpoint(true),
                ))
        }
    }

    fn config(&self, root: PathBuf) -> Config {
        Config {
            root,
            index: self.index.clone(),
            listing: self.listing,
            spa: self.spa,
            dotfiles: self.dotfiles,
            symlinks: self.symlinks,
            precompressed: self.precompressed,
            manifest: self.manifest.clone(),
        }
    }
}

/// The endpoint of a mount.
struct ServeFiles {
    files: StaticFiles,
    cache: Arc<OpenCache>,
    redirect_root: bool,
}

impl Endpoint for ServeFiles {
    async fn handle(&self, request: Request) -> Outcome {
        response::serve(&self.files, &self.cache, self.redirect_root, request).await
    }
}
