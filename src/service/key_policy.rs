//! The key policy (SPEC §9, `/configuration/key-policy`): the longest a key of each type may
//! last, whether it must expire at all, the validity offered first, how long a key may go
//! unused before it is deactivated, and what happens when a replaced or an exposed secret turns
//! up. One settings row per rule; one reader (`load`) that every other module asks.
//!
//! A key that breaks a policy set after it was made is never changed silently: it is "out of
//! policy" (`KeyPolicy::breach`), listed and explained, and brought into policy by a person
//! (`keys::conform`). The inactivity rule is the one exception the administrator chose by setting it:
//! `inactivity` warns, then deactivates (never deletes).

pub mod inactivity;

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};

use crate::auth::store::settings;
use crate::clock::{Clock, format_utc};
use crate::domain::{Actor, KeyType, Permission};
use crate::error::AppError;
use crate::service::accounts::factors::{self, Policy as SecondFactor};
use crate::service::audit;
use crate::service::webhooks::{self, EventType};
use crate::service::{FieldErrors, FormError};

const DAY: i64 = 86_400;

/// The usual validity choices, in days; a form offers those within the policy's limit.
pub const VALIDITY_DAYS: [i64; 5] = [30, 60, 90, 180, 365];

/// The settings rows, one per rule.
pub const MAX_DAYS_ACCESS: &str = "key_policy.max_days.access";
pub const MAX_DAYS_API: &str = "key_policy.max_days.api";
pub const EXPIRY_REQUIRED: &str = "key_policy.expiry_required";
pub const DEFAULT_VALIDITY: &str = "key_policy.default_validity";
pub const INACTIVE_DAYS: &str = "key_policy.inactive_days";
pub const INACTIVE_WARN_DAYS: &str = "key_policy.inactive_warn_days";
pub const REPLACED_SECRET: &str = "key_policy.replaced_secret";
pub const EXPOSURE: &str = "key_policy.exposure";

/// The longest lifetime or inactivity period the page accepts: ten years.
pub const LONGEST_DAYS: i64 = 3650;
/// Days of warning before a key is deactivated for inactivity, unless set.
pub const DEFAULT_WARN_DAYS: i64 = 7;
/// The validity the Add key form offers first, unless set.
pub const DEFAULT_VALIDITY_DAYS: i64 = 90;

/// What happens when a replaced secret is presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnReplaced {
    /// Refused and recorded, the key's people told (the default).
    Record,
    /// The same, and the key locks.
    Lock,
}

impl OnReplaced {
    pub const ALL: [OnReplaced; 2] = [OnReplaced::Record, OnReplaced::Lock];
    pub fn as_str(self) -> &'static str {
        match self {
            OnReplaced::Record => "record",
            OnReplaced::Lock => "lock",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            OnReplaced::Record => "Record it and tell the key's people",
            OnReplaced::Lock => "Lock the key too",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// What happens to a key whose live secret is reported exposed (by a person, the API or
/// GitHub's secret scanning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExposed {
    /// The key locks (the default): every program using it stops until it gets a new secret.
    Lock,
    /// The key is deactivated.
    Deactivate,
    /// Recorded and told only.
    Record,
}

impl OnExposed {
    pub const ALL: [OnExposed; 3] = [OnExposed::Lock, OnExposed::Deactivate, OnExposed::Record];
    pub fn as_str(self) -> &'static str {
        match self {
            OnExposed::Lock => "lock",
            OnExposed::Deactivate => "deactivate",
            OnExposed::Record => "record",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            OnExposed::Lock => "Lock the key",
            OnExposed::Deactivate => "Deactivate the key",
            OnExposed::Record => "Only record it and tell the key's people",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// The tenant's key policy. `Default` is what a new tenant has: no limits, inactivity off,
/// replaced secrets recorded, exposed secrets locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPolicy {
    /// Days an access key may last from when it is created, extended or given a new secret.
    pub max_days_access: Option<i64>,
    /// The same for API keys.
    pub max_days_api: Option<i64>,
    /// "Never expire" is refused.
    pub expiry_required: bool,
    /// The validity the Add key form chooses first, in days.
    pub default_validity: i64,
    /// Days unused after which a key is deactivated; `None`: never.
    pub inactive_days: Option<i64>,
    /// Days before that the key's people are warned.
    pub inactive_warn_days: i64,
    pub replaced_secret: OnReplaced,
    pub exposure: OnExposed,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            max_days_access: None,
            max_days_api: None,
            expiry_required: false,
            default_validity: DEFAULT_VALIDITY_DAYS,
            inactive_days: None,
            inactive_warn_days: DEFAULT_WARN_DAYS,
            replaced_secret: OnReplaced::Record,
            exposure: OnExposed::Lock,
        }
    }
}

