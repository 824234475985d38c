//! A service-account token projected the way the kubelet does it, with its
//! atomic update.
//!
//! Layout and update steps follow the kubelet's `AtomicWriter`
//! (kubernetes/kubernetes, `pkg/volume/util/atomic_writer.go`):
//!
//! ```text
//! <dir>/eks-pod-identity-token -> ..data/eks-pod-identity-token
//! <dir>/..data                 -> ..2026_12_02_03_25_31.1
//! <dir>/..2026_12_02_03_25_31.1/eks-pod-identity-token
//! ```
//!
//! An update writes a new timestamped directory, points a new `..data_tmp`
//! symlink at it, renames `..data_tmp` over `..data` (the one atomic step), and
//! removes the old directory. A reader that opens the visible path always gets
//! one whole token, the old or the new, and a reader that kept the old file
//! open is left with a deleted file.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

const FILE: &str = "eks-pod-identity-token";
const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// A projected token volume in a directory of its own.
#[derive(Debug)]
pub struct ProjectedToken {
    dir: PathBuf,
    generation: AtomicU32,
    /// The kubelet serialises writes to one volume; so do we.
    writing: Mutex<()>,
}

impl ProjectedToken {
    /// Projects `token` into `dir` (which must exist and be empty).
    pub fn create(dir: &Path, token: &str) -> io::Result<Self> {
        let volume = Self {
            dir: dir.to_owned(),
            generation: AtomicU32::new(0),
            writing: Mutex::new(()),
        };
        volume.write(token)?;
        std::os::unix::fs::symlink(Path::new(DATA).join(FILE), volume.path())?;
        Ok(volume)
    }

    /// The path the pod is given (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Atomically replaces the token, as the kubelet does on rotation.
    pub fn swap(&self, token: &str) -> io::Result<()> {
        self.write(token)
    }

    fn write(&self, token: &str) -> io::Result<()> {
        let _serial = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::fs::read_link(self.dir.join(DATA)).ok();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let now = time::OffsetDateTime::now_utc();
        let ts_name = format!(
            "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{generation}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let ts_dir = self.dir.join(&ts_name);
        std::fs::create_dir(&ts_dir)?;
        // With a trailing newline, which clients trim (like the other token
        // files of these tests).
        std::fs::write(ts_dir.join(FILE), format!("{token}\n"))?;
        let tmp = self.dir.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ts_name, &tmp)?;
        std::fs::rename(&tmp, self.dir.join(DATA))?;
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old))?;
        }
        Ok(())
    }
}
