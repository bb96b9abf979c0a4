//! Byte views of OS strings.
//!
//! Path matching is byte-exact on Unix (§3.2), so matchers work on the raw bytes of a path rather
//! than on a lossy UTF-8 rendering. Other platforms fall back to the UTF-8 rendering.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};

/// The bytes of `value`, borrowed where the platform allows it.
#[cfg(unix)]
pub(crate) fn os_str_bytes(value: &OsStr) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(value.as_bytes())
}

/// The bytes of `value`, borrowed where the platform allows it.
#[cfg(not(unix))]
pub(crate) fn os_str_bytes(value: &OsStr) -> Cow<'_, [u8]> {
    match value.to_string_lossy() {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

/// The OS string made of `bytes`.
#[cfg(unix)]
pub(crate) fn os_string_from_bytes(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}

/// The OS string made of `bytes`.
#[cfg(not(unix))]
pub(crate) fn os_string_from_bytes(bytes: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(bytes).into_owned())
}