/// The last second (UTC) of the day holding `t`.
fn end_of_day(t: i64) -> i64 {
    t - t.rem_euclid(DAY) + DAY - 1
}

/// One key type's limits as the list's "Out of policy" filter needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeLimit {
    pub key_type: &'static str,
    /// A key that never expires breaks the policy.
    pub requires_expiry: bool,
    /// A key expiring after this instant breaks it.
    pub latest: Option<i64>,
}

impl KeyPolicy {
    /// The longest lifetime of a key type, in days.
    pub fn max_days(&self, key_type: KeyType) -> Option<i64> {
        match key_type {
            KeyType::Access => self.max_days_access,
            KeyType::Api => self.max_days_api,
        }
    }

    /// Whether a key of this type must expire.
    pub fn requires_expiry(&self, key_type: KeyType) -> bool {
        self.expiry_required || self.max_days(key_type).is_some()
    }

    /// The latest expiry a key of this type may be given at `now`: the end of the day (UTC)
    /// `max_days` from now, so that a custom date on that day is accepted.
    pub fn latest_expiry(&self, key_type: KeyType, now: i64) -> Option<i64> {
        self.max_days(key_type)
            .map(|days| end_of_day(now.saturating_add(days.saturating_mul(DAY))))
    }

    /// Whether a key of this type may be given `expires_at` (`None`: never) at `now`; the
    /// refusal names the limit.
    pub fn check_expiry(
        &self,
        key_type: KeyType,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), String> {
        let latest = self.latest_expiry(key_type, now);
        match (expires_at, latest) {
            (None, Some(latest)) => Err(format!(
                "The key policy allows {} at most {} days: choose an expiry on or before {}.",
                keys_of(key_type),
                self.max_days(key_type).unwrap_or_default(),
                date(latest)
            )),
            (None, None) if self.expiry_required => Err(
                "The key policy requires every key to expire: choose a validity or a date.".into(),
            ),
            (Some(t), Some(latest)) if t > latest => Err(format!(
                "The key policy allows {} at most {} days: choose an expiry on or before {}.",
                keys_of(key_type),
                self.max_days(key_type).unwrap_or_default(),
                date(latest)
            )),
            _ => Ok(()),
        }
    }

    /// Why a key of this type expiring at `expires_at` is out of policy at `now`, if it is.
    pub fn breach(&self, key_type: KeyType, expires_at: Option<i64>, now: i64) -> Option<String> {
        let max = self.max_days(key_type);
        match (expires_at, self.latest_expiry(key_type, now)) {
            (None, Some(_)) => Some(format!(
                "It never expires, but the key policy allows {} at most {} days.",
                keys_of(key_type),
                max.unwrap_or_default()
            )),
            (None, None) if self.expiry_required => {
                Some("It never expires, but the key policy requires every key to expire.".into())
            }
            (Some(t), Some(latest)) if t > latest => Some(format!(
                "It expires {}, later than the key policy allows for {} ({} days: at the \
                 latest {}).",
                date(t),
                keys_of(key_type),
                max.unwrap_or_default(),
                date(latest)
            )),
            _ => None,
        }
    }

