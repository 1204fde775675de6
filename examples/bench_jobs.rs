//! Times the background job on a seeded database (see `scripts/bench-jobs`): one expiry scan,
//! then sending everything it queued to an SMTP server on loopback (the test suite's).
//! Reads the same `KEYWARD_*` configuration as `keyward serve`.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use keyward::config::SettingsArgs;

#[path = "../tests/common/smtp.rs"]
#[allow(dead_code)]
mod smtp;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = smtp::SmtpServer::start(smtp::Mode::Accept).await;
    let mut settings = args.settings.resolve()?;
    settings.smtp_url = Some(server.url().into());
    let prepared = keyward::startup::prepare(&settings).await?;
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_keys")
        .fetch_one(&prepared.pool)
        .await?;
    let jobs = keyward::jobs::Jobs::from_settings(
        prepared.pool.clone(),
        Arc::new(keyward::clock::SystemClock),
        &prepared.vault,
        &settings,
    )?;
    let started = Instant::now();
    let noticed = jobs.scan().await?;
    let scan = started.elapsed();
    let started = Instant::now();
    let again = jobs.scan().await?;
    let rescan = started.elapsed();
    let started = Instant::now();
    let sent = jobs.send_due().await?;
    let send = started.elapsed();
    println!("keys in the database:       {keys}");
    println!(
        "expiry scan:                {:.0} ms, {noticed} keys noticed (emails and bell notices queued)",
        scan.as_secs_f64() * 1000.0
    );
    println!(
        "second scan (nothing due):  {:.0} ms, {again} keys noticed",
        rescan.as_secs_f64() * 1000.0
    );
    println!(
        "sender:                     {} emails in {:.2} s = {:.0} emails/s over loopback SMTP ({} accepted by the server)",
        sent.sent,
        send.as_secs_f64(),
        sent.sent as f64 / send.as_secs_f64(),
        server.accepted().len()
    );
    Ok(())
}
