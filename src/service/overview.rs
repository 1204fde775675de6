//! The overview at `/` (SPEC §10): the numbers an administrator of keys looks at first, each
//! the count of a key list filter (so a tile's number is exactly what its link lists), and
//! the busiest keys and refusals by reason from the usage counts. One statement per tile.

use sqlx::AnyConnection;

use crate::domain::{Actor, Permission};
use crate::error::AppError;
use crate::service::key_auth::usage::Outcome;
use crate::service::keys::{self, KeyQuery, REFUSALS, Refused, Scope, UsageFilter, since_hour};
use crate::service::repo::key_usage;

/// "Expiring soon": within this many days.
pub const EXPIRING_DAYS: i64 = 14;
/// "Unused": not used for this many days.
pub const UNUSED_DAYS: i64 = 30;
/// The busiest keys and the refusals are over this many days.
pub const RECENT_DAYS: i64 = 7;
/// How many busiest keys.
pub const BUSIEST: i64 = 5;

/// A number of keys and the list filter that lists them.
#[derive(Debug, Clone)]
pub struct Tile {
    pub count: i64,
    pub filter: UsageFilter,
}

/// One of the busiest keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyKey {
    pub id: String,
    pub name: String,
    pub accepted: i64,
}

/// Refusals for one reason over [`RECENT_DAYS`].
#[derive(Debug, Clone)]
pub struct RefusalTile {
    pub reason: Outcome,
    /// Presentations refused.
    pub refused: i64,
    /// Keys they were refused to.
    pub keys: i64,
    /// The list filter of those keys.
    pub filter: UsageFilter,
}

/// The overview as the viewer may see it (a holder of `keys:read` sees every key).
#[derive(Debug, Clone)]
pub struct Overview {
    pub expiring: Tile,
    pub never_used: Tile,
    pub unused: Tile,
    /// Keys out of the key policy (the list's `status=out_of_policy`).
    pub out_of_policy: i64,
    pub busiest: Vec<BusyKey>,
    /// Only reasons that happened, in the order charts stack them.
    pub refusals: Vec<RefusalTile>,
}

fn query(usage: UsageFilter, out_of_policy: bool) -> KeyQuery {
    KeyQuery {
        search: String::new(),
        status: None,
        key_type: None,
        out_of_policy,
        usage,
        sort: Default::default(),
        descending: None,
        page: 1,
        per_page: 1,
    }
}

/// The number of keys a usage filter lists, with the filter.
async fn tile(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: i64,
    usage: UsageFilter,
) -> Result<Tile, AppError> {
    let count = keys::count(
        conn,
        actor,
        Scope::Tenant,
        &query(usage.clone(), false),
        now,
    )
    .await?;
    Ok(Tile {
        count,
        filter: usage,
    })
}

/// Reads the overview at `now` for an actor holding `keys:read`.
pub async fn overview(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: i64,
) -> Result<Overview, AppError> {
    actor.require(Permission::KeysRead)?;
    let expiring = tile(
        conn,
        actor,
        now,
        UsageFilter {
            expires_within: Some(EXPIRING_DAYS),
            ..UsageFilter::default()
        },
    )
    .await?;
    let never_used = tile(
        conn,
        actor,
        now,
        UsageFilter {
            never_used: true,
            ..UsageFilter::default()
        },
    )
    .await?;
    let unused = tile(
        conn,
        actor,
        now,
        UsageFilter {
            unused_for: Some(UNUSED_DAYS),
            ..UsageFilter::default()
        },
    )
    .await?;
    let out_of_policy = keys::count(
        conn,
        actor,
        Scope::Tenant,
        &query(UsageFilter::default(), true),
        now,
    )
    .await?;
    let since = since_hour(now, RECENT_DAYS);
    let busiest = key_usage::busiest(conn, since, BUSIEST)
        .await?
        .into_iter()
        .map(|b| BusyKey {
            id: b.id,
            name: b.name,
            accepted: b.accepted,
        })
        .collect();
    let reasons: Vec<&str> = REFUSALS.iter().map(|o| o.as_str()).collect();
    let totals = key_usage::refusals_since(conn, since, &reasons).await?;
    let refusals = REFUSALS
        .iter()
        .copied()
        .filter_map(|reason| {
            let t = totals.iter().find(|t| t.outcome == reason.as_str())?;
            Some(RefusalTile {
                reason,
                refused: t.refused,
                keys: t.keys,
                filter: UsageFilter {
                    refused: Some(Refused {
                        reason: Some(reason),
                        days: RECENT_DAYS,
                    }),
                    ..UsageFilter::default()
                },
            })
        })
        .collect();
    Ok(Overview {
        expiring,
        never_used,
        unused,
        out_of_policy,
        busiest,
        refusals,
    })
}
