//! Every rule and every write, once: the console, the REST API and the job call these.

pub mod accounts;
pub mod audit;
pub mod bootstrap;
pub mod dispatch;
pub mod expiry;
pub mod grants;
pub mod health;
pub mod housekeeping;
pub mod key_auth;
pub mod key_policy;
pub mod keys;
pub mod mail_log;
pub mod notices;
pub mod once;
pub mod overview;
pub mod passkeys;
pub mod people;
/// The SQL, private to the services: `src/repo/`.
#[path = "../repo/mod.rs"]
mod repo;
pub mod secret_keys;
pub mod throttle;
pub mod webhooks;

use crate::error::AppError;

/// Form errors: each field with its message.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    /// The message for a field, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Adds a message for a field.
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }
}

/// Why a submitted form did not take effect: bad fields (shown next to them) or anything else.
#[derive(Debug)]
pub enum FormError {
    Invalid(FieldErrors),
    Other(AppError),
}

impl From<crate::domain::Missing> for FormError {
    fn from(missing: crate::domain::Missing) -> Self {
        FormError::Other(missing.into())
    }
}

impl From<sqlx::Error> for FormError {
    fn from(e: sqlx::Error) -> Self {
        FormError::Other(e.into())
    }
}

impl From<anyhow::Error> for FormError {
    fn from(e: anyhow::Error) -> Self {
        FormError::Other(e.into())
    }
}

impl From<AppError> for FormError {
    fn from(e: AppError) -> Self {
        FormError::Other(e)
    }
}
