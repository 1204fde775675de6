//! Checking a key that a program presents (SPEC §3): checksum first (no database work for a
//! malformed secret), one indexed lookup by ID, HMAC-SHA256 and a constant-time compare, then
//! the key's state, its owner's and its allowed networks. Wrong secrets count towards the key's
//! lockout; failures also count per client address so that nobody can lock other people's keys
//! at will. Every refusal looks the same to the caller; the reason goes to the audit log.

use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::AnyPool;

use crate::auth::key_auth::PresentedKey;
use crate::error::AppError;
use crate::repo::keys::{self as repo, KeyRow};
use crate::repo::{self as repos, groups::ADMINISTRATORS};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::keys::{KeyStatus, Keyring};
use crate::service::throttle::{self, Limit};

/// Why a presented key was refused. Callers show one answer for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    NotFound,
    WrongSecret,
    Inactive,
    Expired,
    Locked,
    OwnerDisabled,
    ForbiddenNetwork,
}

impl Refusal {
    /// The reason as the audit log records it.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed credentials",
            Refusal::NotFound => "unknown key",
            Refusal::WrongSecret => "wrong secret",
            Refusal::Inactive => "key inactive",
            Refusal::Expired => "key expired",
            Refusal::Locked => "key locked",
            Refusal::OwnerDisabled => "owner disabled",
            Refusal::ForbiddenNetwork => "client outside the allowed networks",
        }
    }

    /// The verify endpoint's reason code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed | Refusal::NotFound | Refusal::WrongSecret => "NOT_FOUND",
            Refusal::Inactive | Refusal::OwnerDisabled => "INACTIVE",
            Refusal::Expired => "EXPIRED",
            Refusal::Locked => "LOCKED",
            Refusal::ForbiddenNetwork => "FORBIDDEN_NETWORK",
        }
    }
}

/// Why authentication did not succeed.
#[derive(Debug)]
pub enum AuthError {
    Refused(Refusal),
    /// The client address has failed too often this minute (429).
    Throttled {
        retry_after: i64,
    },
    Internal(AppError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Internal(e.into())
    }
}

/// The settings authentication follows.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Consecutive wrong secrets before a key locks (0: never).
    pub lockout_threshold: u32,
    /// Failed authentications per client address per minute before 429 (0: no limit).
    pub client_failure_limit: u32,
}

/// One presentation of a key.
pub struct Attempt<'a> {
    pub presented: Option<PresentedKey>,
    /// The address the key came from: the TCP peer, or what the verify caller reports.
    pub client_ip: &'a str,
    pub user_agent: &'a str,
    /// Whether failures count against the client address (not for verify, whose caller is
    /// another service acting for many clients).
    pub limit_client: bool,
}

/// Whether an address is inside the allowed networks (a comma-separated CIDR list; empty
/// allows every address). An unreadable address is outside.
pub fn network_allows(allowed: &str, client_ip: &str) -> bool {
    let nets: Vec<IpNet> = allowed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    if nets.is_empty() {
        return true;
    }
    match client_ip.parse::<IpAddr>() {
        Ok(ip) => {
            // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) matches IPv4 ranges.
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            nets.iter().any(|n| n.contains(&ip))
        }
        Err(_) => false,
    }
}

/// Checks a list of CIDR ranges typed by a person; returns it normalised, or what is wrong.
pub fn parse_networks(raw: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for part in raw
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let net: IpNet = match part.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match part.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "“{part}” is not an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32."
                    ));
                }
            },
        };
        out.push(net.trunc().to_string());
    }
    if out.len() > 50 {
        return Err("At most 50 networks.".into());
    }
    Ok(out.join(", "))
}

const CLIENT_WINDOW: i64 = 60;

async fn refuse(
    pool: &AnyPool,
    ring: &Keyring<'_>,
    policy: Policy,
    attempt: &Attempt<'_>,
    key_id: &str,
    refusal: Refusal,
) -> Result<AuthError, AuthError> {
    let now = ring.clock.unix();
    let mut conn = pool.acquire().await?;
    if attempt.limit_client && policy.client_failure_limit > 0 {
        let limit = Limit {
            max: i64::from(policy.client_failure_limit),
            window_secs: CLIENT_WINDOW,
        };
        let bucket = format!("keyauth:client:{}", attempt.client_ip);
        if let Some(retry_after) = throttle::reserve(&mut conn, &bucket, limit, now).await? {
            // Over the client's limit: refused before the key's own counter moves.
            return Ok(AuthError::Throttled { retry_after });
        }
    }
    let mut reason = refusal.reason().to_string();
    if refusal == Refusal::WrongSecret {
        let threshold = i64::from(policy.lockout_threshold);
        let before: Option<i64> =
            sqlx::query_scalar("SELECT locked FROM access_keys WHERE id = $1")
                .bind(key_id)
                .fetch_optional(&mut *conn)
                .await?;
        let (count, locked) = repo::record_failure(&mut conn, key_id, threshold).await?;
        reason = format!("{reason} ({count} in a row)");
        if locked && before == Some(0) {
            announce_lock(&mut conn, key_id, count, now, attempt.client_ip).await?;
        }
    }
    audit::record(
        &mut conn,
        now,
        NewEntry {
            actor_id: None,
            actor_label: attempt.client_ip,
            action: "key.auth_refused",
            target_type: "access_key",
            target_id: key_id,
            target_label: "",
            client_ip: attempt.client_ip,
            outcome: FAILURE,
            details: &reason,
        },
    )
    .await?;
    Ok(AuthError::Refused(refusal))
}

