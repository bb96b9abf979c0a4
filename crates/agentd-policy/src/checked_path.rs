//! Checked paths (`05-policy-budgets.md` §3.2 steps 1–4).
//!
//! A requested filesystem path is never matched or opened as written. It is first turned into a
//! *checked path*: made absolute, normalised lexically, and then its existing part replaced by
//! the real location on disk (all symlinks resolved). The runtime matches the checked path and
//! then performs the I/O on it, so that what was checked is what is touched.
//!
//! Symlink resolution walks the path one component at a time (`realpath -m` semantics) instead of
//! calling `canonicalize` on the longest existing prefix: the two agree whenever every symlink
//! points at something that exists, and the walk additionally follows a *dangling* symlink to
//! where it points. That way `/w/safe/dangling` → `/w/outside/new` is checked as
//! `/w/outside/new`, not as a harmless-looking name under `/w/safe`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::os_bytes::os_str_bytes;

/// How many symlinks one resolution may follow before giving up, as Linux does (`ELOOP`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a requested path could not be turned into a checked path.
#[derive(Debug, thiserror::Error)]
pub enum CheckedPathError {
    /// The requested path is the empty string (§3.2 step 1).
    #[error("path is empty")]
    Empty,
    /// The requested path contains a NUL byte (§3.2 step 1).
    #[error("path contains a NUL byte")]
    ContainsNul,
    /// Resolving the path followed too many symlinks (a loop, most likely).
    #[error("too many levels of symbolic links while resolving {}", path.display())]
    TooManySymlinks {
        /// The normalised path whose resolution was abandoned.
        path: PathBuf,
    },
    /// The filesystem refused to say whether a component exists or where a symlink points
    /// (e.g. permission denied). The check fails closed rather than guessing.
    #[error("cannot resolve {}: {source}", path.display())]
    Io {
        /// The component that could not be inspected.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// §3.2 steps 1–3: rejects an empty path or one containing NUL (`None`), joins a relative path
/// onto `cwd`, then drops empty and `.` segments and lets `..` remove the previous segment (`..`
/// at the root stays at the root). Nothing is decoded: `%2e%2e` is a literal name.
///
/// The result always starts at the root and contains no `.` or `..` segment. A relative `cwd` is
/// itself taken relative to the root.
pub fn lexical_normalize(path: &Path, cwd: &Path) -> Option<PathBuf> {
    let raw = os_str_bytes(path.as_os_str());
    if raw.is_empty() || raw.contains(&0) {
        return None;
    }
    let mut segments: Vec<&OsStr> = Vec::new();
    if !path.has_root() {
        push_components(&mut segments, cwd);
    }
    push_components(&mut segments, path);
    Some(rooted_path(segments))
}

/// §3.2 steps 1–4: the checked path of `requested` (relative paths are taken against `cwd`).
///
/// After lexical normalisation, the longest existing prefix is replaced by its real location
/// with every symlink resolved — including the final component when the whole path exists —
/// and the remaining, not-yet-existing segments are appended unchanged.
pub fn checked_path(requested: &str, cwd: &Path) -> Result<PathBuf, CheckedPathError> {
    if requested.is_empty() {
        return Err(CheckedPathError::Empty);
    }
    if requested.contains('\0') {
        return Err(CheckedPathError::ContainsNul);
    }
    let normalized = lexical_normalize(Path::new(requested), cwd).ok_or(CheckedPathError::ContainsNul)?;
    resolve_symlinks(&normalized)
}

/// §3.2 step 4 alone: resolves every symlink along an already normalised absolute path, keeping
/// the part that does not exist yet as written.
///
/// A component that cannot be inspected for a reason other than "does not exist" / "not a
/// directory" is an error: the check fails closed.
pub fn resolve_symlinks(normalized: &Path) -> Result<PathBuf, CheckedPathError> {
    resolve(normalized, Strictness::FailClosed)
}

/// How [`resolve`] treats components it cannot inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Report the error (candidates: the I/O would be done on a path we could not check).
    FailClosed,
    /// Stop resolving and keep the rest as written (pattern prefixes at startup: an unresolved
    /// prefix can only make the pattern match less, never more).
    KeepLiteral,
}

/// Walks `path` component by component, following symlinks, until a component does not exist.
pub(crate) fn resolve(path: &Path, strictness: Strictness) -> Result<PathBuf, CheckedPathError> {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => pending.clear(),
            Component::CurDir => {}
            Component::ParentDir => pending.push_back(OsString::from("..")),
            Component::Normal(name) => pending.push_back(name.to_os_string()),
        }
    }

    // `resolved` never contains a symlink while `exists` holds, so its lexical parent is also
    // its physical parent and `..` can simply pop.
    let mut resolved = root();
    let mut exists = true;
    let mut hops = 0usize;
    while let Some(segment) = pending.pop_front() {
        if segment == ".." {
            resolved.pop();
            continue;
        }
        if segment == "." || segment.is_empty() {
            continue;
        }
        let next = resolved.join(&segment);
        if !exists {
            resolved = next;
            continue;
        }
        match std::fs::symlink_metadata(&next) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(CheckedPathError::TooManySymlinks { path: path.to_path_buf() });
                }
                let target = match std::fs::read_link(&next) {
                    Ok(target) => target,
                    Err(source) => match strictness {
                        Strictness::FailClosed => {
                            return Err(CheckedPathError::Io { path: next, source });
                        }
                        Strictness::KeepLiteral => {
                            exists = false;
                            resolved = next;
                            continue;
                        }
                    },
                };
                if target.as_os_str().is_empty() {
                    // An empty link target resolves to nothing on Linux (ENOENT).
                    exists = false;
                    resolved = next;
                    continue;
                }
                if target.has_root() {
                    resolved = root();
                }
                let mut spliced: Vec<OsString> = Vec::new();
                for component in target.components() {
                    match component {
                        Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
                        Component::ParentDir => spliced.push(OsString::from("..")),
                        Component::Normal(name) => spliced.push(name.to_os_string()),
                    }
                }
                for name in spliced.into_iter().rev() {
                    pending.push_front(name);
                }
            }
            Ok(_) => resolved = next,
            Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                exists = false;
                resolved = next;
            }
            Err(source) => match strictness {
                Strictness::FailClosed => return Err(CheckedPathError::Io { path: next, source }),
                Strictness::KeepLiteral => {
                    exists = false;
                    resolved = next;
                }
            },
        }
    }
    Ok(resolved)
}

