//! `weft build-assets`: the real binary on a temporary directory, its manifest and hashed
//! copies checked against SHA-256 computed here.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// How long one run may take before it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `content` to `name` under `dir`, creating its directories.
fn write(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Runs `weft ARGS`, killing it after [`RUN_TIMEOUT`].
fn weft(args: &[&Path]) -> Output {
    let mut child = Command::new(WEFT)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("weft waited for").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("weft {args:?} still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("weft's output")
}

/// `name` with the first 8 hex digits of the SHA-256 of `content` before its extension.
fn expected_name(name: &str, content: &[u8]) -> String {
    let hash: String = Sha256::digest(content)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let (stem, extension) = name.rsplit_once('.').unwrap();
    format!("{stem}.{hash}.{extension}")
}

fn manifest(path: &Path) -> BTreeMap<String, String> {
    serde_json::from_str(&fs::read_to_string(path).expect("manifest written")).expect("JSON")
}

/// The files under `dir`, relative, `/`-separated, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    found
}

const CSS: &[u8] = b"body { color: #333 }\n";
const JS: &[u8] = b"console.log('weft');\n";

fn sources() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "css/styles.css", CSS);
    write(dir.path(), "app.js", JS);
    write(dir.path(), ".env", b"SECRET=1");
    dir
}

#[test]
fn copies_to_hashed_names_in_the_out_dir_and_writes_the_manifest() {
    let dir = sources();
    let out = tempfile::tempdir().unwrap();
    let ran = weft(&[
        Path::new("build-assets"),
        dir.path(),
        Path::new("--out"),
        out.path(),
    ]);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let manifest_path = out.path().join("manifest.json");
    assert!(stdout.contains("2 files"), "{stdout}");
    assert!(
        stdout.contains(&manifest_path.display().to_string()),
        "{stdout}"
    );

    let css = format!("css/{}", expected_name("styles.css", CSS));
    let js = expected_name("app.js", JS);
    let expected = BTreeMap::from([
        ("app.js".to_owned(), js.clone()),
        ("css/styles.css".to_owned(), css.clone()),
    ]);
    assert_eq!(manifest(&manifest_path), expected);
    let mut written = vec![css.clone(), js.clone(), "manifest.json".to_owned()];
    written.sort();
    assert_eq!(files(out.path()), written);
    assert_eq!(fs::read(out.path().join(&css)).unwrap(), CSS);
    assert_eq!(fs::read(out.path().join(&js)).unwrap(), JS);
}

#[test]
fn without_out_the_copies_go_alongside_and_a_second_run_changes_nothing() {
    let dir = sources();
    let ran = weft(&[Path::new("build-assets"), dir.path()]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let js = expected_name("app.js", JS);
    assert_eq!(fs::read(dir.path().join(&js)).unwrap(), JS);
    let first = manifest(&dir.path().join("manifest.json"));
    assert_eq!(first.get("app.js"), Some(&js));
    assert_eq!(first.len(), 2, "{first:?}");
    let before = files(dir.path());

    let again = weft(&[Path::new("build-assets"), dir.path()]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(manifest(&dir.path().join("manifest.json")), first);
    assert_eq!(files(dir.path()), before);
}

#[test]
fn a_missing_directory_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let ran = weft(&[Path::new("build-assets"), &missing]);
    assert!(!ran.status.success());
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains("nope"), "{stderr}");
}
