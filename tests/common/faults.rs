//! Faults injected into the real database: a step of an action that fails as a full disk or a
//! dropped connection would at that point.

use sqlx::{AssertSqlSafe, Executor};

use super::TestApp;

/// From now on every insert into `table` fails; returns the fault's message, unique to this
/// call, to find in the logs.
pub async fn fail_inserts_into(app: &TestApp, table: &str) -> String {
    let fault = super::random_id("injected_fault");
    let statements = if super::database_kind() == "postgres" {
        vec![
            format!(
                "CREATE FUNCTION {fault}() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION '{fault}'; END $$"
            ),
            format!(
                "CREATE TRIGGER {fault} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {fault}()"
            ),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER {fault} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, '{fault}'); END"
        )]
    };
    for sql in statements {
        app.state
            .pool
            .execute(AssertSqlSafe(sql))
            .await
            .expect("fault installed");
    }
    fault
}
