//! Second factors: the authenticator app (`totp_factors`) and recovery codes
//! (`recovery_codes`).

use sqlx::AnyConnection;

/// A person's authenticator app as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct TotpRow {
    pub sealed_secret: String,
    /// `None` while the enrolment waits for its first code.
    pub confirmed_at: Option<i64>,
}

/// The person's authenticator app, confirmed or waiting for its first code.
pub async fn find_totp(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<Option<TotpRow>> {
    sqlx::query_as("SELECT sealed_secret, confirmed_at FROM totp_factors WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// Stores a new secret waiting for its first code, replacing an earlier one that never got one;
/// false (nothing written) when the person has a confirmed app already.
pub async fn insert_pending_totp(
    conn: &mut AnyConnection,
    user_id: &str,
    sealed_secret: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
         created_at = excluded.created_at WHERE totp_factors.confirmed_at IS NULL",
    )
    .bind(user_id)
    .bind(sealed_secret)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Makes a waiting app count, its first code's step accepted; false when it was confirmed
/// already (or is gone).
pub async fn confirm_totp(
    conn: &mut AnyConnection,
    user_id: &str,
    step: i64,
    now: i64,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "UPDATE totp_factors SET confirmed_at = $1, last_step = $2 \
         WHERE user_id = $3 AND confirmed_at IS NULL",
    )
    .bind(now)
    .bind(step)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Accepts a code of time step `step` once: false when a code of this step or a later one was
/// accepted before (a replay), so two requests with one code cannot both pass.
pub async fn accept_step(conn: &mut AnyConnection, user_id: &str, step: i64) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "UPDATE totp_factors SET last_step = $1 \
         WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1",
    )
    .bind(step)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Removes the person's authenticator app; false when there was none.
pub async fn delete_totp(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let changed = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(changed == 1)
}

/// Whether the person has a second factor that counts: a confirmed authenticator app or a
/// passkey.
pub async fn has_second_factor(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
         + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1)",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Whether the person has a passkey.
pub async fn has_passkey(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Replaces every recovery code of the person with these (hashed) ones.
pub async fn replace_recovery_codes(
    conn: &mut AnyConnection,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> sqlx::Result<()> {
    delete_recovery_codes(conn, user_id).await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Uses up an unused recovery code; false when there is no such code or it was used.
pub async fn use_recovery_code(
    conn: &mut AnyConnection,
    user_id: &str,
    hash: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 \
         WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(hash)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// How many of the person's recovery codes are unused.
pub async fn recovery_codes_left(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// Whether the person was ever given recovery codes (used or not).
pub async fn has_recovery_codes(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Deletes every recovery code of the person.
pub async fn delete_recovery_codes(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
