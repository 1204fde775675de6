//! The expiry scan, run by the job at every pass: the rules are `service::expiry`'s.

use crate::jobs::Jobs;

impl Jobs {
    /// Finds the keys due a notice and tells their people, one transaction per key. Returns
    /// how many keys were noticed by this run.
    pub async fn scan(&self) -> anyhow::Result<usize> {
        let now = self.clock.unix();
        let stages = &self.stages;
        Ok(crate::service::expiry::scan(&self.pool, stages, &self.public_url, now).await?)
    }
}

impl Jobs {
    /// Applies the key policy's inactivity rule: warns, then deactivates, keys gone unused.
    pub async fn sweep_inactive(
        &self,
    ) -> anyhow::Result<crate::service::key_policy::inactivity::Swept> {
        let now = self.clock.unix();
        let swept =
            crate::service::key_policy::inactivity::scan(&self.pool, &self.public_url, now).await;
        // Keys may have been deactivated: this instance's key checks read them again.
        if let Some(changes) = &self.key_changes {
            changes.changed();
        }
        Ok(swept?)
    }
}