    /// The expiry that brings such a key into policy at `now`: the latest allowed (the end of
    /// the day `max_days` from now), or the default validity when only an expiry is required.
    /// `None` when it is in policy already.
    pub fn compliant_expiry(
        &self,
        key_type: KeyType,
        expires_at: Option<i64>,
        now: i64,
    ) -> Option<i64> {
        self.breach(key_type, expires_at, now)?;
        Some(
            self.latest_expiry(key_type, now)
                .unwrap_or_else(|| end_of_day(now + self.default_validity * DAY)),
        )
    }

    /// The validity choices (days) a form offers for keys of these types: the usual ones
    /// within the longest limit among them, and the limit itself when it is not one of those.
    pub fn offered_days(&self, types: &[KeyType]) -> Vec<i64> {
        let limit = types
            .iter()
            .map(|t| self.max_days(*t))
            .try_fold(0, |acc, m| m.map(|m| acc.max(m)));
        let mut days: Vec<i64> = VALIDITY_DAYS
            .into_iter()
            .filter(|d| limit.is_none_or(|l| *d <= l))
            .collect();
        if let Some(l) = limit
            && !days.contains(&l)
        {
            days.push(l);
        }
        days
    }

    /// Whether a number of days is a validity choice for this type: one of the usual ones, or
    /// the type's limit (offered when it is not one of those).
    pub fn accepts_days(&self, key_type: KeyType, days: i64) -> bool {
        VALIDITY_DAYS.contains(&days) || self.max_days(key_type) == Some(days)
    }

    /// Whether "Never expire" may be offered for keys of any of these types.
    pub fn offers_never(&self, types: &[KeyType]) -> bool {
        types.iter().any(|t| !self.requires_expiry(*t))
    }

    /// The validity a form chooses first among `offered`.
    pub fn first_choice(&self, offered: &[i64]) -> i64 {
        if offered.contains(&self.default_validity) {
            self.default_validity
        } else {
            offered
                .iter()
                .copied()
                .filter(|d| *d <= self.default_validity)
                .max()
                .or_else(|| offered.first().copied())
                .unwrap_or(self.default_validity)
        }
    }

    /// What the limits are, in one sentence for form hints; empty without limits.
    pub fn limits_hint(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.max_days_access {
            parts.push(format!("access keys at most {d} days"));
        }
        if let Some(d) = self.max_days_api {
            parts.push(format!("API keys at most {d} days"));
        }
        if parts.is_empty() {
            if self.expiry_required {
                return "The key policy requires every key to expire.".into();
            }
            return String::new();
        }
        let mut hint = format!("The key policy allows {}.", parts.join(", "));
        if self.expiry_required && (self.max_days_access.is_none() || self.max_days_api.is_none()) {
            hint.push_str(" Every key must expire.");
        }
        hint
    }

    /// Each key type's limits, for the "Out of policy" filter; empty when nothing can break
    /// the policy.
    pub fn type_limits(&self, now: i64) -> Vec<TypeLimit> {
        [KeyType::Access, KeyType::Api]
            .into_iter()
            .filter(|t| self.requires_expiry(*t))
            .map(|t| TypeLimit {
                key_type: t.as_str(),
                requires_expiry: true,
                latest: self.latest_expiry(t, now),
            })
            .collect()
    }

