//! `POST /api/v1/verify`'s rules: a caller (an access key or the bridge) asks whether a key
//! presented to it is valid.

use crate::auth::key_auth as header;
use crate::domain::{KeyType, Permission};
use crate::error::AppError;
use crate::metrics::Metrics;

use super::caller::{bridge_caller, calling_key, observe};
use super::{
    Attempt, AuthError, AuthenticatedKey, Caller, CallerCredentials, KeyChecker, Keyring, Refusal,
};

/// What a verify call asks about: the key a program presented to the caller
/// (`<key ID>::<secret>`), and that program's address (empty when not reported: a key
/// restricted to networks is then refused).
#[derive(Debug, Clone, Copy)]
pub struct VerifyQuestion<'a> {
    pub key: &'a str,
    pub client_ip: &'a str,
}

/// The answer about a presented key: valid or not, one reason code, and the key's facts when
/// valid.
#[derive(Debug, Clone)]
pub struct VerifyAnswer {
    pub valid: bool,
    /// `VALID`, `NOT_FOUND`, `EXPIRED`, `INACTIVE`, `LOCKED`, `FORBIDDEN_NETWORK` or
    /// `RATE_LIMITED`.
    pub code: &'static str,
    pub key: Option<VerifiedKey>,
    /// For `RATE_LIMITED`: milliseconds until the key may be presented again.
    pub retry_after_ms: Option<i64>,
}

/// What the caller learns about a valid key (read from the key as its check found it).
#[derive(Debug, Clone)]
pub struct VerifiedKey(AuthenticatedKey);

impl VerifiedKey {
    pub fn id(&self) -> &str {
        self.0.id()
    }

    pub fn name(&self) -> &str {
        &self.0.row().name
    }

    pub fn key_type(&self) -> KeyType {
        KeyType::parse(&self.0.row().key_type).unwrap_or(KeyType::Api)
    }

    /// The owner's name, for a personal key.
    pub fn owner(&self) -> Option<&str> {
        self.0.row().owner_name.as_deref()
    }

    /// The permissions it acts with, sorted.
    pub fn permissions(&self) -> &[String] {
        self.0.permissions()
    }

    /// Unix seconds; `None` for a key that never expires.
    pub fn expires_at(&self) -> Option<i64> {
        self.0.row().expires_at
    }
}

/// The verify endpoint's rules, for both ways of calling it (an access key, or the bridge's
/// client credentials):
/// - the caller is judged first and must be valid and hold `keys:verify`; otherwise the call
///   is refused (`Unauthorized`, `TooManyRequests` or `MissingPermission`) and the presented
///   key is not judged at all, so that nobody without verify rights can push a key towards
///   its lockout or learn anything about it;
/// - the bridge is checked on its own first; a calling key is looked up together with the
///   presented one (one lookup);
/// - the caller's failures count against its client address; the presented key's do not (the
///   caller acts for many clients), but its wrong secrets count towards its lockout;
/// - every refusal of the presented key is one of the uniform codes, its reason audited;
/// - every outcome is counted in the metrics (`api` or `bridge` for the caller, `verify` for
///   the presented key).
///
/// `question` is `None` when the request did not say what to verify: the caller is still
/// judged (so a stranger learns nothing from a bad body), and `Ok(None)` tells the handler
/// to answer its own error about the body.
pub async fn verify(
    checker: &KeyChecker,
    ring: &Keyring<'_>,
    metrics: &Metrics,
    credentials: CallerCredentials,
    question: Option<VerifyQuestion<'_>>,
) -> Result<Option<VerifyAnswer>, AppError> {
    let asked = |needs_caller| {
        question.map(|q| Attempt {
            presented: header::from_pair(q.key.trim()),
            client_ip: q.client_ip,
            user_agent: "verify",
            limit_client: false,
            needs_caller,
        })
    };
    let refused = || Err(AuthError::Refused(Refusal::Malformed));
    let outcome = if let Some(bridge) = &credentials.bridge {
        let caller = bridge_caller(
            checker,
            ring,
            metrics,
            bridge,
            credentials.client_ip.clone(),
        )
        .await?;
        require_verify(&caller)?;
        match asked(None) {
            Some(attempt) => checker.check(ring, attempt).await,
            None => return Ok(None),
        }
    } else {
        // Judged only when the caller, first in the batch, is accepted with keys:verify.
        let mut attempts = vec![credentials.attempt()];
        attempts.extend(asked(Some(Permission::KeysVerify)));
        let mut outcomes = checker.check_all(ring, attempts).await.into_iter();
        let caller_outcome = outcomes.next().unwrap_or_else(refused);
        if !calling_key(metrics, caller_outcome)?.holds(Permission::KeysVerify) {
            return Err(AppError::MissingPermission(Permission::KeysVerify));
        }
        match outcomes.next() {
            Some(outcome) => outcome,
            None => return Ok(None),
        }
    };
    let answer = |code| VerifyAnswer {
        valid: false,
        code,
        key: None,
        retry_after_ms: None,
    };
    Ok(Some(match observe(metrics, "verify", outcome) {
        Ok(key) => VerifyAnswer {
            valid: true,
            code: "VALID",
            key: Some(VerifiedKey(key)),
            retry_after_ms: None,
        },
        Err(AuthError::Refused(refusal)) => answer(refusal.code()),
        // The presented key's failures count against no client; kept uniform all the same.
        Err(AuthError::Throttled { .. }) => answer(Refusal::NotFound.code()),
        Err(AuthError::RateLimited { retry_after_ms, .. }) => VerifyAnswer {
            retry_after_ms: Some(retry_after_ms),
            ..answer(RATE_LIMITED)
        },
        Err(AuthError::Internal(e)) => return Err(e),
    }))
}

/// The verify code of a presented key over its rate limit.
pub const RATE_LIMITED: &str = "RATE_LIMITED";

fn require_verify(caller: &Caller) -> Result<(), AppError> {
    if caller.actor.may(Permission::KeysVerify) {
        Ok(())
    } else {
        Err(AppError::MissingPermission(Permission::KeysVerify))
    }
}
