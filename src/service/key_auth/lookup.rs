//! Finding the keys a check judges: from the key checks' memory when it can be trusted (see
//! `cache`), otherwise read, with the role and group mappings behind their permissions.

use std::sync::Arc;

use super::KeyChecker;
use crate::db::Reader;
use crate::service::repo::keys::{self as repo, AccessMap, AuthLookup, AuthRow};

impl KeyChecker {
    /// The keys with these IDs and their permissions: as read recently when that can be trusted
    /// (see `cache`), otherwise read now and resolved against the role and group mappings of
    /// the version they were read under. A remembered key is shared, not copied.
    pub(super) async fn find(
        &self,
        ids: &[&str],
        now_ms: i64,
    ) -> Result<Vec<Arc<AuthRow>>, sqlx::Error> {
        let mut found = Vec::with_capacity(ids.len());
        let mut missing: Vec<&str> = Vec::new();
        for id in ids {
            match self.cache.get(id, now_ms) {
                Some(known) => found.push(known),
                None => missing.push(id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let start = self.cache.start_read();
        let read = self.read(&missing).await?;
        let map = self.access_map(&read).await?;
        let read: Vec<Arc<AuthRow>> = read.into_iter().map(|f| Arc::new(map.resolve(f))).collect();
        self.cache.remember(start, &read, now_ms);
        found.extend(read);
        Ok(found)
    }

    /// The keys with these IDs, read by the reader; through the pool when there is none or
    /// its read fails (a busy moment on SQLite, a dropped connection on PostgreSQL).
    async fn read(&self, ids: &[&str]) -> Result<Vec<AuthLookup>, sqlx::Error> {
        match self.reader.as_deref() {
            Some(Reader::Sqlite(reader)) => {
                match reader.read(|conn| repo::lookup_for_auth_sqlite(conn, ids)) {
                    Ok(rows) => return Ok(rows),
                    // Already reported when the reader began to rest.
                    Err(crate::db::ReadError::Resting) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a key on the request's thread failed; using the pool")
                    }
                }
            }
            Some(Reader::Postgres(reader)) => match reader
                .read(async |conn| repo::lookup_for_auth_pg(conn, ids).await)
                .await
            {
                Ok(rows) => return Ok(rows),
                Err(crate::db::PgReadError::Resting) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading a key on the key checks' connection failed; using the pool")
                }
            },
            None => {}
        }
        let mut conn = self.pool.acquire().await?;
        repo::lookup_for_auth(&mut conn, crate::db::Backend::of_pool(&self.pool), ids).await
    }

    /// The role and group mappings, reloaded when a key was read under another version.
    async fn access_map(&self, found: &[AuthLookup]) -> Result<Arc<AccessMap>, sqlx::Error> {
        let held = self
            .access
            .read()
            .map(|map| map.clone())
            .unwrap_or_default();
        if found.iter().all(|f| f.access_version == held.version) {
            return Ok(held);
        }
        let mut conn = self.pool.acquire().await?;
        let fresh = Arc::new(repo::load_access_map(&mut conn).await?);
        if let Ok(mut map) = self.access.write() {
            *map = fresh.clone();
        }
        Ok(fresh)
    }
}