    /// Reads the policy from its settings rows (`name`, `value`); unreadable values count as
    /// unset.
    fn from_rows(rows: &[(String, String)]) -> Self {
        let get = |name: &str| {
            rows.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let days = |name: &str| {
            get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|d| (1..=LONGEST_DAYS).contains(d))
        };
        let d = KeyPolicy::default();
        KeyPolicy {
            max_days_access: days(MAX_DAYS_ACCESS),
            max_days_api: days(MAX_DAYS_API),
            expiry_required: get(EXPIRY_REQUIRED) == Some("true"),
            default_validity: days(DEFAULT_VALIDITY).unwrap_or(d.default_validity),
            inactive_days: days(INACTIVE_DAYS),
            inactive_warn_days: get(INACTIVE_WARN_DAYS)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|d| (0..=LONGEST_DAYS).contains(d))
                .unwrap_or(d.inactive_warn_days),
            replaced_secret: get(REPLACED_SECRET)
                .and_then(OnReplaced::parse)
                .unwrap_or(d.replaced_secret),
            exposure: get(EXPOSURE)
                .and_then(OnExposed::parse)
                .unwrap_or(d.exposure),
        }
    }

    /// The rows this policy is stored as.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let days = |d: Option<i64>| d.map(|d| d.to_string()).unwrap_or_default();
        vec![
            (MAX_DAYS_ACCESS, days(self.max_days_access)),
            (MAX_DAYS_API, days(self.max_days_api)),
            (EXPIRY_REQUIRED, self.expiry_required.to_string()),
            (DEFAULT_VALIDITY, self.default_validity.to_string()),
            (INACTIVE_DAYS, days(self.inactive_days)),
            (INACTIVE_WARN_DAYS, self.inactive_warn_days.to_string()),
            (REPLACED_SECRET, self.replaced_secret.as_str().to_string()),
            (EXPOSURE, self.exposure.as_str().to_string()),
        ]
    }
}

/// A key type as the policy's sentences name its keys.
fn keys_of(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Access => "access keys",
        KeyType::Api => "API keys",
    }
}

/// A date as the policy's messages give it.
fn date(t: i64) -> String {
    format_utc(t).chars().take(10).collect()
}

/// The tenant's key policy, in one statement.
pub async fn load(conn: &mut AnyConnection) -> sqlx::Result<KeyPolicy> {
    let rows = settings::with_prefix(conn, "key_policy.").await?;
    Ok(KeyPolicy::from_rows(&rows))
}

/// The tenant's key policy, read from the pool.
pub async fn current(pool: &AnyPool) -> Result<KeyPolicy, AppError> {
    let mut conn = pool.acquire().await?;
    Ok(load(&mut conn).await?)
}

/// The Key policy form as typed.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub max_days_access: String,
    pub max_days_api: String,
    pub expiry_required: bool,
    pub default_validity: String,
    pub inactive_days: String,
    pub inactive_warn_days: String,
    pub replaced_secret: String,
    pub exposure: String,
    pub second_factor: String,
}

/// A number of days from a form field: empty is `None`.
fn days_field(
    raw: &str,
    field: &'static str,
    min: i64,
    errors: &mut FieldErrors,
) -> Result<Option<i64>, ()> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(d) if (min..=LONGEST_DAYS).contains(&d) => Ok(Some(d)),
        _ => {
            errors.add(
                field,
                format!(
                    "Enter a whole number of days from {min} to {LONGEST_DAYS}, or leave it empty."
                ),
            );
            Err(())
        }
    }
}

