use sqlx::AnyConnection;

/// The built-in Administrators group.
pub const ADMINISTRATORS: &str = "grp_administrators";

/// A group with its member count and role names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: i64,
    pub members: i64,
}

/// Adds a user to a group (no-op when already a member).
pub async fn add_member(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(group_id)
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a user belongs to a group.
pub async fn is_member(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2",
    )
    .bind(group_id)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Every group with its member count.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<GroupSummary>> {
    sqlx::query_as(
        "SELECT g.id, g.name, g.description, g.builtin, \
                (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS members \
         FROM user_groups g ORDER BY g.builtin DESC, g.name",
    )
    .fetch_all(conn)
    .await
}

/// One group with its member count.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<GroupSummary>> {
    sqlx::query_as(
        "SELECT g.id, g.name, g.description, g.builtin, \
                (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS members \
         FROM user_groups g WHERE g.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// (group id, role name) pairs for every group's roles.
pub async fn role_names(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT gr.group_id, r.name FROM group_roles gr JOIN roles r ON r.id = gr.role_id \
         ORDER BY r.name",
    )
    .fetch_all(conn)
    .await
}

/// (user id, group name) pairs for every membership.
pub async fn memberships(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT m.user_id, g.name FROM group_members m JOIN user_groups g ON g.id = m.group_id \
         ORDER BY g.name",
    )
    .fetch_all(conn)
    .await
}
