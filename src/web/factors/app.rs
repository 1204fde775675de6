//! Setting up and removing the authenticator app: a QR code (inline SVG, drawn on the server)
//! and the secret as text, confirmed by a first code; removal asks for a code or the password.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::no_store;
use crate::error::AppError;
use crate::service::accounts::factors::{self, Enrolment, Removal};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::errors::wait_phrase;
use crate::web::{Frame, html, see_other};

/// The app's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/security/app", web::post().to(start))
        .route("/account/security/app", web::get().to(enrol_page))
        .route("/account/security/app/confirm", web::post().to(confirm))
        .route("/account/security/app/remove", web::get().to(remove_page))
        .route("/account/security/app/remove", web::post().to(remove));
}

#[derive(Template)]
#[template(path = "account/app_enrol.html")]
struct EnrolPage {
    frame: Frame,
    /// The QR code as inline SVG markup drawn here (only digits and fixed markup).
    qr: String,
    /// The secret in groups of four.
    secret: String,
    error: String,
}

/// The QR code of an `otpauth://` address, as inline SVG with a text alternative.
fn qr_svg(uri: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000"))
        .light_color(qrcode::render::svg::Color("#fff"))
        .build();
    let svg = svg.split_once("?>").map_or(svg.as_str(), |(_, rest)| rest);
    Ok(svg.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\" class=\"qr-code\" ",
        1,
    ))
}

fn enrol(user: &CurrentUser, enrolment: &Enrolment, error: String) -> Result<EnrolPage, AppError> {
    Ok(EnrolPage {
        frame: Frame::new(user, "account"),
        qr: qr_svg(&enrolment.uri)?,
        secret: enrolment.grouped.to_string(),
        error,
    })
}

/// POST /account/security/app — a new secret waiting for its first code.
pub async fn start(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    factors::start_app(state.second_factors(), &user.id).await?;
    Ok(see_other("/account/security/app"))
}

/// GET /account/security/app — the QR code, the secret and the first-code form.
pub async fn enrol_page(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    match factors::waiting_app(state.second_factors(), &user.id, &user.email).await? {
        Some(enrolment) => Ok(no_store(html(
            StatusCode::OK,
            enrol(&user, &enrolment, String::new())?,
        ))),
        None => Ok(see_other("/account/security")),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// POST /account/security/app/confirm — the first code; a person's first factor brings their
/// recovery codes, shown once.
pub async fn confirm(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let factors = state.second_factors();
    match factors::confirm_app(factors, &user.id, &form.code, &user.client_ip).await {
        Ok(Some(codes)) => Ok(super::recovery::codes_page(&user, codes, true)),
        Ok(None) => Ok(see_other("/account/security?done=app-added")),
        Err(FormError::Invalid(errors)) => {
            let message = errors.get("code").unwrap_or_default().to_string();
            let Some(enrolment) = factors::waiting_app(factors, &user.id, &user.email).await?
            else {
                return Ok(see_other("/account/security"));
            };
            let page = enrol(&user, &enrolment, message)?;
            Ok(no_store(html(StatusCode::UNPROCESSABLE_ENTITY, page)))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "account/app_remove.html")]
struct RemovePage {
    frame: Frame,
    errors: FieldErrors,
}

impl RemovePage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
}

/// GET /account/security/app/remove — asks for a code or the password first.
pub async fn remove_page(user: CurrentUser) -> HttpResponse {
    let page = RemovePage {
        frame: Frame::new(&user, "account"),
        errors: FieldErrors::default(),
    };
    html(StatusCode::OK, page)
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// POST /account/security/app/remove
pub async fn remove(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, AppError> {
    let proof = if !form.code.trim().is_empty() {
        Removal::Code(&form.code)
    } else if !form.password.is_empty() {
        Removal::Password(&form.password)
    } else {
        let message = "Enter a code from your app, or your password.";
        return Ok(refused(
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            message.into(),
        ));
    };
    match factors::remove_app(state.second_factors(), &user.id, proof, &user.client_ip).await {
        Ok(()) => Ok(see_other("/account/security?done=app-removed")),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            RemovePage {
                frame: Frame::new(&user, "account"),
                errors,
            },
        )),
        Err(FormError::Other(AppError::TooManyRequests { retry_after })) => {
            let wait = wait_phrase(i64::try_from(retry_after).unwrap_or(i64::MAX));
            let message = format!("Too many wrong codes or passwords. Wait {wait} and try again.");
            let mut res = refused(&user, StatusCode::TOO_MANY_REQUESTS, "code", message);
            res.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, retry_after.into());
            Ok(res)
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// The removal form again with one message.
fn refused(
    user: &CurrentUser,
    status: StatusCode,
    field: &'static str,
    message: String,
) -> HttpResponse {
    let page = RemovePage {
        frame: Frame::new(user, "account"),
        errors: FieldErrors(vec![(field, message)]),
    };
    html(status, page)
}
