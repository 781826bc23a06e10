//! From a [`SafePath`] to what to send (blocking: call on the blocking pool): the symlink
//! policy, dotfiles, directories (index file, listing, the trailing-slash redirect), the SPA
//! fallback, and the precompressed sibling the client accepts, opened.
//!
//! Everything the response says (length, dates, tag) comes from the metadata of the opened
//! handle, never from a path looked up again.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Symlinks;
use super::listing::{self, Entry};
use super::path::SafePath;
use crate::assets::AssetManifest;
use crate::compression::{AcceptEncoding, Choice, Coding};

/// The settings resolution needs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The canonical root.
    pub(crate) root: PathBuf,
    pub(crate) index: Option<String>,
    pub(crate) listing: bool,
    pub(crate) spa: bool,
    pub(crate) dotfiles: bool,
    pub(crate) symlinks: Symlinks,
    pub(crate) precompressed: bool,
    /// Content-hashed names served from their logical file, without copies.
    pub(crate) manifest: Option<Arc<AssetManifest>>,
}

/// What a request resolved to.
pub(crate) enum Resolved {
    /// A file, opened.
    File(Box<Opened>),
    /// A directory to list.
    Listing(Vec<Entry>),
    /// A directory asked for without its trailing slash.
    RedirectToSlash,
    /// Nothing to serve (`404`).
    NotFound,
    /// Refused: a symlink against the policy, or no permission (`403`).
    Forbidden,
}

/// An opened file and what describes it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) file: File,
    /// From the open handle.
    pub(crate) metadata: Metadata,
    /// The file opened (a `.br` or `.gz` sibling, maybe).
    pub(crate) disk_path: PathBuf,
    /// The name the client asked for, which gives the type and cache policy.
    pub(crate) logical: PathBuf,
    /// The content coding of the opened sibling.
    pub(crate) coding: Option<Coding>,
    /// Whether a precompressed sibling exists, so that the answer varies by encoding.
    pub(crate) vary: bool,
    /// Found through the asset manifest: the logical name whose content the (hashed) name
    /// asked for promises; the caller checks the content's hash before serving it.
    pub(crate) manifest_logical: Option<String>,
}

/// A path looked up under the symlink policy.
enum Located {
    Found(PathBuf, Metadata),
    Missing,
    Forbidden,
}

/// Resolves `path`; `redirect_root` tells whether the mount point itself, asked for without
/// a slash, is redirected (only when the slash form is routed too).
pub(crate) fn resolve(
    config: &Config,
    path: &SafePath,
    accept: &AcceptEncoding,
    redirect_root: bool,
) -> Resolved {
    if !config.dotfiles && path.has_hidden_segment() {
        return Resolved::NotFound;
    }
    let relative = path.to_path_buf();
    match locate(config, &relative) {
        Located::Forbidden => Resolved::Forbidden,
        Located::Missing => {
            from_manifest(config, path, &relative).unwrap_or_else(|| spa_fallback(config, accept))
        }
        Located::Found(disk, metadata) if metadata.is_file() => {
            if path.trailing_slash() {
                return Resolved::NotFound;
            }
            open(config, disk, relative, accept)
        }
        Located::Found(disk, metadata) if metadata.is_dir() => {
            directory(config, path, &disk, &relative, accept, redirect_root)
        }
        Located::Found(..) => Resolved::NotFound,
    }
}

fn directory(
    config: &Config,
    path: &SafePath,
    disk: &Path,
    relative: &Path,
    accept: &AcceptEncoding,
    redirect_root: bool,
) -> Resolved {
    let index = config.index.as_ref().and_then(|name| {
        let logical = relative.join(name);
        match locate(config, &logical) {
            Located::Found(found, metadata) if metadata.is_file() => Some((found, logical)),
            _ => None,
        }
    });
    if index.is_none() && !config.listing {
        return spa_fallback(config, accept);
    }
    if !path.trailing_slash() && (!path.is_root() || redirect_root) {
        return Resolved::RedirectToSlash;
    }
    match index {
        Some((found, logical)) => open(config, found, logical, accept),
        None => match listing::read_entries(disk, config.dotfiles) {
            Ok(entries) => Resolved::Listing(entries),
            Err(_) => Resolved::Forbidden,
        },
    }
}