/// Checks a typed policy, with a message for each field that is wrong.
fn validate(input: &PolicyInput) -> Result<(KeyPolicy, SecondFactor), FieldErrors> {
    let mut errors = FieldErrors::default();
    let access = days_field(&input.max_days_access, "max_days_access", 1, &mut errors);
    let api = days_field(&input.max_days_api, "max_days_api", 1, &mut errors);
    let inactive = days_field(&input.inactive_days, "inactive_days", 1, &mut errors);
    let warn = days_field(
        &input.inactive_warn_days,
        "inactive_warn_days",
        0,
        &mut errors,
    );
    let default_validity = match input.default_validity.trim().parse::<i64>() {
        Ok(d) if VALIDITY_DAYS.contains(&d) => Some(d),
        _ => {
            errors.add("default_validity", "Choose the validity offered first.");
            None
        }
    };
    let replaced = OnReplaced::parse(&input.replaced_secret);
    if replaced.is_none() {
        errors.add("replaced_secret", "Choose what happens to the key.");
    }
    let exposure = OnExposed::parse(&input.exposure);
    if exposure.is_none() {
        errors.add("exposure", "Choose what happens to the key.");
    }
    let second = SecondFactor::parse(&input.second_factor);
    if second.is_none() {
        errors.add("second_factor", "Choose who needs a second factor.");
    }
    if let (Ok(Some(days)), Ok(warn)) = (inactive, warn)
        && warn.unwrap_or(DEFAULT_WARN_DAYS) >= days
    {
        errors.add(
            "inactive_warn_days",
            format!("The warning must come before the key is deactivated: fewer than {days} days."),
        );
    }
    match (
        access,
        api,
        inactive,
        warn,
        default_validity,
        replaced,
        exposure,
        second,
    ) {
        (
            Ok(access),
            Ok(api),
            Ok(inactive),
            Ok(warn),
            Some(default_validity),
            Some(replaced),
            Some(exposure),
            Some(second),
        ) if errors.is_empty() => Ok((
            KeyPolicy {
                max_days_access: access,
                max_days_api: api,
                expiry_required: input.expiry_required,
                default_validity,
                inactive_days: inactive,
                inactive_warn_days: warn.unwrap_or(DEFAULT_WARN_DAYS),
                replaced_secret: replaced,
                exposure,
            },
            second,
        )),
        _ => Err(errors),
    }
}

/// The rule names as the audit log and the webhook event name them.
fn rule_label(row: &str) -> &'static str {
    match row {
        MAX_DAYS_ACCESS => "maximum lifetime of access keys (days)",
        MAX_DAYS_API => "maximum lifetime of API keys (days)",
        EXPIRY_REQUIRED => "expiry required",
        DEFAULT_VALIDITY => "default validity (days)",
        INACTIVE_DAYS => "deactivate after unused (days)",
        INACTIVE_WARN_DAYS => "warn before deactivating (days)",
        REPLACED_SECRET => "replaced secret presented",
        EXPOSURE => "exposed secret reported",
        _ => "rule",
    }
}

#[derive(Serialize)]
struct PolicyEvent<'a> {
    policy: &'a KeyPolicy,
    /// The settings rows that changed, e.g. `key_policy.max_days.api`.
    changed: &'a [&'a str],
}

