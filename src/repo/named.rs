//! What groups and roles have alike in storage: each is a table of named things with a
//! description, some of them built in, and the same statements write both.

/// Writes `ids`, `insert`, `update` and `delete` for a table of named things (`id`, `name`
/// unique, `description`, `builtin`, `created_at`), in the module that owns the table.
macro_rules! named_table {
    ($table:literal) => {
        /// The ID of every row.
        pub async fn ids(conn: &mut sqlx::AnyConnection) -> sqlx::Result<Vec<String>> {
            sqlx::query_scalar(concat!("SELECT id FROM ", $table))
                .fetch_all(conn)
                .await
        }

        /// Inserts a custom one (not built in); fails with a unique violation when the name is
        /// taken.
        pub async fn insert(
            conn: &mut sqlx::AnyConnection,
            id: &str,
            name: &str,
            description: &str,
            now: i64,
        ) -> sqlx::Result<()> {
            sqlx::query(concat!(
                "INSERT INTO ",
                $table,
                " (id, name, description, builtin, created_at) VALUES ($1, $2, $3, 0, $4)"
            ))
            .bind(id)
            .bind(name)
            .bind(description)
            .bind(now)
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Renames one and changes its description; fails with a unique violation when the
        /// name is taken.
        pub async fn update(
            conn: &mut sqlx::AnyConnection,
            id: &str,
            name: &str,
            description: &str,
        ) -> sqlx::Result<()> {
            sqlx::query(concat!(
                "UPDATE ",
                $table,
                " SET name = $1, description = $2 WHERE id = $3"
            ))
            .bind(name)
            .bind(description)
            .bind(id)
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Deletes one; what links to it (members, roles, permissions, key assignments) goes
        /// with it.
        pub async fn delete(conn: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<()> {
            sqlx::query(concat!("DELETE FROM ", $table, " WHERE id = $1"))
                .bind(id)
                .execute(conn)
                .await?;
            Ok(())
        }
    };
}

pub(crate) use named_table;
