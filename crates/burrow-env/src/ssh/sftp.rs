//! Files over SFTP, on absolute remote paths: listings, stat, pipelined reads
//! and writes, atomic replacement (temp file, then `posix-rename@openssh.com`),
//! and `realpath` for confinement. Callers check paths against the root first.

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::connect::Conn;
use crate::env::{DirEntry, EntryKind, EnvError, EnvResult, Metadata};

/// Bytes per read or write request: OpenSSH's limit (256 KiB less headers).
const CHUNK: u64 = 255 * 1024;
/// Requests in flight at once for one file.
const WINDOW: usize = 8;

/// Maps an SFTP failure about `path` to the error a client understands.
pub fn map_err(e: SftpError, path: &str) -> EnvError {
    match e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => EnvError::NotFound(path.to_string()),
            StatusCode::PermissionDenied => EnvError::PermissionDenied(path.to_string()),
            StatusCode::NoConnection | StatusCode::ConnectionLost => EnvError::Unavailable(format!("{path}: {}", s.error_message)),
            StatusCode::OpUnsupported => EnvError::Unsupported(format!("{path}: {}", s.error_message)),
            _ => EnvError::Io(format!("{path}: {}", s.error_message)),
        },
        SftpError::Timeout => EnvError::Unavailable(format!("{path}: the SFTP server did not answer in time")),
        SftpError::UnexpectedBehavior(m) if m.contains("closed") || m.contains("dropped") => EnvError::Unavailable(format!("{path}: the SFTP channel closed")),
        other => EnvError::Io(format!("{path}: {other}")),
    }
}

fn kind_of(attrs: &FileAttributes) -> EntryKind {
    if attrs.is_dir() {
        EntryKind::Directory
    } else {
        EntryKind::File
    }
}

pub fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((p, _)) => p,
        None => ".",
    }
}

