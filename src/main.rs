//! The `keyward` command: serve (default), migrate, admin create, jobs run-once.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use secrecy::zeroize::Zeroizing;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use keyward::auth::password::PasswordHasher;
use keyward::clock::{Clock, SystemClock};
use keyward::config::SettingsArgs;
use keyward::service::FormError;
use keyward::service::accounts::{self, NewAdmin};
use keyward::startup::{Application, prepare};

#[derive(Parser)]
#[command(
    name = "keyward",
    version,
    about = "Access keys for programs, with a web console"
)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web console, the REST API and the background job (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run the background job.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Manage the master key.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Move every sealed value to a new master key, in one transaction. Stop keyward first.
    /// The new key is KEYWARD_NEW_MASTER_KEY (required when KEYWARD_MASTER_KEY is set), else a
    /// fresh random one that replaces master.key.
    Rotate,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator; the password is asked for on a terminal, or read as one line
    /// from standard input otherwise.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// One pass of the background job, then exit.
    RunOnce,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings.resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(2);
        }
    };
    keyward::telemetry::init(
        &settings.log,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyward: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let app = Application::build(settings.clone(), clock).await?;
                tracing::info!(
                    address = %settings.bind,
                    port = app.port(),
                    "keyward is listening"
                );
                app.run_until_stopped().await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                prepare(&settings).await?;
                println!("The database is up to date.");
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Create { email, name },
            } => create_admin(&settings, clock, &email, &name).await,
            Command::Jobs {
                command: JobsCommand::RunOnce,
            } => {
                let prepared = prepare(&settings).await?;
                let jobs = keyward::jobs::Jobs::from_settings(
                    prepared.pool.clone(),
                    clock.clone(),
                    &prepared.vault,
                    &settings,
                )?;
                let pass = jobs.run_once().await?;
                println!(
                    "Noticed {} keys; sent {} emails ({} to retry, {} failed); delivered {} webhooks \
                     ({} to retry, {} failed); removed {} expired sessions, {} old rate-limit \
                     windows and {} messages past their retention.",
                    pass.keys_noticed,
                    pass.emails_sent,
                    pass.emails_retrying,
                    pass.emails_failed,
                    pass.webhooks_delivered,
                    pass.webhooks_retrying,
                    pass.webhooks_failed,
                    pass.sessions_purged,
                    pass.windows_purged,
                    pass.messages_purged
                );
                if pass.keys_warned_inactive + pass.keys_deactivated_inactive > 0 {
                    println!(
                        "The key policy warned about {} unused keys and deactivated {}.",
                        pass.keys_warned_inactive, pass.keys_deactivated_inactive
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::MasterKey {
                command: MasterKeyCommand::Rotate,
            } => rotate_master_key(&settings).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let e: anyhow::Error = e;
            eprintln!("keyward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn create_admin(
    settings: &keyward::config::Settings,
    clock: Arc<dyn Clock>,
    email: &str,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let password = read_password()?;
    let prepared = prepare(settings).await?;
    let hasher = PasswordHasher::new(1)?;
    let input = NewAdmin {
        name,
        email,
        password: password.as_str(),
        confirm: None,
    };
    match accounts::create_admin(&prepared.pool, &hasher, clock.as_ref(), input, None, "").await {
        Ok(id) => {
            println!(
                "Created administrator {} ({id}).",
                email.trim().to_lowercase()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(FormError::Invalid(errors)) => {
            for (field, message) in errors.0 {
                eprintln!("keyward: {field}: {message}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(FormError::Other(e)) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn rotate_master_key(settings: &keyward::config::Settings) -> anyhow::Result<ExitCode> {
    use keyward::auth::master_key::{self, MasterKey};
    let in_file = settings.master_key.is_none();
    let new = match std::env::var("KEYWARD_NEW_MASTER_KEY").map(Zeroizing::new) {
        Ok(raw) => MasterKey::from_base64(&raw)
            .map_err(|e| anyhow::anyhow!("KEYWARD_NEW_MASTER_KEY: {e}"))?,
        Err(_) if in_file => MasterKey::generate(),
        // A key only printed could be lost with the terminal; the operator keeps it first.
        Err(_) => anyhow::bail!(
            "KEYWARD_MASTER_KEY is set, so keyward cannot store the new key: generate one \
             (openssl rand -base64 32), keep it where KEYWARD_MASTER_KEY comes from, and pass it \
             as KEYWARD_NEW_MASTER_KEY"
        ),
    };
    let prepared = prepare(settings).await?;
    let _lock = if in_file {
        let lock = master_key::RotationLock::take(&settings.data_dir)?;
        // Written (and synced) first: if the process dies after the commit, the next start
        // finishes the move.
        master_key::write_next(&settings.data_dir, &new)?;
        Some(lock)
    } else {
        None
    };
    let rotation = keyward::auth::vault::rotate(&prepared.pool, &prepared.master_key, &new).await?;
    if in_file {
        master_key::promote_next(&settings.data_dir, &new)?;
        println!(
            "{} now holds master key version {}.",
            settings.data_dir.join(master_key::FILE_NAME).display(),
            rotation.version
        );
    } else {
        println!(
            "The database is sealed under KEYWARD_NEW_MASTER_KEY (master key version {}). Set \
             KEYWARD_MASTER_KEY to it before starting keyward again.",
            rotation.version
        );
    }
    println!(
        "Re-sealed {} webhook signing keys, {} waiting emails and {} authenticator-app secrets. \
         Everyone signed in must sign in again.",
        rotation.secret_keys, rotation.emails, rotation.totp_secrets
    );
    Ok(ExitCode::SUCCESS)
}

/// The password typed or piped in; wiped from memory when dropped.
fn read_password() -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        let second = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
        if first != second {
            anyhow::bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        // Room for any password, so that reading does not leave unwiped copies behind.
        let mut line = Zeroizing::new(String::with_capacity(1024));
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }
}
