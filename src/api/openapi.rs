//! `GET /api/v1/openapi.json`: the OpenAPI description, generated from the handlers' types.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, export, exposed, keys, usage, verify};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "Access keys for programs: manage them and verify them."),
    paths(
        keys::list, keys::create, keys::describe, keys::update, keys::delete, keys::regenerate,
        keys::current, keys::rotate_current, keys::my_keys, keys::create_my_key, verify::verify,
        exposed::report, exposed::github, export::export, usage::usage
    ),
    components(schemas(
        keys::KeyView, keys::KeyWithSecret, keys::KeyPage, keys::Owner, keys::LastUsed,
        keys::CreateBody, keys::PatchBody, keys::RateLimitView, keys::RateLimitBody, keys::RegenerateBody, verify::VerifyBody,
        verify::VerifyAnswer, verify::VerifiedKey, error::ErrorBody, error::ErrorDetail,
        exposed::ExposedBody, exposed::ExposedAnswer, exposed::ScanFinding, exposed::ScanLabel,
        export::ExportedKeyDoc, usage::UsageAnswer, usage::UsageBucket
    )),
    modifiers(&KeyAuth),
    tags(
        (name = "keys", description = "Tenant access keys"),
        (name = "me", description = "The calling user's personal keys"),
        (name = "verify", description = "Checking keys presented to other services"),
        (name = "secret scanning", description = "Secrets found in public places by GitHub's secret scanning"),
    )
)]
pub struct ApiDoc;

/// The two ways to present an access key.
struct KeyAuth;

impl Modify for KeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("<key ID>::<secret>".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// GET /api/v1/openapi.json
pub async fn document() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| String::from("{}"))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}
