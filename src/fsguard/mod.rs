//! Safe files in shared directories: the store's and the trail's.
//!
//! The store and trail directories are written by the application's Unix user(s)
//! and by the administrator's CLI, often root. Two things must then hold:
//!
//! - **Nothing is followed.** Every file is opened relative to the directory's own
//!   descriptor with `O_NOFOLLOW`, and the directory itself with
//!   `O_DIRECTORY | O_NOFOLLOW`: a symbolic link planted in the directory (say
//!   `audit.head` → `/etc/shadow`) is refused, never written through by root. A
//!   regular file with more than one hard link is refused too (a link to a file
//!   elsewhere).
//! - **Nobody else can write it.** As ssh's `StrictModes`: a directory or file that
//!   others can write, or the group can write without being the configured sharing
//!   group, is refused; so is one owned by a user other than this process, root or
//!   the directory's owner (unless it belongs to the sharing group). Secrets (the
//!   store, the software seal key) must not be readable by others either.
//!
//! New files and directories get their modes explicitly (`fchmod`, whatever the
//! umask): owner-only (`0700`/`0600`) without a sharing group, `2770`/`0660` with
//! one. Root creating a file in a directory someone else owns hands the file to
//! the directory's owner, so the application can still open what the CLI made.
//!
//! Every refusal is one line naming the file and the command that fixes it.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

mod checks;

use checks::check_stat;

/// Who may share a directory besides its owner: `None` is owner-only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sharing {
    /// The group shared by the application user(s) and the administrator.
    pub gid: Option<u32>,
}

impl Sharing {
    /// From an optional `group` setting: a group name, or a numeric gid.
    pub fn from_group(group: Option<&str>) -> Result<Sharing, String> {
        let Some(name) = group else {
            return Ok(Sharing::default());
        };
        if let Ok(gid) = name.parse::<u32>() {
            return Ok(Sharing { gid: Some(gid) });
        }
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(Sharing {
                gid: Some(g.gid.as_raw()),
            }),
            Ok(None) => Err(format!("group {name:?} does not exist")),
            Err(e) => Err(format!("cannot look up group {name:?}: {e}")),
        }
    }

    /// The mode a new directory gets.
    pub fn dir_mode(&self) -> u32 {
        if self.gid.is_some() {
            0o2770
        } else {
            0o700
        }
    }

    /// The mode a new file gets.
    pub fn file_mode(&self) -> u32 {
        if self.gid.is_some() {
            0o660
        } else {
            0o600
        }
    }
}

/// What a file is, for the checks it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Trail files, the head, the change stamp: no one outside may write them.
    Shared,
    /// The store's database files: no one outside may read them either (they hold
    /// the identities' argon2id hashes).
    Private,
    /// A key: as `Private`, and the group may read it only when it is the sharing
    /// group, never write it.
    Secret,
}

/// Why a file was refused or could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FileError {
    /// It does not exist.
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// It is not safe to use.
    #[error("{} {problem}; fix: {fix}", path.display())]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// The operating system refused.
    #[error("{}: {detail}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What it said.
        detail: String,
        /// `EACCES`/`EPERM`/`EROFS`.
        denied: bool,
        /// The `errno` (0 when not from the kernel).
        errno: i32,
    },
}

impl FileError {
    fn io(path: &Path, e: Errno) -> FileError {
        FileError::Io {
            path: path.to_path_buf(),
            detail: std::io::Error::from(e).to_string(),
            denied: matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS),
            errno: e.raw_os_error(),
        }
    }

    fn unsafe_(path: &Path, problem: String, fix: String) -> FileError {
        FileError::Unsafe {
            path: path.to_path_buf(),
            problem,
            fix,
        }
    }
}

/// How [`GuardedDir::open_file`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Read only; the file must exist.
    Read,
    /// Read and write, created if missing.
    ReadWrite,
    /// Read and append (`O_APPEND`), created if missing.
    Append,
    /// Read and write, created; an existing file is an error (`O_EXCL`).
    CreateNew,
}

/// Clears the `O_NONBLOCK` every open here starts with: opening a FIFO planted in
/// place of a file must fail the regular-file check, not block the caller.
fn blocking(fd: OwnedFd, path: &Path) -> Result<OwnedFd, FileError> {
    let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| FileError::io(path, e))?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK).map_err(|e| FileError::io(path, e))?;
    Ok(fd)
}

/// Checks a file named by an absolute path the administrator configured (PIN
/// file, seal key): opened following links (the administrator chose the path),
/// then checked through its descriptor. Returns the open file.
pub fn open_checked(path: &Path, kind: Kind, sharing: Sharing) -> Result<File, FileError> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => FileError::Missing(path.to_path_buf()),
        e => FileError::io(path, e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| FileError::io(path, e))?;
    // The owner of a configured secret must be this user or root.
    check_stat(path, &st, false, kind, sharing, None)?;
    Ok(File::from(blocking(fd, path)?))
}

/// A directory opened without following links and checked, whose files are all
/// opened relative to it.
#[derive(Debug)]
pub struct GuardedDir {
    fd: OwnedFd,
    path: PathBuf,
    owner: u32,
    sharing: Sharing,
}

