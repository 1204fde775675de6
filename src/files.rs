//! Private files: everything keyward keeps on disk (the SQLite database and its WAL and shared
//! memory files, the master key, emails written as `.eml` files, which may carry a set-password
//! link) is readable by keyward's own account only: directories 0700, files 0600, whatever the
//! umask. Files are created that way; at start, anything more open is reported and narrowed.

use std::path::Path;

/// Mode bits that let another account in.
#[cfg(unix)]
const OPEN_TO_OTHERS: u32 = 0o077;

/// Creates `dir` (and its parents) if needed and makes it private (0700), saying so when it was
/// open to others. A directory keyward cannot change is reported, not an error.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let existed = dir.exists();
    std::fs::create_dir_all(dir)?;
    narrow(dir, 0o700, existed);
    Ok(())
}

/// Creates an empty file readable by this account only, unless it exists (then it is made
/// private like [`private_file`]).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            private_file(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Makes an existing file private (0600), saying so when it was open to others. A missing file
/// is fine.
pub fn private_file(path: &Path) {
    if path.exists() {
        narrow(path, 0o600, true);
    }
}

/// Makes a file keyward just wrote private, quietly (it was not open long: its directory is
/// private).
pub fn made_private(path: &Path) {
    narrow(path, 0o600, false);
}

/// Narrows `path` to `mode` when others may reach it; `report` says so in the log.
#[cfg(unix)]
fn narrow(path: &Path, mode: u32, report: bool) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let current = meta.permissions().mode() & 0o777;
    if current & OPEN_TO_OTHERS == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) if report => tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "a private file or directory was open to other accounts; narrowed it"
        ),
        Ok(()) => {}
        Err(e) => tracing::warn!(
            path = %path.display(),
            mode = format!("{current:o}"),
            error = %e,
            "a private file or directory is open to other accounts and keyward cannot change it"
        ),
    }
}

#[cfg(not(unix))]
fn narrow(_path: &Path, _mode: u32, _report: bool) {}

/// Makes the data directory and what keyward keeps in it private: the directory, the SQLite
/// files named by `sqlite_file` (the database, `-wal`, `-shm`), the master key files and the
/// `.eml` outbox.
pub fn secure_data_dir(data_dir: &Path, sqlite_file: Option<&Path>) -> std::io::Result<()> {
    private_dir(data_dir)?;
    if let Some(db) = sqlite_file {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            private_file(Path::new(&name));
        }
    }
    for name in ["master.key", "master.key.next", "master.key.lock"] {
        private_file(&data_dir.join(name));
    }
    let outbox = data_dir.join("outbox");
    if outbox.exists() {
        private_dir(&outbox)?;
        for entry in std::fs::read_dir(&outbox)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "eml") {
                private_file(&entry.path());
            }
        }
    }
    Ok(())
}

/// The file of a `sqlite:` URL, when it names one.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite:")?
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn open_files_and_directories_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("keyward.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(data.join("outbox")).unwrap();
        let eml = data.join("outbox/x.eml");
        std::fs::write(&eml, b"").unwrap();
        std::fs::set_permissions(&eml, std::fs::Permissions::from_mode(0o664)).unwrap();
        secure_data_dir(&data, Some(&db)).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&data.join("outbox")), 0o700);
        assert_eq!(mode(&eml), 0o600);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/keyward.db?mode=rwc"),
            Some("/tmp/x/keyward.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
