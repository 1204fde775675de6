//! The key lookup of authentication runs on a reader of its own (`db::Reader`): on SQLite on
//! the request's own thread, on PostgreSQL on connections that skip the pool's pings; as a
//! fallback it runs through the pool. Both must read the same.

use std::sync::Arc;

use keyward::db::{PgReader, Reader, SqliteReader};
use keyward::service::key_auth::{Attempt, AuthError, KeyChecker, Policy, Refusal};

use crate::common::{ShownKey, TestApp, database_kind, spawn_app};

/// A tenant key with two roles and one group, a personal key whose permissions come from its
/// owner's groups, and an API key without roles.
async fn three_keys(app: &TestApp) -> [ShownKey; 3] {
    app.signed_in_admin().await;
    let tenant = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "deployer"),
                ("key_type", "access"),
                ("validity", "90"),
                ("roles", "role_key_admin"),
                ("roles", "role_read_only"),
                ("groups", "grp_administrators"),
            ],
        )
        .await;
    let api = app
        .add_key(
            "/user-access/keys",
            &[("name", "partner"), ("key_type", "api"), ("validity", "30")],
        )
        .await;
    let personal = app
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
                ("custom_date", ""),
            ],
        )
        .await;
    [tenant, api, personal]
}

/// A checker on the app's pool with this reader and the default limits.
fn checker_with(app: &TestApp, reader: Reader) -> KeyChecker {
    checker_on(&app.state.pool, Some(reader))
}

/// A checker on `pool`, with `reader` if any, and the default limits.
fn checker_on(pool: &sqlx::AnyPool, reader: Option<Reader>) -> KeyChecker {
    KeyChecker::start(
        pool.clone(),
        reader,
        Policy {
            lockout_threshold: 5,
            client_failure_limit: 30,
            refusal_audit_per_second: 50,
        },
        "http://localhost",
        Arc::new(tokio::sync::Notify::new()),
    )
}

fn attempt<'a>(key: &ShownKey, secret: &str) -> Attempt<'a> {
    presented(&key.id, secret)
}

/// An ID and secret presented from 127.0.0.1.
fn presented<'a>(id: &str, secret: &str) -> Attempt<'a> {
    Attempt {
        presented: keyward::auth::key_auth::from_pair(&format!("{id}::{secret}")),
        client_ip: "127.0.0.1",
        user_agent: "keyward-tests",
        limit_client: true,
        needs_caller: None,
    }
}

/// What a checker says of each presented key, in order, as text (every column of an
/// accepted key's row, its assignments and permissions; or the refusal).
async fn outcomes(app: &TestApp, checker: &KeyChecker, keys: &[(&str, &str)]) -> String {
    let attempts = keys
        .iter()
        .map(|(id, secret)| presented(id, secret))
        .collect();
    format!(
        "{:?}",
        checker.check_all(&app.state.keyring(), attempts).await
    )
}