/// Saves the policy typed on the Key policy page (needs `config:write`): each changed rule is
/// written and audited (`key_policy.changed`, old and new value), the webhook event
/// `key_policy.changed` carries the whole new policy; the second-factor rule is saved with it.
/// Returns how many rules changed.
pub async fn save(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    input: &PolicyInput,
) -> Result<usize, FormError> {
    actor.require(Permission::ConfigWrite)?;
    let (wanted, second) = validate(input).map_err(FormError::Invalid)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let old = load(&mut tx).await?;
    let before = old.rows();
    let mut changed: Vec<&str> = Vec::new();
    for (name, value) in wanted.rows() {
        let was = before
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if was == value {
            continue;
        }
        settings::set(&mut tx, name, &value).await?;
        let shown = |v: &str| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.to_string()
            }
        };
        let details = format!("{}: {} → {}", rule_label(name), shown(was), shown(&value));
        let entry = audit::success(
            actor,
            "key_policy.changed",
            "settings",
            name,
            "Key policy",
            &details,
        );
        audit::record(&mut tx, now, entry).await?;
        changed.push(name);
    }
    if !changed.is_empty() {
        let data = PolicyEvent {
            policy: &wanted,
            changed: &changed,
        };
        webhooks::emit_data(&mut tx, now, EventType::KeyPolicyChanged, data).await?;
    }
    let second_changed = factors::write_policy(&mut tx, actor, now, second).await?;
    tx.commit().await?;
    Ok(changed.len() + usize::from(second_changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_428_000; // 2026-11-23 10:00 UTC

    fn limited() -> KeyPolicy {
        KeyPolicy {
            max_days_api: Some(90),
            ..KeyPolicy::default()
        }
    }

    #[test]
    fn the_limit_runs_to_the_end_of_the_day_and_refusals_name_it() {
        let p = limited();
        let latest = p.latest_expiry(KeyType::Api, NOW).unwrap();
        assert_eq!(date(latest), "2027-02-21");
        assert_eq!(latest % DAY, DAY - 1);
        assert!(p.check_expiry(KeyType::Api, Some(latest), NOW).is_ok());
        let err = p
            .check_expiry(KeyType::Api, Some(latest + 1), NOW)
            .unwrap_err();
        assert!(
            err.contains("at most 90 days") && err.contains("2027-02-21"),
            "{err}"
        );
        assert!(p.check_expiry(KeyType::Api, None, NOW).is_err());
        // Access keys are not limited.
        assert!(p.check_expiry(KeyType::Access, None, NOW).is_ok());
    }

    #[test]
    fn offered_choices_never_exceed_the_limit() {
        let p = KeyPolicy {
            max_days_access: Some(45),
            max_days_api: Some(14),
            default_validity: 90,
            ..KeyPolicy::default()
        };
        assert_eq!(p.offered_days(&[KeyType::Api]), vec![14]);
        assert_eq!(
            p.offered_days(&[KeyType::Access, KeyType::Api]),
            vec![30, 45]
        );
        assert_eq!(p.first_choice(&[30, 45]), 45);
        assert!(!p.offers_never(&[KeyType::Access, KeyType::Api]));
        let open = KeyPolicy::default();
        assert_eq!(
            open.offered_days(&[KeyType::Access]),
            VALIDITY_DAYS.to_vec()
        );
        assert!(open.offers_never(&[KeyType::Access]));
    }

    #[test]
    fn breaches_are_explained_and_mended_by_the_latest_allowed_expiry() {
        let p = limited();
        assert!(
            p.breach(KeyType::Api, None, NOW)
                .unwrap()
                .contains("never expires")
        );
        assert!(p.breach(KeyType::Api, Some(NOW + 400 * DAY), NOW).is_some());
        assert!(p.breach(KeyType::Api, Some(NOW + 30 * DAY), NOW).is_none());
        assert_eq!(
            p.compliant_expiry(KeyType::Api, None, NOW),
            p.latest_expiry(KeyType::Api, NOW)
        );
        let required = KeyPolicy {
            expiry_required: true,
            ..KeyPolicy::default()
        };
        assert_eq!(
            required.compliant_expiry(KeyType::Access, None, NOW),
            Some(end_of_day(NOW + 90 * DAY))
        );
    }

    #[test]
    fn stored_rows_read_back_and_bad_values_count_as_unset() {
        let p = KeyPolicy {
            max_days_access: Some(30),
            expiry_required: true,
            inactive_days: Some(45),
            inactive_warn_days: 10,
            replaced_secret: OnReplaced::Lock,
            exposure: OnExposed::Deactivate,
            ..KeyPolicy::default()
        };
        let rows: Vec<(String, String)> = p
            .rows()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        assert_eq!(KeyPolicy::from_rows(&rows), p);
        let junk = vec![
            (MAX_DAYS_API.to_string(), "-3".to_string()),
            (EXPOSURE.to_string(), "explode".to_string()),
        ];
        assert_eq!(KeyPolicy::from_rows(&junk), KeyPolicy::default());
    }

    #[test]
    fn the_warning_must_come_before_the_deactivation() {
        let input = PolicyInput {
            default_validity: "90".into(),
            inactive_days: "5".into(),
            inactive_warn_days: "7".into(),
            replaced_secret: "record".into(),
            exposure: "lock".into(),
            second_factor: "none".into(),
            ..PolicyInput::default()
        };
        let errors = validate(&input).unwrap_err();
        assert!(errors.get("inactive_warn_days").is_some());
        let bad = PolicyInput {
            max_days_api: "ninety".into(),
            ..input
        };
        assert!(validate(&bad).unwrap_err().get("max_days_api").is_some());
    }
}