impl GuardedDir {
    /// Opens and checks an existing directory (`Missing` if it does not exist).
    pub fn open(path: &Path, sharing: Sharing) -> Result<GuardedDir, FileError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(FileError::Missing(path.to_path_buf())),
            // ELOOP: the last component is a link; ENOTDIR: not a directory.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let st = rustix::fs::lstat(path).map_err(|e| FileError::io(path, e))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
                {
                    check_stat(path, &st, true, Kind::Shared, sharing, None)?;
                }
                return Err(FileError::io(path, Errno::NOTDIR));
            }
            Err(e) => return Err(FileError::io(path, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| FileError::io(path, e))?;
        check_stat(path, &st, true, Kind::Shared, sharing, Some(st.st_uid))?;
        Ok(GuardedDir {
            fd,
            path: path.to_path_buf(),
            owner: st.st_uid,
            sharing,
        })
    }

    /// Opens the directory, creating it (and its parents) first when missing, with
    /// the sharing mode; an existing one is checked, never re-moded.
    pub fn create(path: &Path, sharing: Sharing) -> Result<GuardedDir, FileError> {
        match GuardedDir::open(path, sharing) {
            Err(FileError::Missing(_)) => {}
            other => return other,
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FileError::Io {
                path: parent.to_path_buf(),
                detail: e.to_string(),
                denied: e.kind() == std::io::ErrorKind::PermissionDenied,
                errno: e.raw_os_error().unwrap_or(0),
            })?;
        }
        match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(FileError::io(path, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd =
            rustix::fs::open(path, flags, Mode::empty()).map_err(|e| FileError::io(path, e))?;
        if let Some(gid) = sharing.gid {
            rustix::fs::fchown(&fd, None, Some(rustix::fs::Gid::from_raw(gid)))
                .map_err(|e| FileError::io(path, e))?;
        }
        // After the chown, which clears the set-group-id bit.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(sharing.dir_mode()))
            .map_err(|e| FileError::io(path, e))?;
        GuardedDir::open(path, sharing)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in it (for messages).
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Checks `name` without following it: `None` when it does not exist.
    pub fn check(&self, name: &str, kind: Kind) -> Result<Option<()>, FileError> {
        let path = self.join(name);
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => check_stat(&path, &st, false, kind, self.sharing, Some(self.owner)).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(FileError::io(&path, e)),
        }
    }

    /// Opens `name` in the directory (never following a link), creating it with
    /// the sharing mode where `how` says so, and checks what was opened.
    pub fn open_file(&self, name: &str, how: How, kind: Kind) -> Result<File, FileError> {
        self.open_file_with(name, how, kind, OFlags::empty())
    }

    /// As [`GuardedDir::open_file`], with extra open flags (`O_NOATIME`).
    pub fn open_file_with(
        &self,
        name: &str,
        how: How,
        kind: Kind,
        extra: OFlags,
    ) -> Result<File, FileError> {
        let path = self.join(name);
        let base = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | extra;
        let access = match how {
            How::Read => OFlags::RDONLY,
            How::ReadWrite | How::CreateNew => OFlags::RDWR,
            How::Append => OFlags::RDWR | OFlags::APPEND,
        };
        let mode = Mode::from_raw_mode(self.sharing.file_mode());
        let mut created = false;
        let fd = if how == How::Read {
            rustix::fs::openat(&self.fd, name, base | access, Mode::empty())
        } else {
            // O_EXCL first, so a new file is known to be ours to set the mode of.
            match rustix::fs::openat(
                &self.fd,
                name,
                base | access | OFlags::CREATE | OFlags::EXCL,
                mode,
            ) {
                Ok(fd) => {
                    created = true;
                    Ok(fd)
                }
                Err(Errno::EXIST) if how != How::CreateNew => {
                    rustix::fs::openat(&self.fd, name, base | access, Mode::empty())
                }
                Err(e) => Err(e),
            }
        }
        .map_err(|e| match e {
            Errno::NOENT => FileError::Missing(path.clone()),
            Errno::LOOP => FileError::unsafe_(
                &path,
                "is a symbolic link (refused: it would be followed)".into(),
                format!("rm {}", path.display()),
            ),
            e => FileError::io(&path, e),
        })?;
        if created {
            self.adopt(&fd, &path)?;
        }
        let st = rustix::fs::fstat(&fd).map_err(|e| FileError::io(&path, e))?;
        check_stat(&path, &st, false, kind, self.sharing, Some(self.owner))?;
        Ok(File::from(blocking(fd, &path)?))
    }

    /// Gives a file this process just created its group, owner and mode.
    fn adopt(&self, fd: &OwnedFd, path: &Path) -> Result<(), FileError> {
        let me = rustix::process::geteuid().as_raw();
        let owner = (me == 0 && self.owner != 0).then(|| rustix::fs::Uid::from_raw(self.owner));
        let group = self.sharing.gid.map(rustix::fs::Gid::from_raw);
        if owner.is_some() || group.is_some() {
            rustix::fs::fchown(fd, owner, group).map_err(|e| FileError::io(path, e))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.sharing.file_mode()))
            .map_err(|e| FileError::io(path, e))
    }

    /// Writes `bytes` to a fresh temporary file and renames it over `name`
    /// (readers see either the old or the new content, never half).
    pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), FileError> {
        use std::io::Write;
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = format!(".{name}.{}.{n}.tmp", std::process::id());
        let mut file = self.open_file(&tmp, How::CreateNew, Kind::Shared)?;
        let renamed = file
            .write_all(bytes)
            .map_err(|e| FileError::Io {
                path: self.join(&tmp),
                detail: e.to_string(),
                denied: false,
                errno: e.raw_os_error().unwrap_or(0),
            })
            .and_then(|()| {
                rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                    .map_err(|e| FileError::io(&self.join(name), e))
            });
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        renamed
    }

    /// `fsync`s the directory (a new file's name is durable after it).
    pub fn sync(&self) -> Result<(), FileError> {
        rustix::fs::fsync(&self.fd).map_err(|e| FileError::io(&self.path, e))
    }
}

/// Opens an existing file for reading without following a link in its last
/// component (`O_NOFOLLOW`): the readers of the trail (`audit verify`, `tail`,
/// `search`), often run as root, never read through a link planted in it.
pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// The whole of `path`, read as [`open_nofollow`] opens it.
pub fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_nofollow(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