/// Applies the components of `path` to a stack of normalised segments.
fn push_components<'a>(segments: &mut Vec<&'a OsStr>, path: &'a Path) {
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => segments.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                segments.pop();
            }
            Component::Normal(name) => segments.push(name),
        }
    }
}

/// The root directory.
fn root() -> PathBuf {
    PathBuf::from(std::path::MAIN_SEPARATOR_STR)
}

/// The absolute path made of `segments` under the root.
fn rooted_path(segments: Vec<&OsStr>) -> PathBuf {
    let mut path = root();
    for segment in segments {
        path.push(segment);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        let cwd = Path::new("/w");
        let cases = [
            ("/a/b/../c", "/a/c"),
            ("/../../x", "/x"),
            ("a//b/./c/", "/w/a/b/c"),
            ("..", "/"),
            ("/w/safe/%2e%2e/x", "/w/safe/%2e%2e/x"),
            ("./", "/w"),
            ("/", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(lexical_normalize(Path::new(input), cwd), Some(PathBuf::from(expected)), "{input}");
        }
        assert_eq!(lexical_normalize(Path::new(""), cwd), None);
        assert_eq!(lexical_normalize(Path::new("a\0b"), cwd), None);
    }

    #[test]
    fn empty_and_nul_are_rejected() {
        assert!(matches!(checked_path("", Path::new("/")), Err(CheckedPathError::Empty)));
        assert!(matches!(checked_path("/tmp/\0x", Path::new("/")), Err(CheckedPathError::ContainsNul)));
    }
}
