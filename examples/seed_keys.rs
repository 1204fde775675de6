//! Seeds a keyward database with many tenant access keys, for benchmarks:
//! `KEYWARD_DATA_DIR=… cargo run --release --example seed_keys -- 100000`.
//! Reads the same `KEYWARD_*` configuration as `keyward serve`. The secrets are discarded.
//! `--due N` shapes the keys for `scripts/bench-jobs` instead.

use clap::Parser;
use keyward::auth::key_secret::SecretHasher;
use keyward::config::SettingsArgs;
use keyward::domain::{KeyId, Secret};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
    /// How many keys to add.
    count: usize,
    /// For the expiry-job benchmark: this many active keys expire in a day, every other key
    /// in 3 to 365 days or never, and none has expired.
    #[arg(long)]
    due: Option<usize>,
    /// For the export benchmark: give keys what an inventory shows. Every 3rd key gets the
    /// Read Only role, every 4th joins the Administrators group, every 6th has allowed
    /// networks, every 2nd was last used (time, address and agent).
    #[arg(long)]
    assign: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = args.settings.resolve()?;
    let prepared = keyward::startup::prepare(&settings).await?;
    let hasher = SecretHasher::new(&prepared.master_key);
    let now = chrono::Utc::now().timestamp();
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < args.count {
        let batch = (args.count - done).min(500);
        let mut tx = prepared.pool.begin().await?;
        for i in done..done + batch {
            let id = KeyId::generate();
            let hash = hasher.hash(&Secret::generate());
            // A spread of states: every 7th key is an API key, every 11th expired, every 13th inactive.
            let key_type = if i % 7 == 0 { "api" } else { "access" };
            let expires = if let Some(due) = args.due {
                if i < due {
                    Some(now + 86_400)
                } else if i % 5 == 0 {
                    None
                } else {
                    Some(now + (i as i64 % 363 + 3) * 86_400)
                }
            } else if i % 11 == 0 {
                // Long expired, and the rest beyond the notice window: the background job
                // has nothing to do while the HTTP benchmark runs.
                Some(now - 30 * 86_400)
            } else if i % 5 == 0 {
                None
            } else {
                Some(now + (i as i64 % 363 + 3) * 86_400)
            };
            sqlx::query(
                "INSERT INTO access_keys (id, name, search_name, key_type, secret_hash, expires_at, active, created_at, \
                 created_by_label, modified_at, modified_by_label) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, 'seed', $7, 'seed')",
            )
            .bind(id.as_str())
            .bind(format!("service {i:06}"))
            .bind(key_type)
            .bind(hash)
            .bind(expires)
            .bind(i64::from(args.due.is_some_and(|d| i < d) || i % 13 != 0))
            .bind(now - (args.count - i) as i64)
            .execute(&mut *tx)
            .await?;
            if args.assign {
                assign(&mut tx, id.as_str(), i, now).await?;
            }
        }
        tx.commit().await?;
        done += batch;
    }
    println!(
        "Seeded {done} keys in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What `--assign` adds to key `i`.
async fn assign(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    i: usize,
    now: i64,
) -> anyhow::Result<()> {
    if i.is_multiple_of(3) {
        sqlx::query("INSERT INTO key_roles (key_id, role_id) VALUES ($1, 'role_read_only')")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if i.is_multiple_of(4) {
        sqlx::query("INSERT INTO key_groups (key_id, group_id) VALUES ($1, 'grp_administrators')")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if i.is_multiple_of(6) {
        sqlx::query(
            "UPDATE access_keys SET allowed_networks = '10.0.0.0/8, 2001:db8::/32' WHERE id = $1",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    if i.is_multiple_of(2) {
        sqlx::query(
            "UPDATE access_keys SET last_used_at = $1, last_used_ip = $2, last_used_agent = 'seed/1.0' \
             WHERE id = $3",
        )
        .bind(now - (i as i64 % 86_400))
        .bind(format!("198.51.100.{}", i % 250))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
