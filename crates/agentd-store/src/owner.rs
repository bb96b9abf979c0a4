//! Claim owners: the `pid@host` string that names a process, and whether such a process is still
//! alive (02-data.md §7 "Stale claims").
//!
//! Liveness can only be judged for owners on this host. Everything here is best effort and
//! errs towards "alive": a claim wrongly thought live waits for its age limit, while a claim
//! wrongly thought dead would let two processes resume one run.

use std::path::Path;
use std::sync::OnceLock;

/// This machine's host name, as used in owner strings (read once).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(read_host_name)
}

/// The owner string of the current process: `<pid>@<host>`.
pub fn process_owner() -> String {
    format!("{}@{}", std::process::id(), host_name())
}

fn read_host_name() -> String {
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            let name = text.trim();
            if !name.is_empty() {
                return name.to_owned();
            }
        }
    }
    if let Ok(output) = std::process::Command::new("hostname").output()
        && output.status.success()
    {
        let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !name.is_empty() {
            return name;
        }
    }
    "localhost".to_owned()
}

/// `true` when `owner` names a process on this host that no longer exists. Owners of other hosts,
/// or strings that are not `pid@host`, are never judged dead.
pub(crate) fn owner_is_dead(owner: &str) -> bool {
    let Some((pid, host)) = owner.split_once('@') else { return false };
    if host != host_name() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else { return false };
    if pid == std::process::id() {
        return false;
    }
    !process_exists(pid)
}

fn process_exists(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if proc_root.join("self").exists() {
        return proc_root.join(pid.to_string()).exists();
    }
    // No procfs (macOS, BSD): ask `kill -0`, which signals nothing. When it cannot be run at all,
    // report the process as alive.
    match std::process::Command::new("kill")
        .arg("-0")
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) => status.success(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_foreign_owners_are_never_dead() {
        assert!(!owner_is_dead(&process_owner()));
        assert!(!owner_is_dead("1@some-other-host-that-is-not-this-one"));
        assert!(!owner_is_dead("not-an-owner"));
        assert!(!owner_is_dead(&format!("x@{}", host_name())));
    }
}
