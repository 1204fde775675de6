//! Roles and the permissions they hold (`roles`, `role_permissions`, `permissions`).

use sqlx::AnyConnection;

/// A role row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: i64,
}

/// Every role, built-ins first.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<RoleRow>> {
    sqlx::query_as("SELECT id, name, description, builtin FROM roles ORDER BY builtin DESC, name")
        .fetch_all(conn)
        .await
}

/// One role.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<RoleRow>> {
    sqlx::query_as("SELECT id, name, description, builtin FROM roles WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

// `ids`, `insert`, `update` and `delete`, as for groups.
super::named::named_table!("roles");

/// Replaces the permissions of a role.
pub async fn set_permissions(
    conn: &mut AnyConnection,
    role_id: &str,
    permissions: &[&str],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(role_id)
        .execute(&mut *conn)
        .await?;
    for permission in permissions {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(role_id)
            .bind(permission)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// (permission, what it allows) for every permission.
pub async fn permission_descriptions(
    conn: &mut AnyConnection,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT name, description FROM permissions")
        .fetch_all(conn)
        .await
}

/// The users who hold a role through one of their groups.
pub async fn holders(conn: &mut AnyConnection, role_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT m.user_id FROM group_roles gr \
         JOIN group_members m ON m.group_id = gr.group_id WHERE gr.role_id = $1",
    )
    .bind(role_id)
    .fetch_all(conn)
    .await
}

/// (role id, permission) pairs for every role.
pub async fn permissions(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT role_id, permission FROM role_permissions ORDER BY permission")
        .fetch_all(conn)
        .await
}

/// The permissions of one role.
pub async fn role_permissions(
    conn: &mut AnyConnection,
    role_id: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT permission FROM role_permissions WHERE role_id = $1 ORDER BY permission",
    )
    .bind(role_id)
    .fetch_all(conn)
    .await
}

/// The permissions a user holds through the roles of their groups.
pub async fn user_permissions(
    conn: &mut AnyConnection,
    user_id: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT rp.permission FROM group_members m \
         JOIN group_roles gr ON gr.group_id = m.group_id \
         JOIN role_permissions rp ON rp.role_id = gr.role_id \
         WHERE m.user_id = $1 ORDER BY rp.permission",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}
