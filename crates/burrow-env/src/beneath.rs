//! Files below a root folder, opened so that no symlink leads out of it, not
//! even one that something inside the workspace swaps between a check and
//! the open.
//!
//! Checking a path (canonicalize, compare with the root) and then opening it by
//! name leaves a window: a process in the workspace (the agent's `bash`, a
//! build) can replace a folder or file with a link to `/etc` in between.
//! So every operation here goes through a descriptor of the root:
//!
//! 1. `openat2(root, path, O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`:
//!    the kernel follows relative links that stay below the root and refuses
//!    anything else, atomically (Linux 5.6 and later).
//! 2. When that refuses (a final link, an absolute link that points back
//!    inside, or a kernel without `openat2`), the path is canonicalized, checked
//!    against the root, and its real components are opened one by one with
//!    `O_NOFOLLOW`: a link swapped in since the check fails the open instead of
//!    being followed.
//!
//! Reads then `fstat` the descriptor they read from: a FIFO, socket or device
//! is refused rather than read (opening uses `O_NONBLOCK`, so a FIFO without
//! a writer cannot hang the thread), and at most the size limit is read.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{DirEntry, EntryKind, EnvError, EnvResult, Metadata, WorkspacePath};

/// Cleared once the kernel says it has no `openat2` (ENOSYS); every open then
/// takes the component-by-component path.
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// A root folder and a descriptor of it.
pub struct Beneath {
    /// Canonical absolute path of the root.
    root: PathBuf,
    dir: OwnedFd,
}

