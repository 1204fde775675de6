//! Users: the people who sign in to the console.

use sqlx::AnyConnection;

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub active: i64,
    pub last_sign_in_at: Option<i64>,
}

/// `SELECT <every user column> FROM users <tail>`, as a literal.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, email, name, password_hash, active, last_sign_in_at ",
            "FROM users ",
            $tail
        )
    };
}

/// Inserts a user; fails with a unique violation when the email is taken.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Finds a user by normalised email.
pub async fn find_by_email(conn: &mut AnyConnection, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(select_users!("WHERE email = $1"))
        .bind(email)
        .fetch_optional(conn)
        .await
}

/// Finds a user by ID.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(select_users!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// How many users exist.
pub async fn count(conn: &mut AnyConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await
}

/// Every user, by name.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as(select_users!("ORDER BY name, email"))
        .fetch_all(conn)
        .await
}

/// The ID of every user.
pub async fn ids(conn: &mut AnyConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(conn)
        .await
}

/// The IDs of the users who can sign in: enabled, with a password set.
pub async fn ids_who_can_sign_in(conn: &mut AnyConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM users WHERE active = 1 AND password_hash IS NOT NULL")
        .fetch_all(conn)
        .await
}

/// Enables or disables a user.
pub async fn set_active(
    conn: &mut AnyConnection,
    id: &str,
    active: bool,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET active = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces a user's password hash.
pub async fn set_password(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a successful sign-in.
pub async fn touch_sign_in(conn: &mut AnyConnection, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A person to tell something, by email and bell.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// The active members of `group_id` and the active people among `others`, each once, by name.
pub async fn active_members_and(
    conn: &mut AnyConnection,
    group_id: &str,
    others: [Option<&str>; 3],
) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as(
        "SELECT id, email, name FROM users WHERE active = 1 AND (\
         id IN (SELECT user_id FROM group_members WHERE group_id = $1) \
         OR id = $2 OR id = $3 OR id = $4) ORDER BY name, id",
    )
    .bind(group_id)
    .bind(others[0])
    .bind(others[1])
    .bind(others[2])
    .fetch_all(conn)
    .await
}
