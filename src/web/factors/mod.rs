//! `/account/security`: a person's second factors (the authenticator app and recovery codes),
//! the tenant's second-factor policy for administrators, and the second step of sign-in.

mod app;
mod recovery;
mod verify;

pub(crate) use verify::pending;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::accounts::factors::{self, AppStatus, Policy, Security};
use crate::state::AppState;
use crate::web::account::passkeys_section::{PasskeysSection, done_notice};
use crate::web::account::sessions::{self, SessionsSection};
use crate::web::current_user::CurrentUser;
use crate::web::granted::{ConfigWrite, Granted};
use crate::web::pages::When;
use crate::web::{Frame, html, see_other};
use actix_session::Session;

/// The routes of the security page and the second step of sign-in.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/security", web::get().to(security_page))
        .route("/account/security/policy", web::post().to(set_policy))
        .configure(app::routes)
        .configure(recovery::routes)
        .configure(verify::routes);
}

#[derive(Template)]
#[template(path = "account/security.html")]
struct SecurityPage {
    frame: Frame,
    security: Security,
    /// When the app was confirmed, if it was.
    app_since: Option<When>,
    notice: String,
    /// The policy form, for holders of `config:write`: (value, label, chosen).
    policies: Vec<(&'static str, &'static str, bool)>,
    passkeys: PasskeysSection,
    sessions: SessionsSection,
}

impl SecurityPage {
    fn app_active(&self) -> bool {
        matches!(self.security.app, AppStatus::Active { .. })
    }

    fn app_waiting(&self) -> bool {
        self.security.app == AppStatus::Waiting
    }
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
    /// What a sessions action did, and to how many.
    #[serde(default)]
    notice: String,
    #[serde(default)]
    count: u64,
    /// The passkey an action was about.
    #[serde(default)]
    name: String,
}

/// What was just done, as the page says it.
fn notice(done: Option<&str>) -> &'static str {
    match done {
        Some("app-added") => "Your authenticator app is set up. Sign-in now asks for a code.",
        Some("app-removed") => "Your authenticator app was removed.",
        Some("policy") => "The second-factor policy was saved.",
        _ => "",
    }
}

/// GET /account/security
pub async fn security_page(
    user: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut passkeys = PasskeysSection::load(&state, &user).await?;
    let done = query.done.as_deref();
    passkeys.notice = done_notice(done.unwrap_or_default(), &query.name);
    let said = match notice(done) {
        "" => sessions::notice_text(&query.notice, query.count).unwrap_or_default(),
        factor => factor.to_string(),
    };
    let page = Sections {
        notice: said,
        passkeys,
        session: &session,
    };
    security_with(&user, &state, page, StatusCode::OK).await
}

/// What the security page shows beside the person's factors: the notice, the passkeys section
/// as given (a refused rename keeps what was typed there), and the session it is shown in.
pub(crate) struct Sections<'a> {
    pub notice: String,
    pub passkeys: PasskeysSection,
    pub session: &'a Session,
}

/// The security page with its passkeys section as given (a rename that was refused keeps what
/// was typed there).
pub(crate) async fn security_with(
    user: &CurrentUser,
    state: &AppState,
    shown: Sections<'_>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let security = factors::security(&state.pool, &user.id).await?;
    let app_since = match security.app {
        AppStatus::Active { since } => Some(When::at(since, state.clock.unix())),
        _ => None,
    };
    let policies = if user.may(crate::domain::Permission::ConfigWrite) {
        Policy::ALL
            .iter()
            .map(|p| (p.as_str(), p.label(), *p == security.policy))
            .collect()
    } else {
        Vec::new()
    };
    let page = SecurityPage {
        frame: Frame::new(user, "account"),
        security,
        app_since,
        notice: shown.notice,
        policies,
        passkeys: shown.passkeys,
        sessions: sessions::section(user, shown.session, state).await?,
    };
    Ok(no_store(html(status, page)))
}

#[derive(Deserialize)]
pub struct PolicyForm {
    policy: String,
}

/// POST /account/security/policy — needs `config:write`; audited.
pub async fn set_policy(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, AppError> {
    factors::set_policy(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &form.policy,
    )
    .await?;
    Ok(see_other("/account/security?done=policy"))
}

/// A response that must not be kept by the browser (it shows a secret or a person's factors).
fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    res
}