impl Beneath {
    /// Opens `root`, which must be canonical (no links, absolute).
    pub fn new(root: &Path) -> EnvResult<Self> {
        let dir = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| EnvError::from_io(e.into(), &root.display().to_string()))?;
        Ok(Self { root: root.to_path_buf(), dir })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `f` on the blocking pool: every call here is a system call that can wait on the disk.
    pub async fn with<T: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&Beneath) -> EnvResult<T> + Send + 'static) -> EnvResult<T> {
        let fs = self.clone();
        blocking(move || f(&fs)).await
    }

    /// The host path of `path`, after checking that symlinks keep it inside:
    /// the canonical form of its nearest existing ancestor must lie below the
    /// root. A dangling link points somewhere that cannot be checked: refused.
    /// This is a check by name, good for a process's working folder; file
    /// operations use the descriptor-based methods below.
    pub fn resolve(&self, path: &WorkspacePath) -> EnvResult<PathBuf> {
        let host = if path.is_root() { self.root.clone() } else { self.root.join(path.as_str()) };
        let shown = path.to_string();
        let mut probe = host.as_path();
        loop {
            match std::fs::canonicalize(probe) {
                Ok(real) if real.starts_with(&self.root) => return Ok(host),
                Ok(_) => return Err(EnvError::Escape(shown)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match probe.parent() {
                    _ if probe.symlink_metadata().is_ok() => return Err(EnvError::Escape(shown)),
                    Some(parent) if parent.starts_with(&self.root) => probe = parent,
                    _ => return Err(EnvError::Escape(shown)),
                },
                Err(e) => return Err(EnvError::from_io(e, &shown)),
            }
        }
    }

    /// Opens `path` with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`), confined as
    /// the module says. `O_PATH` opens give a descriptor of the final target.
    pub fn open(&self, path: &WorkspacePath, flags: OFlags, mode: Mode) -> EnvResult<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let name = if path.is_root() { "." } else { path.as_str() };
        if OPENAT2.load(Ordering::Relaxed) {
            match rfs::openat2(&self.dir, name, flags, mode, ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS) {
                Ok(fd) if !(flags.contains(OFlags::PATH) && is_link(&fd)) => return Ok(fd),
                // A final link (O_PATH opened the link itself, or O_NOFOLLOW
                // refused it), an absolute link, a resolution race: resolve by hand.
                Ok(_) | Err(Errno::LOOP | Errno::XDEV | Errno::AGAIN | Errno::NOTDIR | Errno::PERM) => {}
                Err(Errno::NOSYS) => OPENAT2.store(false, Ordering::Relaxed),
                Err(e) => return Err(io_error(e, path)),
            }
        }
        let real = self.resolve_real(path)?;
        self.open_components(&real, flags, mode, path)
    }

    /// The canonical path of an existing `path`, relative to the root.
    fn resolve_real(&self, path: &WorkspacePath) -> EnvResult<PathBuf> {
        let host = self.resolve(path)?;
        let real = std::fs::canonicalize(&host).map_err(|e| EnvError::from_io(e, &path.to_string()))?;
        match real.strip_prefix(&self.root) {
            Ok(rel) => Ok(rel.to_path_buf()),
            Err(_) => Err(EnvError::Escape(path.to_string())),
        }
    }

    /// Opens a canonical relative path one real component at a time, never
    /// following a link: one swapped in since canonicalizing is refused.
    fn open_components(&self, real: &Path, flags: OFlags, mode: Mode, shown: &WorkspacePath) -> EnvResult<OwnedFd> {
        let names: Vec<&OsStr> = real.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
        let escape = |e: Errno| match e {
            Errno::LOOP | Errno::NOTDIR => EnvError::Escape(format!("{shown} (it changed while being opened)")),
            e => io_error(e, shown),
        };
        let Some((last, dirs)) = names.split_last() else {
            return rfs::openat(&self.dir, ".", flags, mode).map_err(|e| io_error(e, shown));
        };
        let mut at: Option<OwnedFd> = None;
        for name in dirs {
            let parent = at.as_ref().unwrap_or(&self.dir);
            let next = rfs::openat(parent, *name, OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(escape)?;
            at = Some(next);
        }
        let fd =
            rfs::openat(at.as_ref().unwrap_or(&self.dir), *last, flags, mode).map_err(|e| if e == Errno::LOOP { escape(e) } else { io_error(e, shown) })?;
        if flags.contains(OFlags::PATH) && is_link(&fd) {
            return Err(escape(Errno::LOOP));
        }
        Ok(fd)
    }

    /// A descriptor of the folder `path` (for the `*at` calls).
    fn dir_fd(&self, path: &WorkspacePath) -> EnvResult<OwnedFd> {
        self.open(path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
    }

    /// Reads a whole regular file of at most `max_bytes`.
    pub fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        let fd = self.open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY, Mode::empty())?;
        let st = rfs::fstat(&fd).map_err(|e| io_error(e, path))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(EnvError::IsADirectory(path.to_string())),
            other => return Err(not_a_file(path, other)),
        }
        let size = st.st_size.max(0) as u64;
        if size > max_bytes {
            return Err(EnvError::TooLarge { path: path.to_string(), size, limit: max_bytes });
        }
        let mut buf = Vec::with_capacity(size as usize);
        // The file may grow after the fstat: read one byte past the limit to notice.
        std::fs::File::from(fd).take(max_bytes.saturating_add(1)).read_to_end(&mut buf).map_err(|e| EnvError::from_io(e, &path.to_string()))?;
        if buf.len() as u64 > max_bytes {
            return Err(EnvError::TooLarge { path: path.to_string(), size: buf.len() as u64, limit: max_bytes });
        }
        Ok(Bytes::from(buf))
    }

    pub fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        let fd = self.open(path, OFlags::PATH, Mode::empty())?;
        let st = rfs::fstat(&fd).map_err(|e| io_error(e, path))?;
        let kind = if FileType::from_raw_mode(st.st_mode) == FileType::Directory { EntryKind::Directory } else { EntryKind::File };
        let modified_ms = u64::try_from(st.st_mtime).ok().map(|s| s * 1000 + st.st_mtime_nsec as u64 / 1_000_000);
        Ok(Metadata { kind, size: st.st_size.max(0) as u64, modified_ms })
    }

    /// The entries of a folder, symlinks left out (see `Env::list`).
    pub fn list(&self, path: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        let fd = self.open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let mut out = Vec::new();
        for (name, ft) in entries(fd).map_err(|e| io_error(e, path))? {
            let kind = match ft {
                FileType::Symlink => continue,
                FileType::Directory => EntryKind::Directory,
                _ => EntryKind::File,
            };
            out.push(DirEntry { name: String::from_utf8_lossy(&name).into_owned(), kind });
        }
        Ok(out)
    }

    /// Creates `path` and the folders above it; returns a descriptor of it.
    pub fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<OwnedFd> {
        match self.dir_fd(path) {
            Err(EnvError::NotFound(_)) if !path.is_root() => {
                let parent = self.mkdir_all(&path.parent().unwrap_or_default())?;
                match rfs::mkdirat(&parent, path.file_name(), Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_error(e, path)),
                }
                self.dir_fd(path)
            }
            other => other,
        }
    }

    /// Writes `data` to `path` atomically: a temporary file beside it, then a
    /// rename, both relative to the folder's descriptor. A file it replaces
    /// keeps its mode; a new one gets 0666 less the umask.
    pub fn write(&self, path: &WorkspacePath, data: &[u8]) -> EnvResult<()> {
        let name = path.file_name();
        if path.is_root() {
            return Err(EnvError::IsADirectory(path.to_string()));
        }
        let dir = self.mkdir_all(&path.parent().unwrap_or_default())?;
        let old = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
        let old_mode = match old.as_ref().map(|st| FileType::from_raw_mode(st.st_mode)) {
            Some(FileType::Directory) => return Err(EnvError::IsADirectory(path.to_string())),
            Some(FileType::RegularFile) => old.map(|st| Mode::from_raw_mode(st.st_mode & 0o7777)),
            _ => None,
        };
        let tmp = format!(".burrow-{:016x}", u64::from_le_bytes(crate::id::random()));
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&dir, tmp.as_str(), flags, Mode::from_raw_mode(0o666)).map_err(|e| io_error(e, path))?;
        let written = (|| {
            let mut file = std::fs::File::from(fd);
            std::io::Write::write_all(&mut file, data)?;
            if let Some(mode) = old_mode {
                rfs::fchmod(&file, mode)?;
            }
            rfs::renameat(&dir, tmp.as_str(), &dir, name)?;
            Ok::<(), std::io::Error>(())
        })();
        if let Err(e) = written {
            let _ = rfs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            return Err(EnvError::from_io(e, &path.to_string()));
        }
        Ok(())
    }

    /// Removes a file or link (not its target), or a folder with everything in it.
    pub fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::InvalidInput("refusing to remove the workspace root".into()));
        }
        let dir = self.dir_fd(&path.parent().unwrap_or_default())?;
        let name = path.file_name();
        let st = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_error(e, path))?;
        let removed = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree(&dir, OsStr::new(name))
        } else {
            rfs::unlinkat(&dir, name, AtFlags::empty())
        };
        removed.map_err(|e| io_error(e, path))
    }

    /// Renames `from` to `to`, creating the folders above `to`.
    pub fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        if from.is_root() || to.is_root() {
            return Err(EnvError::InvalidInput(format!("cannot move {from} to {to}")));
        }
        let src = self.dir_fd(&from.parent().unwrap_or_default())?;
        rfs::statat(&src, from.file_name(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_error(e, from))?;
        let dst = self.mkdir_all(&to.parent().unwrap_or_default())?;
        rfs::renameat(&src, from.file_name(), &dst, to.file_name()).map_err(|e| EnvError::from_io(e.into(), &format!("{from} -> {to}")))
    }
}

