//! Who may open a console page (SPEC §7). Each page and action names the permission it needs as
//! a type: a handler that takes `Granted<KeysWrite>` runs only for a person who holds
//! `keys:write` through the roles of their groups, checked by `Actor::may`, the same code that
//! checks API keys. Anyone else gets a 403 page inside the normal frame that names what is
//! missing.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload};
use askama::Template;

use crate::domain::Permission;
use crate::error::AppError;
use crate::web::current_user::CurrentUser;
use crate::web::{Frame, html};

/// A permission a page or action needs, as a type.
pub trait Needed: 'static {
    /// The permission.
    const PERMISSION: Permission;
    /// What it allows, to finish "You need the … permission to …".
    const PURPOSE: &'static str;
}

macro_rules! needed {
    ($(#[$doc:meta] $name:ident => $permission:ident, $purpose:literal;)*) => {$(
        #[$doc]
        pub struct $name;
        impl Needed for $name {
            const PERMISSION: Permission = Permission::$permission;
            const PURPOSE: &'static str = $purpose;
        }
    )*};
}

needed! {
    /// `keys:read`: the Access keys tab, key details, View permissions.
    KeysRead => KeysRead, "see the tenant's access keys";
    /// `keys:write`: add, change, regenerate, (de)activate, unlock and delete tenant keys.
    KeysWrite => KeysWrite, "add, change or delete the tenant's access keys";
    /// `users:read`: the Users, Groups and Roles tabs and their details.
    UsersRead => UsersRead, "see users, groups and roles";
    /// `users:write`: invite, disable and enable users, change their groups.
    UsersWrite => UsersWrite, "invite, disable or enable users and change their groups";
    /// `groups:write`: create, change and delete groups.
    GroupsWrite => GroupsWrite, "create, change or delete groups";
    /// `roles:write`: create, change and delete roles.
    RolesWrite => RolesWrite, "create, change or delete roles";
    /// `config:write`: Configuration > API Access, retrying an email.
    ConfigWrite => ConfigWrite, "change the configuration";
    /// `audit:read`: the audit log and the mail log.
    AuditRead => AuditRead, "read the audit and mail logs";
}

/// A signed-in person who holds `P`; obtainable only by passing that check.
pub struct Granted<P> {
    user: CurrentUser,
    needs: PhantomData<fn() -> P>,
}

impl<P> std::ops::Deref for Granted<P> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.user
    }
}

impl<P: Needed> FromRequest for Granted<P> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.may(P::PERMISSION) {
                Ok(Granted {
                    user,
                    needs: PhantomData,
                })
            } else {
                Err(refusal(&user, P::PERMISSION, P::PURPOSE))
            }
        })
    }
}

/// Whoever may open a page of a place: a `Granted` person for the tenant's pages, anyone signed
/// in for their own. Lets one handler serve both, with the check declared at the route.
pub trait Signed: FromRequest + 'static {
    /// The person.
    fn user(&self) -> &CurrentUser;
}

impl Signed for CurrentUser {
    fn user(&self) -> &CurrentUser {
        self
    }
}

impl<P: Needed> Signed for Granted<P> {
    fn user(&self) -> &CurrentUser {
        &self.user
    }
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage {
    frame: Frame,
    permission: &'static str,
    purpose: &'static str,
}

/// The 403 page for `user`, with their top bar and menu, naming the permission they lack.
pub fn refusal(
    user: &CurrentUser,
    permission: Permission,
    purpose: &'static str,
) -> actix_web::Error {
    let page = ForbiddenPage {
        frame: Frame::new(user, ""),
        permission: permission.as_str(),
        purpose,
    };
    let mut res: HttpResponse = html(StatusCode::FORBIDDEN, page);
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    InternalError::from_response(AppError::MissingPermission(permission), res).into()
}
