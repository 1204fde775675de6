//! People's accounts: the first administrator, sign-in with throttling, password changes and
//! resets, the person behind a session and the list of their sessions.

pub mod factors;
mod password;
mod reset;
mod sessions;
mod setup;
mod sign_in;

use sqlx::AnyPool;

use crate::error::AppResult;
use crate::service::audit::NewEntry;
use crate::service::repo::{self, groups::ADMINISTRATORS};

pub use password::{PasswordChange, change_password};
pub use reset::{
    RESET_TTL_SECS, ResetFor, ResetInput, request_reset, reset_link, reset_password, send_reset,
};
pub use sessions::{
    SessionInfo, list_sessions, sign_out_everywhere, sign_out_other_sessions, sign_out_session,
};
pub use setup::{INVALID_SETUP_LINK, NewAdmin, SetupLink, create_admin, setup_link};
pub use sign_in::{NextStep, SignInError, SignedIn, sign_in, sign_out};

/// The audit entry of something a person did to their own account.
fn own_entry<'a>(
    user_id: &'a str,
    email: &'a str,
    action: &'a str,
    client_ip: &'a str,
    outcome: &'a str,
) -> NewEntry<'a> {
    NewEntry {
        actor_id: Some(user_id),
        actor_label: email,
        action,
        target_type: "user",
        target_id: user_id,
        target_label: email,
        client_ip,
        outcome,
        ..Default::default()
    }
}

/// The person behind a session, as every console page needs them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Member of the built-in Administrators group.
    pub is_admin: bool,
    /// The union of the permissions of the person's roles, through their groups.
    pub permissions: Vec<String>,
    pub unread_notifications: i64,
    /// The tenant's policy asks this person for a second factor they do not have yet: only
    /// the enrolment pages open.
    pub must_enrol: bool,
}

/// The person a session names, while they exist and are active; `None` ends the session.
pub async fn signed_in(pool: &AnyPool, user_id: &str) -> AppResult<Option<Person>> {
    let mut conn = pool.acquire().await?;
    let user = match repo::users::find(&mut conn, user_id).await? {
        Some(user) if user.active == 1 => user,
        _ => return Ok(None),
    };
    let permissions = repo::roles::user_permissions(&mut conn, &user.id).await?;
    let is_admin = repo::groups::is_member(&mut conn, ADMINISTRATORS, &user.id).await?;
    let unread_notifications = repo::notifications::unread_count(&mut conn, &user.id).await?;
    let must_enrol = factors::must_enrol(&mut conn, &user.id).await?;
    Ok(Some(Person {
        must_enrol,
        id: user.id,
        name: user.name,
        email: user.email,
        is_admin,
        permissions,
        unread_notifications,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_passwords_never_reach_debug_output() {
        let admin = NewAdmin {
            name: "Ada",
            email: "ada@example.com",
            password: "secret-horse-battery",
            confirm: Some("secret-horse-battery"),
        };
        let shown = format!("{admin:?}");
        assert!(shown.contains("ada@example.com"));
        assert!(!shown.contains("secret-horse"), "{shown}");
        let change = PasswordChange {
            current: "old-secret-words",
            new: "new-secret-words",
            confirm: "new-secret-words",
        };
        assert!(!format!("{change:?}").contains("secret"));
    }
}