/// Runs blocking filesystem work off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> EnvResult<T> + Send + 'static) -> EnvResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| EnvError::Io(format!("blocking task failed: {e}")))?
}

/// Opens `rel` below `beneath`'s root as `search::grep::open_regular` opens a
/// walked file: text search in the local environment goes through the root's
/// descriptor, so that no link swapped in during the walk leads outside.
pub fn open_regular_beneath(beneath: &Beneath, rel: &WorkspacePath) -> std::io::Result<std::fs::File> {
    let fd = beneath.open(rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY, Mode::empty()).map_err(std::io::Error::other)?;
    crate::search::grep::regular(fd)
}

fn is_link(fd: &OwnedFd) -> bool {
    rfs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// The names and types in a folder, without `.` and `..`.
fn entries(fd: OwnedFd) -> Result<Vec<(Vec<u8>, FileType)>, Errno> {
    let mut dir = rfs::Dir::new(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let mut ft = entry.file_type();
        if ft == FileType::Unknown {
            // Some file systems do not fill in d_type: ask, without following.
            let at = dir.fd()?;
            ft = rfs::statat(at, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW).map(|st| FileType::from_raw_mode(st.st_mode))?;
        }
        out.push((name.to_vec(), ft));
    }
    Ok(out)
}

/// Removes the folder `name` in `parent` with everything in it, never
/// following a link (a link inside is removed, not what it points to).
fn remove_tree(parent: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let fd = rfs::openat(parent, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let here = rfs::openat(&fd, ".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    for (child, ft) in entries(fd)? {
        let child = OsStr::from_bytes(&child);
        if ft == FileType::Directory {
            remove_tree(&here, child)?;
        } else {
            rfs::unlinkat(&here, child, AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn io_error(e: Errno, path: &WorkspacePath) -> EnvError {
    EnvError::from_io(e.into(), &path.to_string())
}

fn not_a_file(path: &WorkspacePath, ft: FileType) -> EnvError {
    let what = match ft {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    };
    EnvError::InvalidInput(format!("{path} is {what}; only regular files are read"))
}
