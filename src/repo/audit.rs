use sqlx::AnyConnection;

/// One audit entry to write. Never carries a secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewEntry<'a> {
    pub actor_id: Option<&'a str>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub target_label: &'a str,
    pub client_ip: &'a str,
    pub outcome: &'a str,
    pub details: &'a str,
}

/// A stored audit entry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub target_label: String,
    pub client_ip: String,
    pub outcome: String,
    pub details: String,
}

/// Appends an entry.
pub async fn insert(conn: &mut AnyConnection, at: i64, e: &NewEntry<'_>) -> sqlx::Result<()> {
    insert_many(conn, std::slice::from_ref(&(at, *e))).await
}

/// Inserts several entries, up to a hundred rows to a statement.
pub async fn insert_many(
    conn: &mut AnyConnection,
    entries: &[(i64, NewEntry<'_>)],
) -> sqlx::Result<()> {
    const COLUMNS: usize = 10;
    const ROWS: usize = 100;
    /// The statement for each number of rows, written once (a busy refusal writer inserts
    /// batches of every size, many times a second).
    static SQL: [[std::sync::OnceLock<String>; ROWS]; 2] =
        [const { [const { std::sync::OnceLock::new() }; ROWS] }; 2];
    let numbered = super::numbered(conn);
    for chunk in entries.chunks(ROWS) {
        let sql = SQL[usize::from(numbered)][chunk.len() - 1].get_or_init(|| {
            format!(
                "INSERT INTO audit_log (at, actor_id, actor_label, action, target_type, \
                 target_id, target_label, client_ip, outcome, details) VALUES {}",
                super::values_rows(numbered, chunk.len(), COLUMNS)
            )
        });
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for (at, e) in chunk {
            query = query
                .bind(*at)
                .bind(e.actor_id)
                .bind(e.actor_label)
                .bind(e.action)
                .bind(e.target_type)
                .bind(e.target_id)
                .bind(e.target_label)
                .bind(e.client_ip)
                .bind(e.outcome)
                .bind(e.details);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes entries written before `before`, a batch at a time so that a first purge of a long
/// log never holds one huge transaction. Returns how many went.
pub async fn purge(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    const BATCH: i64 = 10_000;
    let mut purged = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM audit_log WHERE id IN \
             (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(BATCH)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        purged += n;
        if n < BATCH as u64 {
            return Ok(purged);
        }
    }
}

/// What to show of the audit log; empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Show entries older than this ID (the next page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Entries matching a filter, newest first. Text filters match a prefix of the actor label,
/// action, target ID or target label.
pub async fn list(conn: &mut AnyConnection, f: &Filter) -> sqlx::Result<Vec<EntryRow>> {
    let sql = "SELECT id, at, actor_id, actor_label, action, target_type, target_id, \
               target_label, client_ip, outcome, details FROM audit_log \
               WHERE ($1 = '' OR LOWER(actor_label) LIKE $2 ESCAPE '\\' OR actor_id = $1) \
                 AND ($3 = '' OR action LIKE $4 ESCAPE '\\') \
                 AND ($5 = '' OR target_id = $5 OR LOWER(target_label) LIKE $6 ESCAPE '\\') \
                 AND at >= $7 AND at <= $8 AND id < $9 \
               ORDER BY id DESC LIMIT $10";
    sqlx::query_as(sql)
        .bind(&f.actor)
        .bind(format!("{}%", escape_like(&f.actor.to_ascii_lowercase())))
        .bind(&f.action)
        .bind(format!("{}%", escape_like(&f.action)))
        .bind(&f.target)
        .bind(format!("{}%", escape_like(&f.target.to_ascii_lowercase())))
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(f.before_id.unwrap_or(i64::MAX))
        .bind(f.limit)
        .fetch_all(conn)
        .await
}

/// Escapes `\`, `%` and `_` so that user input matches itself in a `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_match_themselves() {
        assert_eq!(super::escape_like("sign_in 100%"), "sign\\_in 100\\%");
        assert_eq!(super::escape_like("a\\b"), "a\\\\b");
    }
}