#[tokio::test]
async fn the_lookup_on_the_reader_reads_what_the_pool_reads() {
    let app = spawn_app().await;
    let reader = Reader::for_url(&app.database_url).expect("a reader for the database");
    match (&reader, database_kind()) {
        (Reader::Sqlite(r), "sqlite") => assert!(r.read(|_| Ok(())).is_ok()),
        (Reader::Postgres(r), "postgres") => assert!(r.read(async |_| Ok(())).await.is_ok()),
        (reader, kind) => panic!("{reader:?} for {kind}"),
    }
    let [tenant, api, personal] = three_keys(&app).await;
    // Keys are read only through the reader: the checker's pool is another keyward's
    // database (the same roles and groups, none of these keys), so a lookup that fell back
    // to the pool would find no key and answer differently.
    let elsewhere = spawn_app().await;
    let on_reader = checker_on(&elsewhere.state.pool, Some(reader));
    let on_pool = checker_on(&app.state.pool, None);
    // Every column filled with a value of its own, so that a column read into the wrong field
    // shows: last use from a key check, the rest written directly (again before each check, as
    // an accepted check clears the failure count).
    for key in [&tenant, &api, &personal] {
        app.authenticate(&key.id, &key.secret).await.unwrap();
    }
    let fill = || async {
        sqlx::query(
            "UPDATE access_keys SET description = 'feeds partners', previous_secret_hash = 'prev', \
             previous_valid_until = 1900000001, secret_regenerated_at = 1800000002, \
             failed_attempts = 3, allowed_networks = '10.0.0.0/8, 127.0.0.0/8', \
             last_used_ip = '192.0.2.9' WHERE id = $1",
        )
        .bind(&api.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    };
    let pair = |key: &ShownKey| (key.id.clone(), key.secret.clone());
    let ([t, a, p], missing) = (
        [pair(&tenant), pair(&api), pair(&personal)],
        ("kwk_doesnotexist000000".to_string(), tenant.secret.clone()),
    );
    for keys in [vec![&t, &p], vec![&a], vec![&p], vec![&missing, &t]] {
        let keys: Vec<(&str, &str)> = keys.iter().map(|(i, s)| (i.as_str(), s.as_str())).collect();
        fill().await;
        let pooled = outcomes(&app, &on_pool, &keys).await;
        fill().await;
        let local = outcomes(&app, &on_reader, &keys).await;
        assert_eq!(local, pooled, "lookup of {keys:?}");
    }
    assert!(
        app.check_key(&api.id, &api.secret)
            .await
            .is_ok_and(|k| k.id() == api.id),
        "the filled key itself is accepted"
    );

    let ring = app.state.keyring();
    let local = on_reader
        .check_all(
            &ring,
            vec![
                attempt(&tenant, &tenant.secret),
                attempt(&personal, &personal.secret),
            ],
        )
        .await;
    assert_eq!(local.len(), 2);
    let (t, p) = (
        local[0].as_ref().expect("tenant key accepted"),
        local[1].as_ref().expect("personal key accepted"),
    );
    assert_eq!(t.id(), tenant.id);
    assert_eq!(t.role_ids(), ["role_key_admin", "role_read_only"]);
    assert_eq!(t.group_ids(), ["grp_administrators"]);
    assert!(t.permissions().iter().any(|p| p == "keys:write"));
    assert_eq!(p.id(), personal.id);
    assert!(p.is_personal());
    assert!(
        !p.permissions().is_empty(),
        "the owner's groups give the personal key permissions"
    );

    if database_kind() == "sqlite" {
        // Between reads the reader holds no snapshot: a full checkpoint is not held back.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        assert_eq!(
            busy, 0,
            "a reader kept the write-ahead log from being truncated"
        );
    }

    // A change committed through the pool behind the application's back (as another process
    // would) is seen by the next read once the remembered key is older than the cache's
    // bound: the reader holds no snapshot.
    sqlx::query("UPDATE access_keys SET active = 0 WHERE id = $1")
        .bind(&tenant.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    app.clock.advance(
        chrono::Duration::from_std(keyward::service::key_auth::KEY_CACHE_FRESH_FOR).unwrap(),
    );
    assert!(matches!(
        on_reader
            .check(&ring, attempt(&tenant, &tenant.secret))
            .await,
        Err(AuthError::Refused(Refusal::Inactive))
    ));
    assert_eq!(
        app.authenticate(&tenant.id, &tenant.secret)
            .await
            .unwrap_err(),
        Refusal::Inactive
    );
}

#[tokio::test]
async fn a_key_check_uses_the_pool_when_the_reader_cannot_read() {
    let app = spawn_app().await;
    let [tenant, _, _] = three_keys(&app).await;
    // A reader that fails on every read: a SQLite file that does not exist, or a PostgreSQL
    // server where nothing listens (port 1 on loopback).
    let broken = || match database_kind() {
        "postgres" => Reader::Postgres(
            PgReader::for_url("postgres://keyward@127.0.0.1:1/keyward", 2)
                .expect("a PostgreSQL URL gives a reader"),
        ),
        _ => Reader::Sqlite(
            SqliteReader::for_url("sqlite:///nonexistent-keyward-dir/none.db")
                .expect("a SQLite URL gives a reader"),
        ),
    };
    let probe = broken();
    match &probe {
        Reader::Sqlite(r) => assert!(r.read(|_| Ok(())).is_err()),
        Reader::Postgres(r) => assert!(r.read(async |_| Ok(())).await.is_err()),
    }
    let checker = checker_with(&app, broken());
    let ring = app.state.keyring();
    let accepted = checker
        .check(&ring, attempt(&tenant, &tenant.secret))
        .await
        .expect("accepted through the pool");
    assert_eq!(accepted.id(), tenant.id);
    assert!(accepted.permissions().iter().any(|p| p == "keys:write"));
    // Again, now that the reader rests: still answered, through the pool.
    assert!(
        checker
            .check(&ring, attempt(&tenant, &tenant.secret))
            .await
            .is_ok()
    );
    assert!(matches!(
        checker.check(&ring, attempt(&tenant, "kws_wrong")).await,
        Err(AuthError::Refused(_))
    ));
}

#[tokio::test]
async fn postgresql_key_checks_survive_a_connection_the_server_ended() {
    // The PostgreSQL reader's connections are not pinged before use (that is the point of
    // them); one the server ended must cost no request an error, and must not be used again.
    let app = spawn_app().await;
    if database_kind() != "postgres" {
        return;
    }
    let [tenant, _, _] = three_keys(&app).await;
    let Some(Reader::Postgres(reader)) = Reader::for_url(&app.database_url) else {
        panic!("a PostgreSQL URL gives a PostgreSQL reader");
    };
    let checker = checker_with(&app, Reader::Postgres(reader));
    let ring = app.state.keyring();
    let sessions = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity \
             WHERE application_name = 'keyward key checks' AND datname = current_database() \
             ORDER BY pid",
        )
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
    };
    // The app's own checker may hold sessions too; only ours are ended below.
    let before = sessions().await;
    checker
        .check(&ring, attempt(&tenant, &tenant.secret))
        .await
        .expect("accepted");
    let ours: Vec<i32> = sessions()
        .await
        .into_iter()
        .filter(|pid| !before.contains(pid))
        .collect();
    assert_eq!(ours.len(), 1, "one connection of the reader's own");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(ours[0])
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert!(ended);

    for _ in 0..3 {
        // Past the key checks' memory, so that each check reads.
        app.clock.advance(
            chrono::Duration::from_std(keyward::service::key_auth::KEY_CACHE_FRESH_FOR).unwrap(),
        );
        let accepted = checker
            .check(&ring, attempt(&tenant, &tenant.secret))
            .await
            .expect("accepted despite the ended connection");
        assert_eq!(accepted.id(), tenant.id);
    }
    // Had the ended connection gone back to the idle list, every check would have failed on
    // it and gone to the pool, and no new session would exist.
    let new: Vec<i32> = sessions()
        .await
        .into_iter()
        .filter(|pid| !before.contains(pid) && *pid != ours[0])
        .collect();
    assert_eq!(new.len(), 1, "the reader connected again: {new:?}");
}

