//! The app behind `weft serve [DIR]`: a production file server for one folder.
//!
//! Every request is logged on one access line (target `weft::access`); errors are HTML pages
//! for browsers and problem+json for other clients ([`ErrorPages`]); files are served by
//! [`weft::static_files::StaticFiles`] (conditional requests, ranges, precompressed `.br` /
//! `.gz` siblings, traversal and symlink defences), and files of compressible types the folder
//! has no precompressed sibling for are compressed on the fly, once per version of the file
//! ([`CachedCompression`]). Where the server listens, its runtime,
//! TLS and h2c are the command's business (`main.rs`); this module holds what it serves and
//! where the `PORT` variable sends it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use weft::access_log::AccessLog;
use weft::compressed_cache::CachedCompression;
use weft::error_pages::ErrorPages;
use weft::prelude::*;

/// What `weft serve` serves, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The folder served; nothing outside it is ever read.
    pub root: PathBuf,
    /// A folder without an index file answers with an HTML listing of its entries.
    pub list_dirs: bool,
    /// A path that names no file answers with the root's `index.html` (a single-page app's
    /// client-side routes), instead of 404.
    pub spa: bool,
}

/// Why `weft serve` cannot start.
#[derive(Debug)]
pub enum ServeError {
    /// The folder to serve does not exist or cannot be read.
    Root {
        /// The folder as given.
        path: PathBuf,
        /// What the file system said.
        error: std::io::Error,
    },
    /// The folder to serve is a file, not a folder.
    NotAFolder(PathBuf),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Root { path, error } => {
                write!(f, "cannot serve {}: {error}", path.display())
            }
            ServeError::NotAFolder(path) => write!(f, "{} is not a folder", path.display()),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Root { error, .. } => Some(error),
            ServeError::NotAFolder(_) => None,
        }
    }
}

/// The absolute, symlink-free form of `dir`, checked to be a folder: what is announced, and
/// what every served path is checked to stay inside.
///
/// # Errors
/// [`ServeError`] when `dir` does not exist, cannot be read, or is not a folder.
pub fn root(dir: &Path) -> Result<PathBuf, ServeError> {
    let root = dir.canonicalize().map_err(|error| ServeError::Root {
        path: dir.to_owned(),
        error,
    })?;
    if !root.is_dir() {
        return Err(ServeError::NotAFolder(dir.to_owned()));
    }
    Ok(root)
}

/// The `weft serve` app for `options` (its root already made absolute by [`root`]).
pub fn app(options: &Options) -> App {
    // Outermost: the access line sees every answer, error pages included.
    let app = App::new().middleware(AccessLog::new());
    // Errors (404, 403, 416...) as an HTML page for browsers, problem+json for other clients.
    ErrorPages::new()
        .mount(app)
        // Compressible files, compressed once per version; ranges, precompressed siblings
        // and 304s are left alone.
        .middleware(CachedCompression::new())
        .static_files("/", files(options))
}

/// The file service: the defences are [`StaticFiles`]' defaults (dotfiles hidden, symlinks
/// followed only within the root), with the open-file cache on (as a production nginx
/// configures its `open_file_cache`): a file requested again within a second is answered
/// from memory without touching the disk, the price being that a changed file may be served
/// as it was for up to that second.
///
/// [`StaticFiles`]: weft::static_files::StaticFiles
fn files(options: &Options) -> weft::static_files::StaticFiles {
    weft::static_files::StaticFiles::new(&options.root)
        .index_file("index.html")
        .list_directories(options.list_dirs)
        .spa_fallback(options.spa)
        .precompressed(true)
        .open_file_cache(weft::static_files::OpenFileCache::new())
}

/// The variable that sets the port when `--listen` is not given (as on most hosting
/// platforms).
pub const PORT_VARIABLE: &str = "PORT";

/// A `PORT` value that is not a port number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPort(pub String);

impl fmt::Display for BadPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PORT_VARIABLE}={:?} is not a port number (0 to 65535)",
            self.0
        )
    }
}

impl std::error::Error for BadPort {}

/// The address `PORT=value` means: `127.0.0.1:value` (loopback, like the default `--listen`;
/// `--listen 0.0.0.0:PORT` opens it wider). `None` for an unset or empty variable.
///
/// # Errors
/// [`BadPort`] when the value is not a number from 0 to 65535.
pub fn port_address(value: Option<&str>) -> Result<Option<SocketAddr>, BadPort> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let port: u16 = value.parse().map_err(|_| BadPort(value.to_owned()))?;
    Ok(Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
}

/// The line `weft serve` prints for each address it listens on, e.g.
/// `weft: serving /srv/site on http://127.0.0.1:8080/`.
pub fn announcement(root: &Path, scheme: &str, address: SocketAddr) -> String {
    format!("weft: serving {} on {scheme}://{address}/", root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_means_loopback_at_that_port() {
        assert_eq!(
            port_address(Some("9000")),
            Ok(Some("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            port_address(Some(" 0 ")),
            Ok(Some("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(port_address(None), Ok(None));
        assert_eq!(port_address(Some("")), Ok(None));
    }

    #[test]
    fn a_port_that_is_not_one_is_refused() {
        for bad in ["http", "65536", "-1", "80 81"] {
            let error = port_address(Some(bad)).unwrap_err();
            assert!(error.to_string().contains("not a port"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_root_must_be_an_existing_folder() {
        let here = root(Path::new(".")).unwrap();
        assert!(here.is_absolute());
        assert!(matches!(
            root(Path::new("/no/such/folder/for/weft")),
            Err(ServeError::Root { .. })
        ));
        assert!(matches!(
            root(Path::new("Cargo.toml")),
            Err(ServeError::NotAFolder(_))
        ));
    }

    #[test]
    fn the_announcement_names_the_folder_and_url() {
        let line = announcement(
            Path::new("/srv/site"),
            "http",
            "127.0.0.1:8080".parse().unwrap(),
        );
        assert_eq!(line, "weft: serving /srv/site on http://127.0.0.1:8080/");
    }
}
