//! Who is asking. A handler that takes `CurrentUser` runs only for a signed-in, active user. What
//! that person may open is decided by their permissions, as for an API key: the console's
//! `web::granted::Granted<P>` is obtained only by holding `P`.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::client_ip::client_ip;
use crate::auth::csrf;
use crate::auth::session_store::{ABSOLUTE_TIMEOUT_SECS, CONFIRMED_AT, SIGNED_IN_AT, USER_ID};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::accounts;
use crate::state::AppState;

/// The signed-in user and what the page frame needs to know about them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Member of the built-in Administrators group: only the grant rules of SPEC §11 ask this
    /// (who gives Tenant Administrator or Administrators); pages decide by `permissions`.
    pub is_admin: bool,
    /// The union of the permissions of the person's roles, through their groups.
    pub permissions: Vec<String>,
    pub unread_notifications: i64,
    /// The session's CSRF token, for the forms on the page (sign-out is on every page).
    pub csrf: String,
    /// Client address, for the audit log.
    pub client_ip: String,
    /// When the person last proved who they are (unix seconds): the password, or the second
    /// factor when they have one. See [`CurrentUser::confirmed_within`].
    pub confirmed_at: i64,
}

impl CurrentUser {
    /// The user as the actor of a change.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.id.clone(),
            label: self.email.clone(),
            is_admin: self.is_admin,
            permissions: self.permissions.clone(),
            client_ip: self.client_ip.clone(),
            acting_key: None,
            previous_secret: false,
        }
    }

    /// Whether the person proved who they are (password, or second factor when they have one)
    /// within the last `secs` seconds before `now`: what step-up before sensitive actions asks.
    pub fn confirmed_within(&self, now: i64, secs: i64) -> bool {
        now - self.confirmed_at <= secs
    }

    /// Whether the person holds a permission, decided as for an API key (`Actor::may`).
    pub fn may(&self, permission: crate::domain::Permission) -> bool {
        self.actor().may(permission)
    }
}

async fn load_current_user(req: HttpRequest, session: Session) -> Result<CurrentUser, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("application state missing")))?
        .clone();
    let sign_in = || AppError::SignInRequired {
        next: req.path().to_string(),
    };
    let user_id = session
        .get::<String>(USER_ID)
        .ok()
        .flatten()
        .ok_or_else(sign_in)?;
    let signed_in_at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
    if state.clock.unix() - signed_in_at > ABSOLUTE_TIMEOUT_SECS {
        session.purge();
        return Err(sign_in());
    }
    let Some(person) = accounts::signed_in(&state.pool, &user_id).await? else {
        session.purge();
        return Err(sign_in());
    };
    // The policy asks for a second factor: only the security pages open until one is set up.
    if person.must_enrol && !req.path().starts_with("/account/security") {
        return Err(AppError::SecondFactorRequired);
    }
    let confirmed_at = session
        .get::<i64>(CONFIRMED_AT)
        .ok()
        .flatten()
        .unwrap_or(signed_in_at);
    Ok(CurrentUser {
        id: person.id,
        name: person.name,
        email: person.email,
        is_admin: person.is_admin,
        permissions: person.permissions,
        unread_notifications: person.unread_notifications,
        csrf: csrf::token(&session),
        client_ip: client_ip(&req),
        confirmed_at,
    })
}

/// Records that the person proved who they are now (a second factor or the password asked
/// again), so [`CurrentUser::confirmed_within`] counts from here.
pub fn record_confirmation(session: &Session, now: i64) -> Result<(), AppError> {
    session
        .insert(CONFIRMED_AT, now)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let session = req.get_session();
        Box::pin(load_current_user(req, session))
    }
}