/// A content-hashed name the manifest knows (`app.3f9a2c1b.js`), served from its logical
/// file (`app.js`) under the hashed name, so that its type and cache policy are the hashed
/// name's. Precompressed siblings are not looked for: the content must be the one hashed.
fn from_manifest(config: &Config, path: &SafePath, relative: &Path) -> Option<Resolved> {
    let manifest = config.manifest.as_ref()?;
    if path.trailing_slash() {
        return None;
    }
    let logical = manifest.logical(&path.segments().join("/"))?;
    let Located::Found(disk, metadata) = locate(config, Path::new(logical)) else {
        return None;
    };
    if !metadata.is_file() {
        return None;
    }
    let no_coding = AcceptEncoding::parse("");
    Some(match open(config, disk, relative.to_owned(), &no_coding) {
        Resolved::File(mut opened) => {
            opened.manifest_logical = Some(logical.to_owned());
            Resolved::File(opened)
        }
        other => other,
    })
}

/// The root's index file for an unknown path, when the SPA fallback is on.
fn spa_fallback(config: &Config, accept: &AcceptEncoding) -> Resolved {
    let Some(index) = config.index.as_ref().filter(|_| config.spa) else {
        return Resolved::NotFound;
    };
    let logical = PathBuf::from(index);
    match locate(config, &logical) {
        Located::Found(found, metadata) if metadata.is_file() => {
            open(config, found, logical, accept)
        }
        _ => Resolved::NotFound,
    }
}

/// Opens `disk` (or the precompressed sibling the client prefers).
fn open(config: &Config, disk: PathBuf, logical: PathBuf, accept: &AcceptEncoding) -> Resolved {
    let mut siblings = Vec::new();
    if config.precompressed {
        for (coding, extension) in [(Coding::Brotli, "br"), (Coding::Gzip, "gz")] {
            let mut name = logical.clone().into_os_string();
            name.push(".");
            name.push(extension);
            if let Located::Found(found, metadata) = locate(config, Path::new(&name))
                && metadata.is_file()
            {
                siblings.push((coding, found));
            }
        }
    }
    let offered: Vec<Coding> = siblings.iter().map(|(coding, _)| *coding).collect();
    let (disk_path, coding) = match accept.choose(&offered) {
        Choice::Encode(chosen) => siblings
            .into_iter()
            .find(|(coding, _)| *coding == chosen)
            .map_or((disk, None), |(_, found)| (found, Some(chosen))),
        // Identity refused and nothing else available: identity anyway (RFC 9110 §12.5.3
        // lets a server ignore the field rather than answer 406).
        Choice::Identity | Choice::NotAcceptable => (disk, None),
    };
    let file = match File::open(&disk_path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            return Resolved::Forbidden;
        }
        Err(_) => return Resolved::NotFound,
    };
    if !opened_within_root(config, &file) {
        return Resolved::Forbidden;
    }
    match file.metadata() {
        Ok(metadata) if metadata.is_file() => Resolved::File(Box::new(Opened {
            file,
            metadata,
            disk_path,
            logical,
            coding,
            vary: !offered.is_empty(),
            manifest_logical: None,
        })),
        _ => Resolved::NotFound,
    }
}

/// Whether the file opened is really under the root (unless links may go anywhere): a
/// directory swapped for a symlink between the lookup and the open is caught here. Linux
/// tells an open file's path (`/proc/self/fd`); elsewhere the lookup's check is the only one.
#[cfg(target_os = "linux")]
fn opened_within_root(config: &Config, file: &File) -> bool {
    use std::os::fd::AsRawFd;
    if config.symlinks == Symlinks::Follow {
        return true;
    }
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(real) => real.starts_with(&config.root),
        // No /proc (a minimal container): the lookup's check stands.
        Err(_) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn opened_within_root(_config: &Config, _file: &File) -> bool {
    true
}

/// Looks `relative` up under the root by the symlink policy.
fn locate(config: &Config, relative: &Path) -> Located {
    let candidate = config.root.join(relative);
    match config.symlinks {
        Symlinks::Follow => found(candidate),
        Symlinks::WithinRoot => match candidate.canonicalize() {
            Ok(real) if real.starts_with(&config.root) => found(real),
            Ok(_) => Located::Forbidden,
            Err(error) => missing(&error),
        },
        Symlinks::Never => {
            let mut current = config.root.clone();
            for component in relative.components() {
                current.push(component);
                match std::fs::symlink_metadata(&current) {
                    Ok(metadata) if metadata.file_type().is_symlink() => {
                        return Located::Forbidden;
                    }
                    Ok(_) => {}
                    Err(error) => return missing(&error),
                }
            }
            found(current)
        }
    }
}

fn found(path: PathBuf) -> Located {
    match std::fs::metadata(&path) {
        Ok(metadata) => Located::Found(path, metadata),
        Err(error) => missing(&error),
    }
}

/// A lookup error: no permission is `403`, anything else (missing, not a directory, a name
/// too long) is `404`.
fn missing(error: &std::io::Error) -> Located {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        Located::Forbidden
    } else {
        Located::Missing
    }
}
