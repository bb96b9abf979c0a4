//! Checked paths and fs/shell matching on a real directory tree with real symlinks (§3.2, §3.3).
//!
//! The spec's `/w/safe`, `/w/outside`, `/w/safe/link` layout is built inside a temporary
//! directory; `/w` below stands for `<tmp>/w`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use agentd_policy::{CheckedPathError, FsPolicyConfig, Policy, PolicyConfig, ShellPolicyConfig, checked_path};
use tempfile::TempDir;

/// `<tmp>/w/{safe,outside}` with `safe/link -> outside`.
struct Layout {
    _dir: TempDir,
    /// The canonical temporary root.
    root: PathBuf,
    /// `<root>/w`.
    w: PathBuf,
}

fn layout() -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let w = root.join("w");
    fs::create_dir_all(w.join("safe")).unwrap();
    fs::create_dir_all(w.join("outside")).unwrap();
    symlink(w.join("outside"), w.join("safe/link")).unwrap();
    Layout { _dir: dir, root, w }
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn write_policy(patterns: &[String], cwd: &Path) -> Policy {
    let config = PolicyConfig {
        fs: Some(FsPolicyConfig { write: patterns.to_vec(), ..FsPolicyConfig::default() }),
        ..PolicyConfig::default()
    };
    Policy::compile(Some(&config), cwd).unwrap()
}

#[test]
fn escape_table_of_the_spec() {
    let layout = layout();
    let w = text(&layout.w);
    let policy = write_policy(&[format!("{w}/safe/**")], &layout.root);
    // (requested, cwd, checked path relative to <tmp>, allowed)
    let rows = [
        (format!("{w}/safe/../escape.txt"), &layout.root, "w/escape.txt", false),
        (format!("{w}/safe/a/../../x.txt"), &layout.root, "w/x.txt", false),
        (format!("{w}/safe/./../outside/x.txt"), &layout.root, "w/outside/x.txt", false),
        (format!("{w}/safe/link/x.txt"), &layout.root, "w/outside/x.txt", false),
        (format!("{w}/safe/link"), &layout.root, "w/outside", false),
        (format!("{w}/safe//sub/../../safe2/x"), &layout.root, "w/safe2/x", false),
        ("safe/x.txt".to_owned(), &layout.w, "w/safe/x.txt", true),
        (format!("{w}/safe/%2e%2e/x"), &layout.root, "w/safe/%2e%2e/x", true),
        (format!("{w}/safe/new/dir/x.txt"), &layout.root, "w/safe/new/dir/x.txt", true),
        (format!("{w}/safe"), &layout.root, "w/safe", true),
    ];
    for (requested, cwd, expected, allowed) in rows {
        let checked = checked_path(&requested, cwd).unwrap();
        assert_eq!(checked, layout.root.join(expected), "checked path of {requested}");
        let decision = policy.check_fs_write(&checked);
        assert_eq!(decision.allowed, allowed, "{requested}: {decision:?}");
        if allowed {
            assert_eq!(decision.rule.as_deref(), Some(format!("{w}/safe/**").as_str()));
        } else {
            assert_eq!(decision.reason, "path not in [policy.fs].write");
            assert_eq!(decision.rule, None);
        }
    }
}

#[test]
fn read_and_write_lists_are_separate() {
    let layout = layout();
    let w = text(&layout.w);
    let config = PolicyConfig {
        fs: Some(FsPolicyConfig { read: vec![format!("{w}/outside/**")], ..FsPolicyConfig::default() }),
        ..PolicyConfig::default()
    };
    let policy = Policy::compile(Some(&config), &layout.root).unwrap();
    let checked = checked_path(&format!("{w}/safe/link/x.txt"), &layout.root).unwrap();
    assert!(policy.check_fs_read(&checked).allowed);
    let write = policy.check_fs_write(&checked);
    assert!(!write.allowed);
    assert_eq!(write.reason, "[policy.fs].write is empty");
}

#[test]
fn pattern_directory_prefix_is_resolved_once_at_startup() {
    // `<tmp>/alias -> <tmp>/w`: a pattern written through the alias still matches checked paths,
    // which are always fully resolved (the `/var` -> `/private/var` case).
    let layout = layout();
    symlink(&layout.w, layout.root.join("alias")).unwrap();
    let alias = text(&layout.root.join("alias"));
    let policy = write_policy(&[format!("{alias}/safe/**")], &layout.root);
    let checked = checked_path(&format!("{alias}/safe/x.txt"), &layout.root).unwrap();
    assert_eq!(checked, layout.w.join("safe/x.txt"));
    assert!(policy.check_fs_write(&checked).allowed);
    // The escape through `link` stays an escape.
    let checked = checked_path(&format!("{alias}/safe/link/x.txt"), &layout.root).unwrap();
    assert!(!policy.check_fs_write(&checked).allowed);
}