#[tokio::test]
async fn a_postgresql_server_that_does_not_answer_costs_a_check_its_time_limit_only() {
    // A server that accepts connections and never says a word: connecting hangs. The check
    // must go to the pool once the reader's time limit passes, and the reader must rest
    // rather than hang every following check the same way.
    let app = spawn_app().await;
    let [tenant, _, _] = three_keys(&app).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let reader = PgReader::for_url(&format!("postgres://keyward@127.0.0.1:{port}/keyward"), 2)
        .expect("a PostgreSQL URL gives a reader")
        .with_time_limit(std::time::Duration::from_millis(300));
    let checker = checker_with(&app, Reader::Postgres(reader));
    let ring = app.state.keyring();
    for _ in 0..3 {
        let key = checker
            .check(&ring, attempt(&tenant, &tenant.secret))
            .await
            .expect("answered through the pool");
        assert_eq!(key.id(), tenant.id);
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "after one read timed out, the resting reader tried no other"
    );
}

#[tokio::test]
async fn the_server_checks_keys_on_the_reader() {
    // The running server's key checks go through the reader, not the pool: on PostgreSQL its
    // session shows under its own application name.
    let app = spawn_app().await;
    if database_kind() != "postgres" {
        return;
    }
    let [tenant, _, _] = three_keys(&app).await;
    let status = app
        .client
        .get(format!("{}/api/v1/apikeys/current", app.address))
        .basic_auth(&tenant.id, Some(&tenant.secret))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let readers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'keyward key checks' AND datname = current_database()",
    )
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(readers, 1);
}

