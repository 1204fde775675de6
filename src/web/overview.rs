//! The overview at `/` for holders of `keys:read` (SPEC §10): tiles with numbers, each linking
//! to the Access keys list filtered to exactly the keys it counts; read through
//! `service::overview`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::error::AppError;
use crate::service::keys::UsageFilter;
use crate::service::overview::{self, BUSIEST, EXPIRING_DAYS, RECENT_DAYS, UNUSED_DAYS};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::keys::grouped;
use crate::web::{Frame, html};

/// Where the Access keys list lives.
const LIST: &str = "/user-access/keys";

/// A tile: its number, what it counts and the list of those keys.
struct Tile {
    id: &'static str,
    count: String,
    /// "keys expire in the next 14 days".
    label: String,
    href: String,
    /// Whether it asks for attention (a non-zero number of something to act on).
    warn: bool,
}

/// One of the busiest keys.
struct Busy {
    name: String,
    href: String,
    accepted: String,
}

/// Refusals for one reason.
struct Refusal {
    label: &'static str,
    class: &'static str,
    refused: String,
    keys: String,
    href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    tiles: Vec<Tile>,
    busiest: Vec<Busy>,
    refusals: Vec<Refusal>,
    recent_days: i64,
    most_busy: i64,
}

/// The list filtered to a usage filter's keys.
fn list_of(filter: &UsageFilter) -> String {
    let pairs = filter.pairs();
    format!(
        "{LIST}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

fn keys(n: i64) -> &'static str {
    if n == 1 { "key" } else { "keys" }
}

/// GET / for a holder of `keys:read`.
pub async fn page(user: &CurrentUser, state: &AppState) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let o = overview::overview(&mut conn, &user.actor(), now).await?;
    drop(conn);
    let tiles = vec![
        Tile {
            id: "expiring",
            count: grouped(o.expiring.count),
            label: format!(
                "{} {} in the next {EXPIRING_DAYS} days",
                keys(o.expiring.count),
                if o.expiring.count == 1 {
                    "expires"
                } else {
                    "expire"
                }
            ),
            href: list_of(&o.expiring.filter),
            warn: o.expiring.count > 0,
        },
        Tile {
            id: "never-used",
            count: grouped(o.never_used.count),
            label: format!("{} never used", keys(o.never_used.count)),
            href: list_of(&o.never_used.filter),
            warn: false,
        },
        Tile {
            id: "unused",
            count: grouped(o.unused.count),
            label: format!(
                "{} unused for {UNUSED_DAYS} days (used before)",
                keys(o.unused.count)
            ),
            href: list_of(&o.unused.filter),
            warn: false,
        },
        Tile {
            id: "out-of-policy",
            count: grouped(o.out_of_policy),
            label: format!("{} out of policy", keys(o.out_of_policy)),
            href: format!("{LIST}?status=out_of_policy"),
            warn: o.out_of_policy > 0,
        },
    ];
    let busiest = o
        .busiest
        .into_iter()
        .map(|b| Busy {
            href: format!("{LIST}/{}", b.id),
            name: b.name,
            accepted: grouped(b.accepted),
        })
        .collect();
    let refusals = o
        .refusals
        .iter()
        .map(|r| Refusal {
            label: r.reason.label(),
            class: crate::web::keys::usage_class(r.reason),
            refused: grouped(r.refused),
            keys: format!("{} {}", grouped(r.keys), keys(r.keys)),
            href: list_of(&r.filter),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        OverviewPage {
            frame: Frame::new(user, "overview"),
            tiles,
            busiest,
            refusals,
            recent_days: RECENT_DAYS,
            most_busy: BUSIEST,
        },
    ))
}