#[test]
fn final_segment_of_a_pattern_is_never_resolved() {
    let layout = layout();
    let w = text(&layout.w);
    fs::write(layout.w.join("outside/f.txt"), "secret").unwrap();
    symlink(layout.w.join("outside/f.txt"), layout.w.join("safe/f.txt")).unwrap();
    fs::write(layout.w.join("safe/g.txt"), "ok").unwrap();
    let policy = write_policy(&[format!("{w}/safe/f.txt"), format!("{w}/safe/g.txt")], &layout.root);
    let checked = checked_path(&format!("{w}/safe/f.txt"), &layout.root).unwrap();
    assert_eq!(checked, layout.w.join("outside/f.txt"));
    assert!(!policy.check_fs_write(&checked).allowed);
    let checked = checked_path(&format!("{w}/safe/g.txt"), &layout.root).unwrap();
    assert!(policy.check_fs_write(&checked).allowed);
}

#[test]
fn dangling_symlinks_are_followed_to_their_target() {
    let layout = layout();
    let w = text(&layout.w);
    symlink(layout.w.join("outside/new"), layout.w.join("safe/dangling")).unwrap();
    let policy = write_policy(&[format!("{w}/safe/**")], &layout.root);
    for requested in [format!("{w}/safe/dangling"), format!("{w}/safe/dangling/x.txt")] {
        let checked = checked_path(&requested, &layout.root).unwrap();
        assert!(checked.starts_with(layout.w.join("outside/new")), "{checked:?}");
        assert!(!policy.check_fs_write(&checked).allowed);
    }
}

#[test]
fn relative_symlink_targets_are_resolved_physically() {
    let layout = layout();
    let w = text(&layout.w);
    fs::create_dir_all(layout.w.join("safe/deep")).unwrap();
    symlink("../../outside", layout.w.join("safe/deep/up")).unwrap();
    let checked = checked_path(&format!("{w}/safe/deep/up/x"), &layout.root).unwrap();
    assert_eq!(checked, layout.w.join("outside/x"));
}

#[test]
fn symlink_loops_are_errors() {
    let layout = layout();
    let w = text(&layout.w);
    symlink(layout.w.join("safe/b"), layout.w.join("safe/a")).unwrap();
    symlink(layout.w.join("safe/a"), layout.w.join("safe/b")).unwrap();
    let error = checked_path(&format!("{w}/safe/a/x"), &layout.root).unwrap_err();
    assert!(matches!(error, CheckedPathError::TooManySymlinks { .. }), "{error}");
}

#[test]
fn a_path_below_a_file_keeps_its_literal_tail() {
    let layout = layout();
    let w = text(&layout.w);
    fs::write(layout.w.join("safe/file"), "x").unwrap();
    let checked = checked_path(&format!("{w}/safe/file/x"), &layout.root).unwrap();
    assert_eq!(checked, layout.w.join("safe/file/x"));
}

#[test]
fn relative_patterns_are_anchored_on_the_working_directory() {
    let layout = layout();
    let policy = write_policy(&["safe/**".to_owned(), "./out*".to_owned()], &layout.w);
    for (requested, allowed) in [("safe/x", true), ("outbox/y", true), ("outside/z", true), ("other/x", false)] {
        let checked = checked_path(requested, &layout.w).unwrap();
        assert_eq!(policy.check_fs_write(&checked).allowed, allowed, "{requested}");
    }
}

#[test]
fn shell_commands_match_the_resolved_binary() {
    // `/usr/bin/python3` allowed while it resolves to `/usr/bin/python3.12` is a denial (§3.3).
    let layout = layout();
    let bin = layout.root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("python3.12"), "").unwrap();
    symlink("python3.12", bin.join("python3")).unwrap();
    let config =
        |commands: Vec<String>| PolicyConfig { shell: Some(ShellPolicyConfig { commands }), ..PolicyConfig::default() };
    let resolved = checked_path(&text(&bin.join("python3")), &layout.root).unwrap();
    assert_eq!(resolved, bin.join("python3.12"));

    let policy = Policy::compile(Some(&config(vec![text(&bin.join("python3"))])), &layout.root).unwrap();
    let decision = policy.check_shell(&resolved);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "command not in [policy.shell].commands");
    assert_eq!(decision.family.as_str(), "shell");

    let policy = Policy::compile(Some(&config(vec![text(&bin.join("python3.12"))])), &layout.root).unwrap();
    assert!(policy.check_shell(&resolved).allowed);
}
