//! Reading keys for the screens and the API: one page of a list, one key, or the calling key,
//! each as [`KeyDetails`] with the permissions a key check grants it.

use sqlx::AnyConnection;

use super::{KEY_GONE, KeyDetails, KeyOwner, KeyStatus, Keyring, LastUse, Scope, load, require};
use crate::domain::{Actor, DecidedBy, KeyType, Permission, is_system_key_name, networks};
use crate::error::AppError;
use crate::service::key_auth::AuthenticatedKey;
use crate::service::repo::keys::{self as repo, AuthRow, KeyRow, ListFilter};

/// Columns a key list can be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeySort {
    #[default]
    Created,
    Name,
    Expires,
    LastUsed,
}

impl KeySort {
    /// Reads `created`, `name`, `expires` or `last_used`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "created" => Some(KeySort::Created),
            "name" => Some(KeySort::Name),
            "expires" => Some(KeySort::Expires),
            "last_used" => Some(KeySort::LastUsed),
            _ => None,
        }
    }

    /// The name `parse` reads.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySort::Created => "created",
            KeySort::Name => "name",
            KeySort::Expires => "expires",
            KeySort::LastUsed => "last_used",
        }
    }

    /// The direction when none is asked for: newest and latest used first, names A to Z,
    /// soonest expiry first.
    pub fn descending_by_default(self) -> bool {
        matches!(self, KeySort::Created | KeySort::LastUsed)
    }

    fn key(self) -> repo::SortKey {
        match self {
            KeySort::Created => repo::SortKey::Created,
            KeySort::Name => repo::SortKey::Name,
            KeySort::Expires => repo::SortKey::Expires,
            KeySort::LastUsed => repo::SortKey::LastUsed,
        }
    }
}

/// What a key list asks for: search, filters, sort and page.
#[derive(Debug, Clone)]
pub struct KeyQuery {
    /// Part of the name, or the start of the key ID.
    pub search: String,
    pub status: Option<KeyStatus>,
    pub key_type: Option<KeyType>,
    /// Only keys out of the key policy.
    pub out_of_policy: bool,
    /// Only keys by their use (expiring soon, never used, unused, refused lately).
    pub usage: super::UsageFilter,
    pub sort: KeySort,
    /// `None`: the sort's own direction (`KeySort::descending_by_default`).
    pub descending: Option<bool>,
    /// From 1.
    pub page: i64,
    pub per_page: i64,
}

impl KeyQuery {
    /// Whether the list runs from the largest value down: as asked, else the sort's own way.
    pub fn sorts_descending(&self) -> bool {
        self.descending
            .unwrap_or_else(|| self.sort.descending_by_default())
    }

    /// The repository's filter for this query's page in a scope: a person's own keys only in
    /// the personal scope.
    pub(super) fn scoped(&self, actor: &Actor, scope: Scope) -> ListFilter {
        let mut filter = self.filter();
        filter.owner = match scope {
            Scope::Personal => Some(actor.user_id.clone()),
            Scope::Tenant | Scope::OwnKey => None,
        };
        filter
    }

    /// The repository's filter for this query's page.
    fn filter(&self) -> ListFilter {
        let per_page = self.per_page.max(1);
        ListFilter {
            owner: None,
            search: self.search.clone(),
            status: self
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            key_type: self
                .key_type
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            out_of_policy: None,
            expires_by: None,
            never_used: false,
            last_used_before: None,
            refused_since: None,
            sort: self.sort.key(),
            descending: self.sorts_descending(),
            limit: per_page,
            offset: (self.page.max(1) - 1).saturating_mul(per_page),
        }
    }
}

