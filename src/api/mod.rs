//! The JSON REST API (`/api/v1`, SPEC §3.1): thin handlers over the same `service/` rules as the
//! console, authenticated by access keys.

mod body;
mod error;
mod export;
mod exposed;
mod extract;
mod json_text;
mod key_filters;
mod key_view;
mod keys;
mod openapi;
mod permission_list;
mod rate_limit;
mod usage;
mod verify;

use actix_web::web;

pub use body::read_limited;
pub use error::ApiError;
pub use exposed::{SCAN_BODY_LIMIT, SCAN_PATH};
pub use extract::ApiCaller;
pub use openapi::ApiDoc;

/// Largest JSON body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Every API route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(rate_limit::add_headers))
            .app_data(error::json_config())
            .app_data(error::query_config())
            .app_data(error::path_config())
            // The key checks first: a path is matched against the routes in order, and each
            // pattern with a `{}` segment costs a regular expression.
            .route("/verify", web::post().to(verify::verify))
            .route("/apikeys/current", web::get().to(keys::current))
            .route("/apikeys", web::get().to(keys::list))
            .route("/apikeys", web::post().to(keys::create))
            .service(
                web::resource("/apikeys/exposed")
                    .route(web::post().to(exposed::report))
                    .default_service(web::to(error::no_such_endpoint)),
            )
            .service(
                web::resource(SCAN_PATH.trim_start_matches("/api/v1"))
                    .route(web::post().to(exposed::github))
                    .default_service(web::to(error::no_such_endpoint)),
            )
            .route("/apikeys/export", web::get().to(export::export))
            .route(
                "/apikeys/current/secretkey",
                web::post().to(keys::rotate_current),
            )
            .route("/apikeys/{id}", web::get().to(keys::describe))
            .route("/apikeys/{id}", web::patch().to(keys::update))
            .route("/apikeys/{id}", web::delete().to(keys::delete))
            .route("/apikeys/{id}/secretkey", web::post().to(keys::regenerate))
            .route("/apikeys/{id}/usage", web::get().to(usage::usage))
            .route("/me/keys", web::get().to(keys::my_keys))
            .route("/me/keys", web::post().to(keys::create_my_key))
            .route("/openapi.json", web::get().to(openapi::document))
            .default_service(web::to(error::no_such_endpoint)),
    );
}
