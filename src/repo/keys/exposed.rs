//! Finding keys by the HMAC of a secret reported exposed (it comes without its key ID), and the
//! changes an exposure report makes, for many keys in a few statements.

use sqlx::{AnyConnection, AssertSqlSafe};

use super::{KeyRow, round_trip};

/// Most values one statement binds: well under both backends' limits.
const CHUNK: usize = 500;

/// Which of a key's secrets a stored hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Its current secret.
    Current,
    /// The previous secret, still inside its grace period at the time asked.
    Previous,
    /// A secret it had before (the tripwire's memory), no longer accepted.
    Replaced { replaced_at: i64 },
}

/// A hash found on a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashHit {
    pub secret_hash: String,
    pub key_id: String,
    pub held: Held,
}

/// `$1, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys holding any of `hashes` (current secret, previous one inside its grace at `now`, or
/// a replaced one), one statement per 500 hashes. A hash may hit several rows (a previous
/// secret is also remembered as replaced); the caller picks the most alive.
pub async fn find_by_secret_hashes(
    conn: &mut AnyConnection,
    hashes: &[String],
    now: i64,
) -> sqlx::Result<Vec<HashHit>> {
    let mut hits = Vec::new();
    for chunk in hashes.chunks(CHUNK) {
        let list = placeholders(chunk.len());
        let at = chunk.len() + 1;
        let sql = format!(
            "SELECT secret_hash, id, 'c' AS kind, 0 AS replaced_at FROM access_keys \
             WHERE secret_hash IN ({list}) \
             UNION ALL SELECT previous_secret_hash, id, 'p', 0 FROM access_keys \
             WHERE previous_secret_hash IN ({list}) AND previous_valid_until > ${at} \
             UNION ALL SELECT secret_hash, key_id, 'r', replaced_at FROM replaced_secrets \
             WHERE secret_hash IN ({list})"
        );
        let mut query = sqlx::query_as::<_, (String, String, String, i64)>(AssertSqlSafe(sql));
        for hash in chunk {
            query = query.bind(hash.as_str());
        }
        round_trip();
        let rows = query.bind(now).fetch_all(&mut *conn).await?;
        hits.extend(
            rows.into_iter()
                .map(|(secret_hash, key_id, kind, replaced_at)| {
                    let held = match kind.as_str() {
                        "c" => Held::Current,
                        "p" => Held::Previous,
                        _ => Held::Replaced { replaced_at },
                    };
                    HashHit {
                        secret_hash,
                        key_id,
                        held,
                    }
                }),
        );
    }
    Ok(hits)
}

/// The keys with these IDs (in no particular order), one statement per 500 IDs.
pub async fn find_many(conn: &mut AnyConnection, ids: &[&str]) -> sqlx::Result<Vec<KeyRow>> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "{} FROM access_keys k LEFT JOIN users u ON u.id = k.owner_user_id WHERE k.id IN ({})",
            select_columns!(),
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, KeyRow>(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        round_trip();
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// Ends a key's grace period: its previous secret stops working now.
pub async fn end_grace(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE access_keys SET previous_secret_hash = NULL, previous_valid_until = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
