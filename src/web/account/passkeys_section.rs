//! The passkeys section of the Account security page: the user's passkeys as the page lists
//! them, and the notice after an action. Its actions are in `passkeys`; the page that holds it
//! (and re-renders it with a refused rename) is `web::factors`.

use crate::clock::{format_utc, relative};
use crate::error::AppError;
use crate::service::passkeys::{self, PasskeySummary};
use crate::state::AppState;
use crate::web::asset_url;
use crate::web::current_user::CurrentUser;

/// One passkey in the list.
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub added: String,
    pub added_hint: String,
    /// When it last signed in, as a date and a hint; `None` if never.
    pub last_used: Option<(String, String)>,
}

/// What the passkeys section shows: the list, whether passkeys can work here, the notice after
/// an action, and a rename that was refused (its row, what was typed, why).
pub struct PasskeysSection {
    pub csrf: String,
    pub items: Vec<PasskeyRow>,
    pub available: bool,
    pub notice: String,
    pub renaming: String,
    pub typed: String,
    pub error: String,
    pub script: String,
}

impl PasskeysSection {
    /// The section for `user`'s passkeys.
    pub async fn load(state: &AppState, user: &CurrentUser) -> Result<Self, AppError> {
        let now = state.clock.unix();
        let items = passkeys::list(&state.pool, &user.id)
            .await?
            .into_iter()
            .map(|p: PasskeySummary| PasskeyRow {
                added: format_utc(p.created_at),
                added_hint: relative(p.created_at, now),
                last_used: p.last_used_at.map(|t| (format_utc(t), relative(t, now))),
                id: p.id,
                name: p.name,
            })
            .collect();
        Ok(Self {
            csrf: user.csrf.clone(),
            items,
            available: passkeys::available(&state.settings.public_url),
            notice: String::new(),
            renaming: String::new(),
            typed: String::new(),
            error: String::new(),
            script: asset_url("passkeys.js"),
        })
    }
}

/// The notice after an action on the passkey `name`.
pub(crate) fn done_notice(done: &str, name: &str) -> String {
    match done {
        "added" => format!("Added the passkey “{name}”. You can sign in with it."),
        "renamed" => format!("Renamed the passkey to “{name}”."),
        "removed" => format!("Removed the passkey “{name}”. It can no longer sign you in."),
        _ => String::new(),
    }
}