/// The repository's filter for a query in a scope; "out of policy" reads the key policy (one
/// more statement, only then).
pub(super) async fn filter_for(
    conn: &mut AnyConnection,
    query: &KeyQuery,
    actor: &Actor,
    scope: Scope,
    now: i64,
) -> Result<ListFilter, AppError> {
    let mut filter = query.scoped(actor, scope);
    query.usage.apply(&mut filter, now);
    if query.out_of_policy {
        let policy = crate::service::key_policy::load(conn).await?;
        filter.out_of_policy = Some(
            policy
                .type_limits(now)
                .into_iter()
                .map(|l| (l.key_type.to_string(), l.latest))
                .collect(),
        );
    }
    Ok(filter)
}

/// How many keys in a scope the query matches (its sort and page aside): one statement, or
/// two when it asks for keys out of policy (the policy is read first).
pub async fn count(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    query: &KeyQuery,
    now: i64,
) -> Result<i64, AppError> {
    require(actor, scope, Permission::KeysRead)?;
    let filter = filter_for(conn, query, actor, scope, now).await?;
    Ok(repo::count(conn, &filter, now).await?)
}

/// One page of keys and the number of keys the query matches.
#[derive(Debug, Clone)]
pub struct KeyPage {
    pub items: Vec<KeyDetails>,
    pub total: i64,
}

/// A page of keys in a scope as the Access keys list shows them: without their assignments and
/// permissions (the list has no column for them; `group_ids`, `role_ids` and `permissions` are
/// empty), in two statements whatever the page size: the page and its count.
pub async fn list(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    query: KeyQuery,
    ring: &Keyring<'_>,
) -> Result<KeyPage, AppError> {
    require(actor, scope, Permission::KeysRead)?;
    let filter = filter_for(conn, &query, actor, scope, ring.clock.unix()).await?;
    let (rows, total) = repo::list(conn, &filter, ring.clock.unix()).await?;
    let now = ring.clock.unix();
    let items = rows
        .into_iter()
        .map(|key| {
            let bare = AuthRow {
                key,
                permissions: Vec::new(),
                group_ids: Vec::new(),
                role_ids: Vec::new(),
                administrator: false,
            };
            details_of(bare, now, ring.tenant_id)
        })
        .collect();
    Ok(KeyPage { items, total })
}

/// A page of keys in a scope with their assignments and permissions, in four statements
/// whatever the page size: the page, its count, the assignments of every key on it, and the
/// role and group mappings.
pub async fn list_details(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    query: KeyQuery,
    ring: &Keyring<'_>,
) -> Result<KeyPage, AppError> {
    require(actor, scope, Permission::KeysRead)?;
    let filter = filter_for(conn, &query, actor, scope, ring.clock.unix()).await?;
    let (rows, total) = repo::list(conn, &filter, ring.clock.unix()).await?;
    let items = details_of_rows(conn, rows, ring).await?;
    Ok(KeyPage { items, total })
}

/// One key the actor may see in this scope, with its assignments and permissions (what a key
/// check grants it); any other key is "not found".
pub async fn details(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
    ring: &Keyring<'_>,
) -> Result<KeyDetails, AppError> {
    let row = load(conn, actor, scope, id).await?;
    details_of_rows(conn, vec![row], ring)
        .await?
        .pop()
        .ok_or(AppError::Gone(KEY_GONE))
}

/// The last (up to five) distinct client addresses of a key the actor may see in this scope,
/// most recently seen first.
pub async fn last_addresses(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
) -> Result<Vec<crate::service::repo::key_addresses::KeyAddress>, AppError> {
    let row = load(conn, actor, scope, id).await?;
    Ok(crate::service::repo::key_addresses::of_key(conn, &row.id).await?)
}

/// The calling key as screens and the API show it, from what its check read (no query).
pub fn own_details(key: &AuthenticatedKey, ring: &Keyring<'_>) -> KeyDetails {
    details_of(key.found().clone(), ring.clock.unix(), ring.tenant_id)
}

/// Runs `work` and counts the statements the key reads send inside it, for tests that hold a
/// read to a fixed number of queries.
pub async fn count_round_trips<T>(work: impl std::future::Future<Output = T>) -> (T, u32) {
    repo::count_round_trips(work).await
}

