//! The fields of the Add key and Key details forms, as typed, and the Add key form's state.

use crate::domain::{KeyType, RateLimit};
use crate::error::AppError;
use crate::service::FieldErrors;
use crate::service::key_policy::KeyPolicy;
use crate::service::keys::{self, Choices, ExpiryChoice, KeyChanges, NewKey};
use crate::service::once::FormOnce;
use crate::state::AppState;

use super::Place;

/// The fields of the Add key and Key details forms, as typed. Multi-selects arrive as repeated
/// fields.
#[derive(Clone, Default)]
pub struct KeyForm {
    pub name: String,
    pub key_type: String,
    pub validity: String,
    pub custom_date: String,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub networks: String,
    /// The rate limit's two fields: requests per second and burst (both empty: no limit).
    pub rate_per_second: String,
    pub rate_burst: String,
    /// The Add key form's single-use token.
    pub once: String,
}

impl KeyForm {
    /// Reads a submitted form body; missing fields are empty.
    pub fn parse(body: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let many = |name: &str| {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        Self {
            name: one("name"),
            key_type: one("key_type"),
            validity: one("validity"),
            custom_date: one("custom_date"),
            groups: many("groups"),
            roles: many("roles"),
            networks: one("allowed_networks"),
            rate_per_second: one("rate_per_second"),
            rate_burst: one("rate_burst"),
            once: one("once"),
        }
    }

    /// A new key from the Add key form.
    pub fn new_key(&self) -> NewKey {
        NewKey {
            name: self.name.clone(),
            key_type: self.key_type.clone(),
            expiry: ExpiryChoice::from_form(&self.validity, &self.custom_date),
            group_ids: self.groups.clone(),
            role_ids: self.roles.clone(),
            rate_limit: RateLimit::from_form(&self.rate_per_second, &self.rate_burst),
            once: FormOnce::from_field(&self.once),
        }
    }

    /// Changes from the Key details form: every part is submitted; "keep" keeps the expiry.
    pub fn changes(&self) -> KeyChanges {
        KeyChanges {
            name: Some(self.name.clone()),
            description: None,
            // "Keep" keeps the expiry, unless a date was typed too (then it is an error).
            expiry: (self.validity != "keep" || !self.custom_date.trim().is_empty())
                .then(|| ExpiryChoice::from_form(&self.validity, &self.custom_date)),
            group_ids: Some(self.groups.clone()),
            role_ids: Some(self.roles.clone()),
            allowed_networks: Some(self.networks.clone()),
            rate_limit: Some(RateLimit::from_form(
                &self.rate_per_second,
                &self.rate_burst,
            )),
        }
    }
}

/// The Add key form's state (blank, or as submitted with messages).
pub struct AddForm {
    pub name: String,
    pub key_type: String,
    /// The validity chosen (days, `custom` or `never`).
    pub chosen: String,
    pub custom_date: String,
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    /// The rate limit's fields as typed.
    pub rate_per_second: String,
    pub rate_burst: String,
    pub errors: FieldErrors,
    pub conflict: String,
    pub groups: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
    pub today: String,
    /// The form's single-use token: a second post of it creates nothing.
    pub once: String,
    /// The validity choices the key policy allows.
    pub validity: Validity,
}

/// The expiry choices a form offers under the key policy, and what the policy says.
pub struct Validity {
    /// Days, as the radio or option values.
    pub days: Vec<String>,
    /// Whether "Never expire" is offered.
    pub never: bool,
    /// The policy's limits in words; empty without limits.
    pub hint: String,
    /// The choice made first.
    pub first: String,
}

impl Validity {
    /// The choices for keys of these types under the policy.
    pub fn of(policy: &KeyPolicy, types: &[KeyType]) -> Self {
        let offered = policy.offered_days(types);
        Validity {
            first: policy.first_choice(&offered).to_string(),
            days: offered.iter().map(i64::to_string).collect(),
            never: policy.offers_never(types),
            hint: policy.limits_hint(),
        }
    }

    /// The choices for one key (its type).
    pub fn for_type(policy: &KeyPolicy, key_type: &str) -> Self {
        let key_type = KeyType::parse(key_type).unwrap_or(KeyType::Access);
        Self::of(policy, &[key_type])
    }
}

impl AddForm {
    /// The message for a field, empty when there is none.
    pub fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }

    /// Whether a group is chosen.
    pub fn has_group(&self, id: &str) -> bool {
        self.group_ids.iter().any(|g| g == id)
    }

    /// Whether a role is chosen.
    pub fn has_role(&self, id: &str) -> bool {
        self.role_ids.iter().any(|r| r == id)
    }

    /// The form as submitted, with what was wrong with it.
    pub fn again(mut self, input: KeyForm, errors: FieldErrors, conflict: String) -> Self {
        self.name = input.name;
        self.key_type = input.key_type;
        self.chosen = input.validity;
        self.custom_date = input.custom_date;
        self.group_ids = input.groups;
        self.role_ids = input.roles;
        self.rate_per_second = input.rate_per_second;
        self.rate_burst = input.rate_burst;
        // Nothing was created: the same token serves the corrected form.
        self.once = input.once;
        self.errors = errors;
        self.conflict = conflict;
        self
    }
}

/// The groups and roles a key can be given, when `wanted`: personal keys take none.
pub async fn choices(state: &AppState, wanted: bool) -> Result<Choices, AppError> {
    if !wanted {
        return Ok(Choices::default());
    }
    let mut conn = state.pool.acquire().await?;
    keys::choices(&mut conn).await
}

/// The Add key form as it first opens: an access key valid for the key policy's first choice
/// (90 days unless the policy says otherwise).
pub async fn blank_add_form(state: &AppState, place: Place) -> Result<AddForm, AppError> {
    let Choices { groups, roles } = choices(state, place.tenant()).await?;
    let policy = crate::service::key_policy::current(&state.pool).await?;
    let validity = Validity::of(&policy, &[KeyType::Access, KeyType::Api]);
    Ok(AddForm {
        name: String::new(),
        key_type: "access".into(),
        chosen: validity.first.clone(),
        custom_date: String::new(),
        group_ids: Vec::new(),
        role_ids: Vec::new(),
        rate_per_second: String::new(),
        rate_burst: String::new(),
        errors: FieldErrors::default(),
        conflict: String::new(),
        groups,
        roles,
        today: state.clock.now().format("%Y-%m-%d").to_string(),
        once: crate::service::once::issue(),
        validity,
    })
}
