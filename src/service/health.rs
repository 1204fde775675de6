//! Whether keyward can do its work, for `/healthz`.

use sqlx::AnyPool;

/// Whether the database answers.
pub async fn database_answers(pool: &AnyPool) -> bool {
    crate::auth::store::settings::ping(pool).await
}
