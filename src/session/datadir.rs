//! The data folder: private to the user who runs Burrow, and bounded.
//!
//! It holds every session: prompts, what the agent read from the workspace,
//! command output. So the folder is 0700 and its files 0600, set explicitly
//! when they are created (a umask of 022 would leave them readable by every
//! local user) and fixed at start for what an older version left readable.
//! SQLite gives `-wal` and `-shm` the mode of the database file, so a private
//! `burrow.db` keeps them private too.
//!
//! `tool-output/` (complete outputs of commands and tools, too long to show)
//! is pruned at start and after each new file: files older than the maximum
//! age go, then the oldest until the folder fits the maximum size.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::output::SPOOL_DIR;
use super::service::DB_FILE;

/// How much `tool-output/` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(7 * 24 * 3600), max_bytes: 256 << 20 }
    }
}

/// Set once at start from the command line; everything that writes outputs reads it.
static RETENTION: OnceLock<Retention> = OnceLock::new();

/// Sets the retention for this process (the first call wins).
pub fn set_retention(r: Retention) {
    let _ = RETENTION.set(r);
}

pub fn retention() -> Retention {
    RETENTION.get().copied().unwrap_or_default()
}

/// Creates `dir` (and its parents) and makes it 0700, whatever the umask.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Creates (or truncates) a file that only its owner can read: 0600.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Makes the data folder private before the store opens: the folder 0700,
/// the database (created empty if missing, which SQLite takes as a new
/// database) and its journal files 0600, and `tool-output/` likewise.
pub fn secure(data_dir: &Path) -> io::Result<()> {
    create_private_dir(data_dir)?;
    let db = data_dir.join(DB_FILE);
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&db)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        private_if_there(Path::new(&name), 0o600)?;
    }
    let spool = data_dir.join(SPOOL_DIR);
    if private_if_there(&spool, 0o700)? {
        for entry in std::fs::read_dir(&spool)?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                private_if_there(&entry.path(), 0o600)?;
            }
        }
    }
    Ok(())
}

/// Sets `mode` on `path` if it exists (never through a symlink); whether it did.
fn private_if_there(path: &Path, mode: u32) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(false),
        Ok(m) if m.permissions().mode() & 0o7777 == mode => Ok(true),
        Ok(_) => std::fs::set_permissions(path, Permissions::from_mode(mode)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes files in `dir` past the retention: older than its age, then the
/// oldest while the folder is larger than its size. `keep` (the file just
/// written) is never removed. Returns how many files went.
pub fn prune(dir: &Path, r: Retention, keep: Option<&Path>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, u64, std::path::PathBuf)> = Vec::new();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let path = entry.path();
        let modified = meta.modified().unwrap_or(now);
        let old = now.duration_since(modified).unwrap_or_default() > r.max_age;
        if old && keep != Some(path.as_path()) {
            removed += usize::from(std::fs::remove_file(&path).is_ok());
        } else {
            files.push((modified, meta.len(), path));
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, size, path) in files {
        if total <= r.max_bytes {
            break;
        }
        if keep == Some(path.as_path()) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed += 1;
            total -= size;
        }
    }
    removed
}

/// Prunes `tool-output/` off the async runtime, keeping `keep`.
pub fn prune_in_background(dir: &Path, keep: Option<&Path>) {
    let (dir, keep) = (dir.to_path_buf(), keep.map(Path::to_path_buf));
    tokio::task::spawn_blocking(move || {
        let removed = prune(&dir, retention(), keep.as_deref());
        if removed > 0 {
            tracing::debug!(removed, dir = %dir.display(), "pruned saved tool outputs");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_data_folder_and_its_files_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        // What an older version left: readable by everyone.
        std::fs::create_dir_all(data.join(SPOOL_DIR)).unwrap();
        for f in [DB_FILE, "burrow.db-wal", "tool-output/tool_1"] {
            std::fs::write(data.join(f), "x").unwrap();
            std::fs::set_permissions(data.join(f), Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(&data, Permissions::from_mode(0o755)).unwrap();
        secure(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(SPOOL_DIR)), 0o700);
        for f in [DB_FILE, "burrow.db-wal", "tool-output/tool_1"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
        // A fresh folder and database are private from the start.
        let fresh = tmp.path().join("a/b");
        secure(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join(DB_FILE)), 0o600);
        let f = fresh.join("out");
        create_private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
    }

    #[test]
    fn prune_drops_old_files_then_the_oldest_over_the_size() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        let put = |name: &str, size: usize, age: Duration| {
            let p = dir.join(name);
            std::fs::write(&p, vec![b'x'; size]).unwrap();
            File::options().write(true).open(&p).unwrap().set_modified(now - age).unwrap();
            p
        };
        put("ancient", 10, 30 * day);
        put("old", 100, 3 * day);
        put("middle", 100, 2 * day);
        let newest = put("newest", 100, Duration::ZERO);
        let r = Retention { max_age: 7 * day, max_bytes: 250 };
        assert_eq!(prune(dir, r, None), 2, "the ancient one for its age, the oldest of the rest for size");
        let mut left: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["middle", "newest"]);
        // The file just written stays, even when it alone is over the size.
        let r = Retention { max_age: 7 * day, max_bytes: 10 };
        assert_eq!(prune(dir, r, Some(&newest)), 1);
        assert!(newest.exists());
        assert_eq!(prune(&dir.join("missing"), r, None), 0);
    }
}
