//! The `keyward` binary itself: `admin create`, `migrate`, `jobs run-once`, and
//! `master-key rotate` on a database sealed the old way.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{PASSWORD, fresh_database};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn keyward(dir: &std::path::Path, db: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env_clear()
        .env("KEYWARD_DATA_DIR", dir)
        .env("KEYWARD_DATABASE_URL", db)
        .env("KEYWARD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyward runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let create = [
        "admin",
        "create",
        "--email",
        "Ada@Example.com",
        "--name",
        "Ada Lovelace",
    ];

    let ok = keyward(dir.path(), &db, &create, &format!("{PASSWORD}\n"));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("Created administrator ada@example.com"),
        "{}",
        ok.stdout
    );
    assert!(!ok.stdout.contains(PASSWORD) && !ok.stderr.contains(PASSWORD));

    let duplicate = keyward(dir.path(), &db, &create, &format!("{PASSWORD}\n"));
    assert_eq!(duplicate.code, 1);
    assert!(
        duplicate
            .stderr
            .contains("A user with this email already exists."),
        "{}",
        duplicate.stderr
    );

    let weak = keyward(
        dir.path(),
        &db,
        &["admin", "create", "--email", "b@example.com", "--name", "B"],
        "short\n",
    );
    assert_eq!(weak.code, 1);
    assert!(
        weak.stderr
            .contains("password: Use at least 12 characters."),
        "{}",
        weak.stderr
    );

    let empty = keyward(
        dir.path(),
        &db,
        &["admin", "create", "--email", "c@example.com", "--name", "C"],
        "",
    );
    assert_eq!(empty.code, 1);
    assert!(
        empty.stderr.contains("Enter a password."),
        "{}",
        empty.stderr
    );

    let bad_email = keyward(
        dir.path(),
        &db,
        &["admin", "create", "--email", "nope", "--name", "C"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(bad_email.code, 1);
    assert!(bad_email.stderr.contains("email:"), "{}", bad_email.stderr);

    // The administrator can sign in to a server on that database.
    let settings =
        keyward::config::Settings::for_data_dir(dir.path().to_path_buf(), Some(db.clone()))
            .unwrap();
    let clock = std::sync::Arc::new(keyward::clock::ManualClock::new(crate::common::start_time()));
    let app = keyward::startup::Application::build(settings, clock)
        .await
        .unwrap();
    assert!(
        app.setup_url().is_none(),
        "no setup link once an administrator exists"
    );
    let port = app.port();
    tokio::spawn(app.into_server());
    let client = crate::common::client();
    let login = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = scraper::Html::parse_document(&login)
        .select(&scraper::Selector::parse("input[name=csrf_token]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_string();
    let res = client
        .post(format!("http://127.0.0.1:{port}/login"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn first_start_creates_the_data_directory_and_a_private_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = match std::env::var("KEYWARD_TEST_DATABASE_URL") {
        Ok(_) => fresh_database(dir.path()).await,
        Err(_) => format!("sqlite://{}?mode=rwc", data.join("keyward.db").display()),
    };
    let run = keyward(&data, &db, &["migrate"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("The database is up to date."));
    let key = data.join("master.key");
    let meta = std::fs::metadata(&key).expect("master key file created");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let _ = meta;
    if db.starts_with("sqlite") {
        let lite = keyward(&data, &db, &["jobs", "run-once"], "");
        assert_eq!(lite.code, 0, "{}", lite.stderr);
        let wal: String = {
            let pool = keyward::db::connect(&db).await.unwrap();
            sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(wal, "wal");
    }
    // A second start keeps the same key.
    let before = std::fs::read_to_string(&key).unwrap();
    assert_eq!(keyward(&data, &db, &["migrate"], "").code, 0);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), before);
}

#[tokio::test]
async fn bad_configuration_is_named_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), "mysql://nope", &["migrate"], "");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("KEYWARD_DATABASE_URL"),
        "{}",
        run.stderr
    );
    let db = fresh_database(dir.path()).await;
    let run = keyward(
        dir.path(),
        &db,
        &["jobs", "run-once", "--message-retention-days", "4000"],
        "",
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("KEYWARD_MESSAGE_RETENTION_DAYS: must be at most 3650"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn master_key_rotate_binds_values_sealed_the_old_way_under_the_new_key() {
    use secrecy::ExposeSecret;
    let app = crate::common::spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = crate::secret_keys::create_signing_key(&app, "Receiver").await;
    crate::sealing::rewrite_the_old_way(&app).await;
    let dir = app.data_dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["master-key", "rotate"])
        .env_clear()
        .env("KEYWARD_DATA_DIR", dir)
        .env("KEYWARD_DATABASE_URL", &app.database_url)
        .env("KEYWARD_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("master key version 2")
            && stdout.contains("Re-sealed 1 webhook signing keys"),
        "{stdout}"
    );
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    let sealed = crate::sealing::sealed_secret(&app, &id).await;
    assert!(sealed.starts_with("v2.b."), "{sealed}");

    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let restarted = crate::common::spawn_app_on(&app.database_url, key.trim(), app.clock.clone())
        .await
        .expect("starts with the rotated key");
    let opened = restarted
        .state
        .vault
        .open_sealed(keyward::auth::vault::Binding::signing_key(&id), &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), secret);
}