/// Keys with their assignments and permissions: two statements whatever their number (the
/// assignments of all of them, then the role and group mappings), none for no keys.
async fn details_of_rows(
    conn: &mut AnyConnection,
    rows: Vec<KeyRow>,
    ring: &Keyring<'_>,
) -> Result<Vec<KeyDetails>, AppError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found = repo::with_assignments(conn, rows).await?;
    let map = repo::load_access_map(conn).await?;
    let now = ring.clock.unix();
    Ok(found
        .into_iter()
        .map(|f| details_of(map.resolve(f), now, ring.tenant_id))
        .collect())
}

/// A key's details from its row and what was read beside it.
pub(super) fn details_of(found: AuthRow, now: i64, tenant_id: &str) -> KeyDetails {
    let AuthRow {
        key: row,
        permissions,
        group_ids,
        role_ids,
        ..
    } = found;
    let (active, locked) = (row.active == 1, row.locked == 1);
    let decided =
        |by: Option<&str>, applies: bool| by.filter(|_| applies).and_then(DecidedBy::parse);
    KeyDetails {
        status: KeyStatus::at(row.active != 0, locked, row.expires_at, now),
        system: is_system_key_name(&row.name, tenant_id),
        // The stored type is always one of the two; an unknown one can only call nothing.
        key_type: KeyType::parse(&row.key_type).unwrap_or(KeyType::Api),
        owner: match (row.owner_user_id, row.owner_name) {
            (Some(id), Some(name)) => Some(KeyOwner { id, name }),
            _ => None,
        },
        active,
        locked,
        last_used: row.last_used_at.map(|at| LastUse {
            at,
            client_ip: row.last_used_ip.unwrap_or_default(),
            user_agent: row.last_used_agent.unwrap_or_default(),
        }),
        allowed_networks: networks::listed(&row.allowed_networks),
        rate_limit: crate::domain::RateLimit::from_columns(row.rate_per_second, row.rate_burst),
        secret_regenerated_at: row.secret_regenerated_at,
        grace_until: row.previous_valid_until.filter(|t| *t > now),
        deactivated_by: decided(row.deactivated_by.as_deref(), row.active == 0),
        locked_by: decided(row.locked_by.as_deref(), locked),
        id: row.id,
        name: row.name,
        description: row.description,
        expires_at: row.expires_at,
        created_at: row.created_at,
        created_by: row.created_by_label,
        modified_at: row.modified_at,
        modified_by: row.modified_by_label,
        failed_attempts: row.failed_attempts,
        group_ids,
        role_ids,
        permissions,
    }
}

/// The tenant's keys out of the key policy at `now`, by name: how many, and the IDs of the
/// first `limit`. For pages already allowed to see them (the key policy, bringing keys into
/// policy).
async fn out_of_policy(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<(Vec<String>, i64), AppError> {
    let policy = crate::service::key_policy::load(conn).await?;
    let filter = ListFilter {
        out_of_policy: Some(
            policy
                .type_limits(now)
                .into_iter()
                .map(|l| (l.key_type.to_string(), l.latest))
                .collect(),
        ),
        sort: repo::SortKey::Name,
        limit,
        ..ListFilter::default()
    };
    let (rows, total) = repo::list(conn, &filter, now).await?;
    Ok((rows.into_iter().map(|r| r.id).collect(), total))
}

/// How many of the tenant's keys are out of the key policy at `now`.
pub async fn out_of_policy_count(conn: &mut AnyConnection, now: i64) -> Result<i64, AppError> {
    Ok(out_of_policy(conn, now, 1).await?.1)
}

/// The IDs of the first `limit` keys (by name) out of the key policy at `now`.
pub async fn out_of_policy_ids(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<String>, AppError> {
    Ok(out_of_policy(conn, now, limit).await?.0)
}