#[tokio::test]
async fn postgresql_has_statistics_for_the_permission_tables_from_the_start() {
    // Migrations fill these tables with a few dozen rows, too few for autovacuum ever to
    // analyze them; without statistics PostgreSQL planned the key lookup's joins as if each
    // held ten pages of rows, and the lookup ran at about two thirds of its speed.
    let app = spawn_app().await;
    if database_kind() != "postgres" {
        return;
    }
    let unanalyzed: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE relname IN ('roles', 'role_permissions', 'group_roles', 'group_members', \
         'user_groups', 'users', 'key_roles', 'key_groups') \
         AND last_analyze IS NULL AND last_autoanalyze IS NULL",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert!(unanalyzed.is_empty(), "never analyzed: {unanalyzed:?}");
}

#[tokio::test]
async fn a_change_to_a_role_or_group_counts_at_the_next_check() {
    // Key checks keep the role and group mappings in memory; a change made by any path (here
    // plain SQL, as another instance or a script would) must count at the very next check
    // once the key checks' memory of the key is past its bound (KEY_CACHE_FRESH_FOR).
    let app = spawn_app().await;
    let [tenant, _, personal] = three_keys(&app).await;
    let permissions = |key: &ShownKey| {
        let (id, secret) = (key.id.clone(), key.secret.clone());
        let app = &app;
        async move {
            app.check_key(&id, &secret)
                .await
                .expect("accepted")
                .permissions()
                .to_vec()
        }
    };
    let version = || async {
        sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE name = 'access_version'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap()
    };
    assert!(
        permissions(&tenant)
            .await
            .contains(&"keys:write".to_string())
    );
    let before = version().await;

    // The tenant key's roles lose keys:write (it also holds it through Administrators, so
    // take that group's role away too).
    sqlx::query("DELETE FROM role_permissions WHERE permission = 'keys:write' AND role_id = 'role_key_admin'")
        .execute(&app.state.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM group_roles WHERE group_id = 'grp_administrators'")
        .execute(&app.state.pool)
        .await
        .unwrap();
    assert_ne!(version().await, before, "the triggers moved the version");
    let fresh =
        chrono::Duration::from_std(keyward::service::key_auth::KEY_CACHE_FRESH_FOR).unwrap();
    app.clock.advance(fresh);
    let now_held = permissions(&tenant).await;
    assert!(
        !now_held.contains(&"keys:write".to_string()),
        "{now_held:?}"
    );
    assert!(now_held.contains(&"keys:read".to_string()), "{now_held:?}");
    // The personal key's owner is an administrator only through that group.
    assert!(permissions(&personal).await.is_empty());

    // Given back through a group: the personal key acts with it again at once.
    sqlx::query("INSERT INTO group_roles (group_id, role_id) VALUES ('grp_administrators', 'role_read_only')")
        .execute(&app.state.pool)
        .await
        .unwrap();
    app.clock.advance(fresh);
    let personal_now = permissions(&personal).await;
    assert!(
        personal_now.contains(&"audit:read".to_string()),
        "{personal_now:?}"
    );
    assert!(
        !personal_now.contains(&"keys:write".to_string()),
        "{personal_now:?}"
    );
}
