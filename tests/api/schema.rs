//! Both migration folders must build the same tables and columns.

use std::collections::BTreeMap;

async fn sqlite_columns() -> BTreeMap<String, Vec<(String, bool)>> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let pool = keyward::db::connect(&url).await.unwrap();
    keyward::db::migrate(&pool, keyward::db::Backend::Sqlite)
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name, \"notnull\" FROM pragma_table_info('{t}')"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut cols: Vec<(String, bool)> = rows.into_iter().map(|(n, nn)| (n, nn == 1)).collect();
        cols.sort();
        out.insert(t, cols);
    }
    out
}

async fn postgres_columns(base: &str) -> BTreeMap<String, Vec<(String, bool)>> {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    assert!(url.starts_with(base.rsplit_once('/').unwrap().0));
    let pool = keyward::db::connect(&url).await.unwrap();
    keyward::db::migrate(&pool, keyward::db::Backend::Postgres)
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for (t, c, nullable) in rows {
        // A primary key column is NOT NULL in PostgreSQL; SQLite reports INTEGER PRIMARY KEY
        // and TEXT PRIMARY KEY columns as nullable, so compare primary keys by name only.
        out.entry(t).or_default().push((c, nullable == "NO"));
    }
    for cols in out.values_mut() {
        cols.sort();
    }
    out
}

fn without_pk_nullability(
    mut m: BTreeMap<String, Vec<(String, bool)>>,
) -> BTreeMap<String, Vec<(String, bool)>> {
    for (table, cols) in m.iter_mut() {
        for (name, not_null) in cols.iter_mut() {
            let pk = name == "id"
                || name == "id_hash"
                || name == "token_hash"
                || (table == "settings" && name == "name")
                || (table == "permissions" && name == "name");
            if pk {
                *not_null = true;
            }
        }
    }
    m
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let Ok(base) = std::env::var("KEYWARD_TEST_DATABASE_URL") else {
        // The PostgreSQL run of scripts/check covers this; on SQLite alone there is no peer.
        eprintln!(
            "schema comparison needs KEYWARD_TEST_DATABASE_URL; compared in the PostgreSQL run"
        );
        return;
    };
    let lite = without_pk_nullability(sqlite_columns().await);
    let pg = without_pk_nullability(postgres_columns(&base).await);
    assert!(lite.len() >= 12, "{:?}", lite.keys());
    assert_eq!(
        lite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>(),
        "same tables"
    );
    for (table, cols) in &lite {
        assert_eq!(Some(cols), pg.get(table), "columns of {table}");
    }
}
