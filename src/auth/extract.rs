//! Who is asking. A handler that takes `CurrentUser` runs only for a signed-in, active user; one
//! that takes `AdminUser` only for a member of Administrators: the type is the permission check.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::csrf;
use crate::auth::session_store::USER_ID;
use crate::error::AppError;
use crate::repo;
use crate::startup::AppState;

/// Session key holding the unix time of sign-in, for the absolute timeout.
pub const SIGNED_IN_AT: &str = "auth_at";
/// A session ends this long after sign-in however active it is.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;

/// The signed-in user and what the page frame needs to know about them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub permissions: Vec<String>,
    pub unread_notifications: i64,
    /// The session's CSRF token, for the forms on the page (sign-out is on every page).
    pub csrf: String,
    /// Client address, for the audit log.
    pub client_ip: String,
}

impl CurrentUser {
    /// The user as the actor of a change.
    pub fn actor(&self) -> crate::service::keys::Actor {
        crate::service::keys::Actor {
            user_id: self.id.clone(),
            label: self.email.clone(),
            is_admin: self.is_admin,
            permissions: self.permissions.clone(),
            client_ip: self.client_ip.clone(),
            acting_key: None,
        }
    }
}

/// A signed-in member of the built-in Administrators group.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl std::ops::Deref for AdminUser {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

/// The address of the client as seen by this server (proxy headers are not trusted).
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
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
    let now = state.clock.unix();
    if now - signed_in_at > ABSOLUTE_TIMEOUT_SECS {
        session.purge();
        return Err(sign_in());
    }
    let mut conn = state.pool.acquire().await?;
    let user = match repo::users::find(&mut conn, &user_id).await? {
        Some(u) if u.active == 1 => u,
        _ => {
            session.purge();
            return Err(sign_in());
        }
    };
    let permissions = repo::roles::user_permissions(&mut conn, &user.id).await?;
    let is_admin =
        repo::groups::is_member(&mut conn, repo::groups::ADMINISTRATORS, &user.id).await?;
    let unread_notifications = repo::notifications::unread_count(&mut conn, &user.id).await?;
    Ok(CurrentUser {
        id: user.id,
        name: user.name,
        email: user.email,
        is_admin,
        permissions,
        unread_notifications,
        csrf: csrf::token(&session),
        client_ip: client_ip(&req),
    })
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

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let session = req.get_session();
        Box::pin(async move {
            let user = load_current_user(req, session).await?;
            if user.is_admin {
                Ok(AdminUser(user))
            } else {
                Err(AppError::Forbidden)
            }
        })
    }
}
