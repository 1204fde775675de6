//! Access keys in the console: the Access keys tab (every key, administrators) and My access
//! keys (a user's own two), with the same dialogs: Add key, the one-time secret, Key details,
//! Generate new secret key, activate/deactivate, unlock, delete. Every page reads through
//! `service::keys` ([`keys::list`], [`keys::details`]) and every change is one call to
//! it.
//!
//! [`keys::list`]: crate::service::keys::list
//! [`keys::details`]: crate::service::keys::details

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::domain::Permission;
use crate::service::keys::Scope;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{Granted, KeysRead, KeysWrite, Signed};

mod add;
mod delete;
mod details;
mod export;
mod exposed;
mod form;
mod list;
mod secret;
mod switches;
mod usage;
mod view;

use switches::{Activate, Deactivate, Unlock, deactivate_form, flip};
pub(crate) use usage::{class_of as usage_class, grouped};

/// Where a page lives: the tenant's Access keys tab or the user's own keys.
#[derive(Clone, Copy)]
pub struct Place {
    scope: Scope,
    base: &'static str,
}

/// The Access keys tab.
pub const TENANT: Place = Place {
    scope: Scope::Tenant,
    base: "/user-access/keys",
};
/// My access keys.
pub const PERSONAL: Place = Place {
    scope: Scope::Personal,
    base: "/my/keys",
};

impl Place {
    /// The menu section the page belongs to.
    fn section(&self) -> &'static str {
        match self.scope {
            Scope::Tenant => "users-and-keys",
            Scope::Personal | Scope::OwnKey => "my-keys",
        }
    }

    /// Whether this is the tenant's Access keys tab.
    fn tenant(&self) -> bool {
        self.scope == Scope::Tenant
    }
}

/// Whether the person may change what a page of `place` shows: their own keys always, the
/// tenant's with `keys:write`. Pages offer the controls that change keys only then.
fn writable(user: &CurrentUser, place: Place) -> bool {
    !place.tenant() || user.may(Permission::KeysWrite)
}

/// Marks a response as never to be stored (a page that shows a secret once).
pub(super) fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Registers the key routes under a place. On the Access keys tab each page and action needs
/// `keys:read` or `keys:write` (SPEC §7); a person's own keys need only the sign-in.
pub fn routes(cfg: &mut web::ServiceConfig, place: Place) {
    match place.scope {
        Scope::Tenant => {
            // Before the place's `/{id}` routes, which would take `exposed` for a key ID.
            cfg.service(
                web::resource(exposed::PATH)
                    .route(web::get().to(exposed::form))
                    .route(web::post().to(exposed::find)),
            );
            routes_as::<Granted<KeysRead>, Granted<KeysWrite>>(cfg, place)
        }
        Scope::Personal | Scope::OwnKey => routes_as::<CurrentUser, CurrentUser>(cfg, place),
    }
}

/// The routes of `place`, read by an `R` and changed by a `W`.
fn routes_as<R: Signed, W: Signed>(cfg: &mut web::ServiceConfig, place: Place) {
    let scope = web::scope(place.base).app_data(web::Data::new(place));
    // The inventory export is the tenant's (the Access keys tab's Download menu); declared
    // before `/{id}`, which would take "export" for a key ID.
    let scope = if place.tenant() {
        scope.route("/export", web::get().to(export::download::<R>))
    } else {
        scope
    };
    cfg.service(
        scope
            .route("", web::get().to(list::list::<R>))
            .route("", web::post().to(add::create::<W>))
            .route("/new", web::get().to(add::add_form::<W>))
            .route("/{id}", web::get().to(details::details::<R>))
            .route("/{id}", web::post().to(details::update::<W>))
            .route(
                "/{id}/regenerate",
                web::get().to(secret::regenerate_form::<W>),
            )
            .route("/{id}/regenerate", web::post().to(secret::regenerate::<W>))
            .route("/{id}/activate", web::post().to(flip::<W, Activate>))
            .route("/{id}/deactivate", web::get().to(deactivate_form::<W>))
            .route("/{id}/deactivate", web::post().to(flip::<W, Deactivate>))
            .route("/{id}/unlock", web::post().to(flip::<W, Unlock>))
            .route("/{id}/delete", web::get().to(delete::delete_form::<W>))
            .route("/{id}/delete", web::post().to(delete::delete::<W>)),
    );
}