/// Audit entry and bell notices when a key locks: its owner and every administrator are told.
async fn announce_lock(
    conn: &mut sqlx::AnyConnection,
    key_id: &str,
    count: i64,
    now: i64,
    client_ip: &str,
) -> Result<(), sqlx::Error> {
    let key = repo::find(conn, key_id).await?;
    let name = key.as_ref().map(|k| k.name.clone()).unwrap_or_default();
    let details = format!("locked after {count} wrong secrets in a row");
    audit::record(
        conn,
        now,
        NewEntry {
            actor_id: None,
            actor_label: "keyward",
            action: "key.locked",
            target_type: "access_key",
            target_id: key_id,
            target_label: &name,
            client_ip,
            outcome: SUCCESS,
            details: &details,
        },
    )
    .await?;
    let mut people: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(ADMINISTRATORS)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(owner) = key.and_then(|k| k.owner_user_id) {
        people.push(owner);
    }
    people.sort();
    people.dedup();
    let title = format!("Access key “{name}” was locked");
    let body = format!(
        "Key {key_id} locked after {count} wrong secrets in a row. Unlock it or generate a new secret key once the program presenting it is fixed."
    );
    for user in people {
        repos::notifications::insert(conn, &user, now, "key.locked", &title, &body, "").await?;
    }
    Ok(())
}

/// A key that passed every check, with the permissions it acts with.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub row: KeyRow,
    pub permissions: Vec<String>,
}

/// Checks a presented key and records what happened. On success the key is returned with its
/// permissions (one query) and its last use recorded (at most once a minute).
pub async fn authenticate(
    pool: &AnyPool,
    ring: &Keyring<'_>,
    policy: Policy,
    attempt: Attempt<'_>,
) -> Result<AuthenticatedKey, AuthError> {
    let Some(presented) = attempt.presented.as_ref() else {
        // A typo or garbage: no database work at all.
        return Err(AuthError::Refused(Refusal::Malformed));
    };
    let now = ring.clock.unix();
    let id = presented.id.as_str().to_string();
    let key = {
        let mut conn = pool.acquire().await?;
        repo::find_with_permissions(&mut conn, crate::db::Backend::of_pool(pool), &id).await?
    };
    let Some((key, permissions)) = key else {
        return Err(refuse(pool, ring, policy, &attempt, &id, Refusal::NotFound).await?);
    };
    let current = ring.hasher.matches(&presented.secret, &key.secret_hash);
    let previous = key.previous_valid_until.is_some_and(|t| t > now)
        && key
            .previous_secret_hash
            .as_deref()
            .is_some_and(|h| ring.hasher.matches(&presented.secret, h));
    let refusal = if !current && !previous {
        Some(Refusal::WrongSecret)
    } else {
        match KeyStatus::of(&key, now) {
            KeyStatus::Inactive => Some(Refusal::Inactive),
            KeyStatus::Locked => Some(Refusal::Locked),
            KeyStatus::Expired => Some(Refusal::Expired),
            KeyStatus::Active if key.owner_user_id.is_some() && key.owner_active != Some(1) => {
                Some(Refusal::OwnerDisabled)
            }
            KeyStatus::Active if !network_allows(&key.allowed_networks, attempt.client_ip) => {
                Some(Refusal::ForbiddenNetwork)
            }
            KeyStatus::Active => None,
        }
    };
    if let Some(refusal) = refusal {
        return Err(refuse(pool, ring, policy, &attempt, &id, refusal).await?);
    }
    let needs_reset = key.failed_attempts > 0;
    let needs_touch = key.last_used_at.is_none_or(|t| t <= now - 60);
    if needs_reset || needs_touch {
        let mut conn = pool.acquire().await?;
        if needs_reset {
            repo::reset_failures(&mut conn, &id).await?;
        }
        if needs_touch {
            let agent: String = attempt.user_agent.chars().take(200).collect();
            repo::touch_last_used(&mut conn, &id, now, attempt.client_ip, &agent).await?;
        }
    }
    Ok(AuthenticatedKey {
        row: key,
        permissions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_allow_what_they_contain() {
        assert!(network_allows("", "203.0.113.9"));
        assert!(network_allows("10.0.0.0/8, 192.168.1.0/24", "10.20.30.40"));
        assert!(!network_allows("10.0.0.0/8", "11.0.0.1"));
        assert!(network_allows("2001:db8::/32", "2001:db8::1"));
        assert!(!network_allows("2001:db8::/32", "2001:db9::1"));
        assert!(network_allows("127.0.0.0/8", "::ffff:127.0.0.1"));
        assert!(!network_allows("10.0.0.0/8", "not an address"));
    }

    #[test]
    fn typed_networks_are_checked_and_normalised() {
        assert_eq!(
            parse_networks("10.1.2.3/8,  2001:db8::1/32").unwrap(),
            "10.0.0.0/8, 2001:db8::/32"
        );
        assert_eq!(parse_networks("192.0.2.7").unwrap(), "192.0.2.7/32");
        assert_eq!(parse_networks("").unwrap(), "");
        assert!(
            parse_networks("10.0.0.0/33")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_networks("example.com").is_err());
    }
}
