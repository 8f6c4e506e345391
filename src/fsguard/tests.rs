//! Unit tests of `fsguard`.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn created_files_and_dirs_are_owner_only_whatever_the_umask() {
    let t = tempfile::tempdir().unwrap();
    rustix::process::umask(Mode::from_raw_mode(0));
    let d = GuardedDir::create(&t.path().join("a/b"), Sharing::default()).unwrap();
    let f = d.open_file("x", How::Append, Kind::Private);
    rustix::process::umask(Mode::from_raw_mode(0o022));
    f.unwrap();
    assert_eq!(mode(&t.path().join("a/b")), 0o700);
    assert_eq!(mode(&t.path().join("a/b/x")), 0o600);
}

#[test]
fn a_planted_symlink_is_refused_and_its_target_untouched() {
    let t = tempfile::tempdir().unwrap();
    let d = GuardedDir::create(&t.path().join("d"), Sharing::default()).unwrap();
    let target = t.path().join("target");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, t.path().join("d/x")).unwrap();
    let e = d.open_file("x", How::Append, Kind::Shared).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(d.check("x", Kind::Shared).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    // The directory itself as a link.
    std::os::unix::fs::symlink(t.path().join("d"), t.path().join("l")).unwrap();
    let e = GuardedDir::open(&t.path().join("l"), Sharing::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

#[test]
fn writable_by_others_is_refused_with_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let d = GuardedDir::create(&t.path().join("d"), Sharing::default()).unwrap();
    d.open_file("x", How::Append, Kind::Shared).unwrap();
    let x = t.path().join("d/x");
    std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = d.check("x", Kind::Shared).unwrap_err().to_string();
    assert!(
        e.contains("writable by others") && e.contains("chmod o-w"),
        "{e}"
    );
    std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o604)).unwrap();
    assert!(d.check("x", Kind::Shared).is_ok());
    let e = d.check("x", Kind::Private).unwrap_err().to_string();
    assert!(e.contains("chmod o-rwx"), "{e}");
    std::fs::set_permissions(t.path().join("d"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = GuardedDir::open(&t.path().join("d"), Sharing::default()).unwrap_err();
    assert!(e.to_string().contains("writable by others"), "{e}");
}

#[test]
fn a_hard_link_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = GuardedDir::create(&t.path().join("d"), Sharing::default()).unwrap();
    std::fs::write(t.path().join("elsewhere"), "x").unwrap();
    std::fs::hard_link(t.path().join("elsewhere"), t.path().join("d/x")).unwrap();
    let e = d.open_file("x", How::Append, Kind::Shared).unwrap_err();
    assert!(e.to_string().contains("hard links"), "{e}");
}

#[test]
fn a_planted_fifo_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let d = GuardedDir::create(&t.path().join("d"), Sharing::default()).unwrap();
    rustix::fs::mkfifoat(d.fd(), "x", Mode::from_raw_mode(0o600)).unwrap();
    for how in [How::Read, How::Append, How::ReadWrite] {
        let e = d.open_file("x", how, Kind::Shared).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    assert!(read_nofollow(&t.path().join("d/x")).is_err());
    assert!(open_checked(&t.path().join("d/x"), Kind::Secret, Sharing::default()).is_err());
}
