//! The order OpenCode lists a directory in: directories first, then each group
//! by JavaScript's `localeCompare` of the entry paths, which under Bun is ICU's
//! root collation. Punctuation sorts before digits and digits before letters;
//! case and accents only break ties, so `README.md` comes after `new.txt` and
//! `été` right after `ete`.

use std::cmp::Ordering;
use std::sync::LazyLock;

use icu_collator::options::CollatorOptions;
use icu_collator::{Collator, CollatorBorrowed};

use crate::env::{DirEntry, EntryKind};

static ROOT_COLLATION: LazyLock<Option<CollatorBorrowed<'static>>> = LazyLock::new(|| Collator::try_new(Default::default(), CollatorOptions::default()).ok());

/// `a.localeCompare(b)`, made total: strings the collation calls equal are
/// ordered by their bytes.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    let collated = ROOT_COLLATION.as_ref().map_or(Ordering::Equal, |c| c.compare(a, b));
    collated.then_with(|| a.cmp(b))
}

/// Sorts directory entries as OpenCode lists them. Directories are compared
/// with their trailing `/`, as OpenCode compares paths, not names.
pub fn sort_listing(entries: &mut Vec<DirEntry>) {
    let mut keyed: Vec<(bool, String, DirEntry)> = entries
        .drain(..)
        .map(|e| {
            let is_dir = e.kind == EntryKind::Directory;
            let key = if is_dir { format!("{}/", e.name) } else { e.name.clone() };
            (!is_dir, key, e)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| locale_compare(&a.1, &b.1)));
    entries.extend(keyed.into_iter().map(|(_, _, e)| e));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_opencodes_listing_order() {
        // The order OpenCode 1.18.33 gave for these names (a folder of them, listed by GET /file).
        let files = [
            "_a", "-a", ".a", "@at", "#h", "~x", "$d", "1", "10", "2", "a", "A", "a b", "a_b", "a-b", "a.b", "a(1)", "a+b", "b", "B.txt", "e", "é", "ézed",
            "f", "zed", "Zed",
        ];
        let dirs = ["x_y", "x-y", "X.Y", "x"];
        let mut entries: Vec<DirEntry> = files.iter().rev().map(|n| DirEntry { name: n.to_string(), kind: EntryKind::File }).collect();
        entries.extend(dirs.iter().map(|n| DirEntry { name: n.to_string(), kind: EntryKind::Directory }));
        sort_listing(&mut entries);
        let got: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let want: Vec<&str> = dirs.iter().chain(files.iter()).copied().collect();
        assert_eq!(got, want);
    }
}
