//! `weft build-assets DIR [--out OUT]`: the cache-busting build step. Copies every asset to
//! its content-hashed name (`css/styles.css` → `css/styles.3f9a2c1b.css`) and writes the
//! `manifest.json` that `weft::assets::AssetManifest::load` reads at start-up (see
//! `weft::assets`).

use std::path::Path;

use weft::assets::{AssetError, BuildReport, write_hashed_copies};

/// Runs the build step and prints what it did: how many files, and where the copies and the
/// manifest went.
pub(crate) fn run(dir: &Path, out: Option<&Path>) -> Result<(), AssetError> {
    let report = write_hashed_copies(dir, out)?;
    println!("{}", summary(&report));
    Ok(())
}

/// One line: `weft build-assets: 3 files hashed into public, manifest public/manifest.json`.
fn summary(report: &BuildReport) -> String {
    let count = report.manifest.len();
    format!(
        "weft build-assets: {count} file{} hashed into {}, manifest {}",
        if count == 1 { "" } else { "s" },
        report.out_dir.display(),
        report.manifest_path.display()
    )
}