/// The canonical form of `path` (symlinks resolved) as the server sees it.
/// A path whose tail does not exist yet is resolved through its nearest
/// existing ancestor, with the missing components appended.
pub async fn realpath(sftp: &RawSftpSession, path: &str) -> EnvResult<String> {
    let mut probe = path.trim_end_matches('/').to_string();
    let mut rest: Vec<String> = Vec::new();
    loop {
        match sftp.realpath(probe.as_str()).await {
            Ok(name) => {
                let mut real = name.files.into_iter().next().map(|f| f.filename).unwrap_or_default();
                for part in rest.iter().rev() {
                    if !real.ends_with('/') {
                        real.push('/');
                    }
                    real.push_str(part);
                }
                return Ok(real);
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile && probe.len() > 1 => {
                // A dangling symlink names something we cannot see: refuse, as locally.
                if sftp.lstat(probe.as_str()).await.is_ok() {
                    return Err(EnvError::Escape(path.to_string()));
                }
                let (up, name) = probe.rsplit_once('/').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or_default();
                rest.push(name);
                probe = if up.is_empty() { "/".into() } else { up };
            }
            Err(e) => return Err(map_err(e, path)),
        }
    }
}

pub async fn stat(sftp: &RawSftpSession, path: &str) -> EnvResult<Metadata> {
    let attrs = sftp.stat(path).await.map_err(|e| map_err(e, path))?.attrs;
    Ok(Metadata { kind: kind_of(&attrs), size: attrs.len(), modified_ms: attrs.mtime.map(|t| t as u64 * 1000) })
}

/// A directory's entries. Symlinks are left out, as in every environment
/// (see [`crate::env::Env::list`]).
pub async fn list(sftp: &RawSftpSession, dir: &str) -> EnvResult<Vec<DirEntry>> {
    let raw = match read_dir(sftp, dir).await {
        Ok(raw) => raw,
        // sftp-server reports opendir on a file as "no such file".
        Err(EnvError::NotFound(p)) => match sftp.stat(dir).await {
            Ok(a) if !a.attrs.is_dir() => return Err(EnvError::NotADirectory(p)),
            _ => return Err(EnvError::NotFound(p)),
        },
        Err(e) => return Err(e),
    };
    Ok(raw.into_iter().filter(|(_, attrs)| !attrs.is_symlink()).map(|(name, attrs)| DirEntry { name, kind: kind_of(&attrs) }).collect())
}

/// Raw entries (name, lstat attributes) of a directory, without `.` and `..`.
async fn read_dir(sftp: &RawSftpSession, dir: &str) -> EnvResult<Vec<(String, FileAttributes)>> {
    let handle = sftp.opendir(dir).await.map_err(|e| map_err(e, dir))?.handle;
    let mut out = Vec::new();
    let result = loop {
        match sftp.readdir(handle.as_str()).await {
            Ok(name) => out.extend(name.files.into_iter().filter(|f| f.filename != "." && f.filename != "..").map(|f| (f.filename, f.attrs))),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(out),
            Err(e) => break Err(map_err(e, dir)),
        }
    };
    let _ = sftp.close(handle).await;
    result
}

/// Reads a whole file, refusing one larger than `max_bytes`.
/// Only regular files: opening a FIFO or a device could block sftp-server,
/// which serves one request at a time, and with it every file request.
pub async fn read(sftp: &RawSftpSession, path: &str, max_bytes: u64) -> EnvResult<Bytes> {
    let attrs = sftp.stat(path).await.map_err(|e| map_err(e, path))?.attrs;
    if attrs.is_dir() {
        return Err(EnvError::IsADirectory(path.to_string()));
    }
    if !attrs.is_regular() {
        return Err(EnvError::InvalidInput(format!("{path} is not a regular file (a FIFO, socket or device)")));
    }
    let meta = Metadata { kind: EntryKind::File, size: attrs.len(), modified_ms: None };
    if meta.size > max_bytes {
        return Err(EnvError::TooLarge { path: path.to_string(), size: meta.size, limit: max_bytes });
    }
    let handle = sftp.open(path, OpenFlags::READ, FileAttributes::empty()).await.map_err(|e| map_err(e, path))?.handle;
    let result = read_all(sftp, &handle, path, meta.size, max_bytes).await;
    let _ = sftp.close(handle).await;
    result.map(Bytes::from)
}

/// Reads from offset 0 to end of file, up to `WINDOW` requests at a time,
/// sized by the `expected` length from stat. A short read (allowed by the
/// protocol) restarts the window where the data stopped; one that reaches the
/// expected length ends the read without a round trip to hear end-of-file.
async fn read_all(sftp: &RawSftpSession, handle: &str, path: &str, expected: u64, max_bytes: u64) -> EnvResult<Vec<u8>> {
    let mut data: Vec<u8> = Vec::with_capacity(expected.min(max_bytes) as usize);
    loop {
        let start = data.len() as u64;
        let wanted = (expected.saturating_sub(start) / CHUNK + 1).min(WINDOW as u64);
        let offsets = (0..wanted).map(|i| start + i * CHUNK);
        let mut replies = stream::iter(offsets).map(|off| async move { (off, sftp.read(handle, off, CHUNK as u32).await) }).buffered(WINDOW);
        while let Some((off, reply)) = replies.next().await {
            match reply {
                Ok(d) if off == data.len() as u64 => {
                    let short = (d.data.len() as u64) < CHUNK;
                    data.extend_from_slice(&d.data);
                    if data.len() as u64 > max_bytes {
                        return Err(EnvError::TooLarge { path: path.to_string(), size: data.len() as u64, limit: max_bytes });
                    }
                    if short && data.len() as u64 >= expected {
                        return Ok(data);
                    }
                    if short {
                        break;
                    }
                }
                // A later chunk after a short read: the gap is re-read next round.
                Ok(_) => break,
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => return Ok(data),
                Err(e) => return Err(map_err(e, path)),
            }
        }
    }
}

/// Writes `data` to `path`, creating or truncating it. Chunks go out `WINDOW` at a time.
pub async fn write_file(sftp: &RawSftpSession, path: &str, data: &[u8], attrs: FileAttributes, exclusive: bool) -> EnvResult<()> {
    let mut flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
    if exclusive {
        flags |= OpenFlags::EXCLUDE;
    }
    let handle = sftp.open(path, flags, attrs).await.map_err(|e| map_err(e, path))?.handle;
    let chunks = (data.len() as u64).div_ceil(CHUNK);
    let written = stream::iter(0..chunks)
        .map(|i| {
            let (start, end) = (i * CHUNK, ((i + 1) * CHUNK).min(data.len() as u64));
            let (handle, chunk) = (handle.clone(), data[start as usize..end as usize].to_vec());
            async move { sftp.write(handle, start, chunk).await.map_err(|e| map_err(e, path)).map(|_| ()) }
        })
        .buffer_unordered(WINDOW)
        .try_collect::<Vec<()>>()
        .await;
    let closed = sftp.close(handle).await.map_err(|e| map_err(e, path));
    written.and(closed.map(|_| ()))
}

/// Replaces `path` atomically: a temp file beside it, then a rename over it.
/// The mode of the file it replaces is kept.
pub async fn write_atomic(conn: &Conn, path: &str, data: &[u8]) -> EnvResult<()> {
    let sftp = &conn.sftp;
    let dir = parent(path);
    mkdir_all(sftp, dir).await?;
    let mut attrs = FileAttributes::empty();
    match sftp.stat(path).await {
        Ok(old) if old.attrs.is_dir() => return Err(EnvError::IsADirectory(path.to_string())),
        Ok(old) => attrs.permissions = old.attrs.permissions.map(|p| p & 0o7777),
        Err(_) => {}
    }
    let name = path.rsplit('/').next().unwrap_or("file");
    let tmp = format!("{}/.{name}.burrow-{:08x}.tmp", dir.trim_end_matches('/'), fastrand::u32(..));
    let result = async {
        write_file(sftp, &tmp, data, attrs, true).await?;
        rename_over(conn, &tmp, path).await
    }
    .await;
    if result.is_err() {
        let _ = sftp.remove(tmp.as_str()).await;
    }
    result
}

/// Renames `from` to `to`, replacing `to` if it exists, as rename(2) does.
/// Plain SFTP rename refuses an existing target, so this uses OpenSSH's
/// `posix-rename@openssh.com` when the server has it.
pub async fn rename_over(conn: &Conn, from: &str, to: &str) -> EnvResult<()> {
    let sftp = &conn.sftp;
    let shown = format!("{from} -> {to}");
    if conn.posix_rename {
        let mut body = Vec::with_capacity(8 + from.len() + to.len());
        for s in [from, to] {
            body.extend_from_slice(&(s.len() as u32).to_be_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        return match sftp.extended("posix-rename@openssh.com", body).await {
            Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(russh_sftp::protocol::Packet::Status(s)) => Err(map_err(SftpError::Status(s), &shown)),
            Ok(_) => Err(EnvError::Io(format!("{shown}: unexpected answer to posix-rename"))),
            Err(e) => Err(map_err(e, &shown)),
        };
    }
    // Without the extension: not atomic, but correct once the old file is gone.
    if let Ok(old) = sftp.lstat(to).await {
        if !old.attrs.is_dir() {
            sftp.remove(to).await.map_err(|e| map_err(e, to))?;
        }
    }
    sftp.rename(from, to).await.map(|_| ()).map_err(|e| map_err(e, &shown))
}

/// Creates `dir` and its missing ancestors.
pub async fn mkdir_all(sftp: &RawSftpSession, dir: &str) -> EnvResult<()> {
    match sftp.stat(dir).await {
        Ok(a) if a.attrs.is_dir() => return Ok(()),
        Ok(_) => return Err(EnvError::NotADirectory(dir.to_string())),
        Err(_) => {}
    }
    let mut at = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if let Err(e) = sftp.mkdir(at.as_str(), FileAttributes::empty()).await {
            match sftp.stat(at.as_str()).await {
                Ok(a) if a.attrs.is_dir() => {}
                Ok(_) => return Err(EnvError::NotADirectory(at)),
                Err(_) => return Err(map_err(e, &at)),
            }
        }
    }
    Ok(())
}

/// Removes a file, a symlink (not what it points to), or a directory tree.
pub async fn remove_all(sftp: &RawSftpSession, path: &str) -> EnvResult<()> {
    let attrs = sftp.lstat(path).await.map_err(|e| map_err(e, path))?.attrs;
    if !attrs.is_dir() {
        return sftp.remove(path).await.map(|_| ()).map_err(|e| map_err(e, path));
    }
    let entries = read_dir(sftp, path).await?;
    for (name, attrs) in entries {
        let child = format!("{}/{name}", path.trim_end_matches('/'));
        if attrs.is_dir() {
            Box::pin(remove_all(sftp, &child)).await?;
        } else {
            sftp.remove(child.as_str()).await.map_err(|e| map_err(e, &child))?;
        }
    }
    sftp.rmdir(path).await.map(|_| ()).map_err(|e| map_err(e, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
    }
}
