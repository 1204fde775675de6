//! The outbox sender: claims due emails with a lease, delivers them through the one mailer,
//! marks them sent with the server's answer, or schedules a retry with exponential backoff and
//! gives up after the configured number of attempts. A sender that dies mid-send leaves its
//! email leased; once the lease ends another pass sends it.

use crate::jobs::{Jobs, in_rounds};
use crate::service::dispatch::{self, Queue, Taken};

/// How long a claimed email is reserved for its sender: comfortably longer than the deadline of
/// one SMTP conversation (`KEYWARD_SMTP_TIMEOUT_SECS`, at most 240 s).
pub const LEASE_SECS: i64 = 300;
/// Emails claimed per round.
const ROUND: i64 = 50;

/// What a sending pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Seconds to wait before attempt `attempt + 1` (after `attempt` failures): 30 s doubling,
/// at most an hour.
pub fn backoff(attempt: i64) -> i64 {
    let exp = attempt.clamp(1, 8) - 1;
    (30 * (1i64 << exp)).min(3_600)
}

impl Jobs {
    /// Sends every due email, round after round, until none is left.
    pub async fn send_due(&self) -> anyhow::Result<Sent> {
        let due = || async {
            Ok(dispatch::due(&self.pool, Queue::Outbox, self.clock.unix(), ROUND).await?)
        };
        let one = |id: String| {
            let jobs = self.clone();
            async move { jobs.send_one(&id).await }
        };
        let mut total = Sent::default();
        for outcome in in_rounds(due, one).await? {
            match outcome {
                Outcome::Sent => total.sent += 1,
                Outcome::Retrying => total.retrying += 1,
                Outcome::Failed => total.failed += 1,
            }
        }
        Ok(total)
    }

    /// Claims and sends one email; `None` when another sender has it.
    async fn send_one(&self, id: &str) -> anyhow::Result<Option<Outcome>> {
        let now = self.clock.unix();
        let taken =
            dispatch::take_email(&self.pool, &self.vault, id, now, now + LEASE_SECS).await?;
        let (claim, message) = match taken {
            None => return Ok(None),
            Some(Taken::Failed) => return Ok(Some(Outcome::Failed)),
            Some(Taken::Ready(claim, message)) => (claim, message),
        };
        // The whole conversation has a deadline well inside the lease, so that no other sender
        // takes the email over while this one may still deliver it.
        let result = self
            .mailer
            .deliver(&message.id, &message.email, self.send_deadline)
            .await;
        let done = self.clock.unix();
        let (written, outcome) = match result {
            Ok(response) => (
                dispatch::email_sent(&self.pool, id, &claim, done, &response).await?,
                Outcome::Sent,
            ),
            Err(e) => {
                let attempts = message.attempts + 1;
                let give_up = e.permanent || attempts >= i64::from(self.max_attempts);
                let retry_at = (!give_up).then(|| done + backoff(attempts));
                tracing::warn!(email = %id, attempts, give_up, error = %e.message, "sending an email failed");
                let written =
                    dispatch::email_failed(&self.pool, id, &claim, &e.message, retry_at).await?;
                let outcome = if give_up {
                    Outcome::Failed
                } else {
                    Outcome::Retrying
                };
                (written, outcome)
            }
        };
        if !written {
            // The lease ran out and another sender took the email over (or it was finished
            // meanwhile): its outcome stands, this one is not recorded.
            tracing::warn!(email = %id, "an email finished sending after its lease; its outcome was not recorded");
            return Ok(None);
        }
        Ok(Some(outcome))
    }
}

enum Outcome {
    Sent,
    Retrying,
    Failed,
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(super::backoff).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
