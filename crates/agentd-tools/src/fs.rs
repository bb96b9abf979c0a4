//! `read_file`, `write_file`, `create_dir`: filesystem effects on checked paths (05 §3.2).
//!
//! Order of operations is fixed: normalise to the checked path, ask policy, and only then look
//! at the disk, so probing outside the allowlist always yields a denial, never "not found".
//! Writes open the final component without following symlinks (`O_NOFOLLOW`), so a symlink
//! planted after the check makes the write fail instead of escaping.

use std::io::Write;
use std::path::{Path, PathBuf};

use agentd_policy::Policy;

use crate::Error;

/// Which check a path goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `fs.read`
    Read,
    /// `fs.write`
    Write,
}

/// Normalises `requested` and checks it against policy; returns the checked path to act on.
pub fn check(op: &'static str, policy: &Policy, cwd: &Path, requested: &str, access: Access) -> Result<PathBuf, Error> {
    let checked = agentd_policy::checked_path(requested, cwd)
        .map_err(|e| Error::Failed(format!("invalid path `{}`: {e}", requested.escape_debug())))?;
    let decision = match access {
        Access::Read => policy.check_fs_read(&checked),
        Access::Write => policy.check_fs_write(&checked),
    };
    if decision.allowed {
        Ok(checked)
    } else {
        Err(Error::Denied { op, target: checked.display().to_string(), decision })
    }
}

/// A file read as UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// Size in bytes.
    pub bytes: u64,
    /// The content.
    pub content: String,
}

/// Reads a checked path as UTF-8 text. `shown` is the path as the workflow gave it (for errors).
pub fn read_text(checked: &Path, shown: &str) -> Result<FileText, Error> {
    let bytes = std::fs::read(checked).map_err(|e| Error::Failed(format!("read {shown}: {e}")))?;
    let size = bytes.len() as u64;
    let content =
        String::from_utf8(bytes).map_err(|_| Error::Failed(format!("read {shown}: file is not valid UTF-8")))?;
    Ok(FileText { bytes: size, content })
}

/// Creates the missing parents of a checked path, then creates or truncates the file and writes
/// `content`, opening the final component with no-follow semantics.
pub fn write_bytes(checked: &Path, shown: &str, content: &[u8]) -> Result<(), Error> {
    if let Some(parent) = checked.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Failed(format!("mkdir_p {}: {e}", parent.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(checked).map_err(|e| Error::Failed(format!("write {shown}: {e}")))?;
    file.write_all(content).map_err(|e| Error::Failed(format!("write {shown}: {e}")))?;
    Ok(())
}

/// Creates a checked directory and its missing parents (an existing directory is success).
pub fn create_dir(checked: &Path, shown: &str) -> Result<(), Error> {
    std::fs::create_dir_all(checked).map_err(|e| Error::Failed(format!("mkdir_p {shown}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_refuses_a_symlinked_final_component() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target.txt");
        std::fs::write(&target, "keep").expect("write");
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = write_bytes(&link, "link.txt", b"overwrite").expect_err("must not follow");
        assert!(err.to_string().starts_with("write link.txt:"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    }

    #[test]
    fn denial_comes_before_existence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config: agentd_policy::PolicyConfig = agentd_policy::PolicyConfig {
            fs: Some(agentd_policy::FsPolicyConfig {
                read: vec![format!("{}/allowed/**", dir.path().display())],
                ..Default::default()
            }),
            ..Default::default()
        };
        let policy = Policy::compile(Some(&config), dir.path()).expect("policy");
        let err = check("read_file", &policy, dir.path(), "missing/nope.txt", Access::Read).expect_err("denied");
        assert!(matches!(err, Error::Denied { .. }), "{err}");
        assert!(err.to_string().contains("path not in [policy.fs].read"), "{err}");
    }
}
