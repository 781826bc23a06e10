//! Directory listings (off unless enabled): an HTML page of the entries, names escaped in
//! the text and percent-encoded in the links, with sizes and dates. At most
//! [`MAX_ENTRIES`] entries are read, so a huge directory cannot make a huge page.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use crate::problem::escape_html;

/// At most this many entries are listed.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// What a path segment in a link leaves unencoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One entry of a listing.
#[derive(Debug)]
pub(crate) struct Entry {
    name: String,
    is_dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

/// Reads `dir` (blocking): entries that are not UTF-8 are skipped, hidden ones unless
/// `dotfiles`; sorted directories first, then by name.
pub(crate) fn read_entries(dir: &Path, dotfiles: bool) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)?.take(MAX_ENTRIES) {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') && !dotfiles {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        entries.push(Entry {
            name,
            is_dir: metadata.is_dir(),
            size: metadata.len(),
            modified: metadata.modified().ok(),
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// The HTML page listing `entries` of the directory shown as `title` (the request path).
pub(crate) fn render(title: &str, entries: &[Entry]) -> String {
    let title = escape_html(title);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n\
         <tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n"
    );
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let href = percent_encoding::utf8_percent_encode(&entry.name, SEGMENT);
        let size = if entry.is_dir {
            "-".to_owned()
        } else {
            entry.size.to_string()
        };
        let date = entry
            .modified
            .map(httpdate::fmt_http_date)
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td><a href=\"./{href}{slash}\">{}{slash}</a></td><td>{size}</td><td>{date}</td></tr>",
            escape_html(&entry.name)
        );
    }
    page.push_str("</table></body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_directory_lists_at_most_max_entries() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..=MAX_ENTRIES {
            std::fs::File::create(dir.path().join(index.to_string())).unwrap();
        }
        assert_eq!(read_entries(dir.path(), false).unwrap().len(), MAX_ENTRIES);
    }

    #[test]
    fn names_are_escaped_and_links_encoded() {
        let entries = [Entry {
            name: "<script>alert(1)</script>\".txt".to_owned(),
            is_dir: false,
            size: 3,
            modified: None,
        }];
        let page = render("/<b>/", &entries);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;.txt"));
        assert!(page.contains("href=\"./%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22.txt\""));
    }
}
