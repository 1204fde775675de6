//! Private files (issue 13): the data directory, the database and its WAL and shared-memory
//! files, the master key and `.eml` files (which carry set-password links) are keyward's
//! account's alone, and a start narrows whatever was left more open.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{database_kind, last_invitation, spawn_app, spawn_app_on_with};
use crate::mail::invite;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn eml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect()
}

#[tokio::test]
async fn everything_keyward_writes_is_readable_by_its_account_only() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    let (eml, _) = last_invitation(&app).await;
    assert!(
        eml.contains("/invite?token="),
        "the email carries a live link"
    );
    let dir = app.data_dir.path();
    assert_eq!(mode(dir), 0o700, "data directory");
    assert_eq!(mode(&dir.join("master.key")), 0o600, "master key");
    assert_eq!(mode(&dir.join("outbox")), 0o700, "outbox directory");
    let emails = eml_files(dir);
    assert!(!emails.is_empty());
    for e in &emails {
        assert_eq!(mode(e), 0o600, "{}", e.display());
    }
    if database_kind() == "sqlite" {
        for name in ["keyward.db", "keyward.db-wal", "keyward.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }
}

#[tokio::test]
async fn a_start_narrows_files_left_open_to_other_accounts() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    last_invitation(&app).await;
    let dir = app.data_dir.path().to_path_buf();
    let open =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    open(&dir, 0o755);
    open(&dir.join("master.key"), 0o644);
    open(&dir.join("outbox"), 0o775);
    for e in eml_files(&dir) {
        open(&e, 0o644);
    }
    if database_kind() == "sqlite" {
        open(&dir.join("keyward.db"), 0o644);
    }
    // A restart on the same data directory (the test harness gives the second instance a
    // directory of its own, so point it back at the first).
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let data_dir = dir.clone();
    let again = spawn_app_on_with(&app.database_url, key.trim(), app.clock.clone(), move |s| {
        s.data_dir = data_dir;
        s.master_key = None;
    })
    .await
    .unwrap();
    drop(again);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("master.key")), 0o600);
    assert_eq!(mode(&dir.join("outbox")), 0o700);
    for e in eml_files(&dir) {
        assert_eq!(mode(&e), 0o600, "{}", e.display());
    }
    if database_kind() == "sqlite" {
        assert_eq!(mode(&dir.join("keyward.db")), 0o600);
    }
    assert!(
        crate::common::captured_logs().contains("was open to other accounts; narrowed it"),
        "the start said so"
    );
}
