//! The SQLite store's single-process lock: one `serve` per store file. Two daemons on one
//! SQLite file would each run the schedules and each send, and the second would take the
//! first one's leases for a crashed daemon's. The lock is an advisory `flock` on a file beside
//! the store, held for the life of the process: the kernel lets go of it when the process
//! ends, however it ends, so a `serve` that holds it knows every other `serve` of this store
//! is gone (and may give back their leases at once). Commands run by hand beside a `serve`
//! do not take it, except an import that writes the store in bulk (see `store::import`): it
//! holds the store alone for a while, and a `serve` started meanwhile is told so.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held while this process serves the store; released when dropped or when the process ends.
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    /// Takes the lock of the store at `store_path` for `command` (`serve`, `import`); the error
    /// names the process that holds it.
    pub fn acquire(store_path: &Path, command: &str) -> Result<ServeLock, String> {
        let path = lock_path(store_path);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(format!(
                "another backfeed process uses the store {} ({}); stop it first, or give this one its own [store] path",
                store_path.display(),
                holder.trim()
            ));
        }
        let _ = file.set_len(0);
        let _ = writeln!(
            file,
            "held by pid {} (backfeed {command}) on {} since {}",
            std::process::id(),
            super::hostname(),
            crate::model::now_rfc3339()
        );
        Ok(ServeLock { _file: file })
    }
}

/// `<store>.serve-lock`, beside the store.
fn lock_path(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_store_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let first = ServeLock::acquire(&store, "import").unwrap();
        let refused = ServeLock::acquire(&store, "serve").err().unwrap();
        assert!(
            refused.contains(&format!("pid {} (backfeed import)", std::process::id())),
            "{refused}"
        );
        drop(first);
        assert!(ServeLock::acquire(&store, "serve").is_ok());
    }
}
