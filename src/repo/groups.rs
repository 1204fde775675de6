//! Groups (`user_groups`) and what links them: their members (`group_members`) and their roles
//! (`group_roles`).

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

/// `SELECT <every group column and its member count> FROM user_groups g <tail>`, as a literal.
macro_rules! select_groups {
    ($tail:literal) => {
        concat!(
            "SELECT g.id, g.name, g.description, g.builtin, ",
            "(SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS members ",
            "FROM user_groups g ",
            $tail
        )
    };
}

/// Every group with its member count.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<GroupSummary>> {
    sqlx::query_as(select_groups!("ORDER BY g.builtin DESC, g.name"))
        .fetch_all(conn)
        .await
}

/// One group with its member count.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<GroupSummary>> {
    sqlx::query_as(select_groups!("WHERE g.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

// `ids`, `insert`, `update` and `delete`, as for roles.
super::named::named_table!("user_groups");

/// Locks a group's row for the rest of the transaction (a write that changes nothing), so that
/// transactions that check and change its members run one after the other.
pub async fn lock(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE user_groups SET builtin = builtin WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
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

/// Takes a user out of a group.
pub async fn remove_member(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
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

/// The IDs of a group's members.
pub async fn member_ids(conn: &mut AnyConnection, group_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(conn)
        .await
}

/// The members of a group who can sign in: enabled, with a password set.
pub async fn members_who_can_sign_in(
    conn: &mut AnyConnection,
    group_id: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM group_members m JOIN users u ON u.id = m.user_id \
         WHERE m.group_id = $1 AND u.active = 1 AND u.password_hash IS NOT NULL",
    )
    .bind(group_id)
    .fetch_all(conn)
    .await
}

/// The IDs of the groups a user belongs to.
pub async fn groups_of(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = $1")
        .bind(user_id)
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

/// The IDs of the roles a group gives its members.
pub async fn role_ids(conn: &mut AnyConnection, group_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT role_id FROM group_roles WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(conn)
        .await
}

/// Gives a group a role.
pub async fn add_role(conn: &mut AnyConnection, group_id: &str, role_id: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO group_roles (group_id, role_id) VALUES ($1, $2)")
        .bind(group_id)
        .bind(role_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes a role from a group.
pub async fn remove_role(
    conn: &mut AnyConnection,
    group_id: &str,
    role_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM group_roles WHERE group_id = $1 AND role_id = $2")
        .bind(group_id)
        .bind(role_id)
        .execute(conn)
        .await?;
    Ok(())
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
