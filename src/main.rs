//! The `keyward` command: serve (default), migrate, admin create, jobs run-once.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
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
                    &prepared.master_key,
                    &settings,
                )?;
                let pass = jobs.run_once().await?;
                println!(
                    "Noticed {} keys; sent {} emails ({} to retry, {} failed); removed {} expired \
                     sessions and {} old rate-limit windows.",
                    pass.keys_noticed,
                    pass.emails_sent,
                    pass.emails_retrying,
                    pass.emails_failed,
                    pass.sessions_purged,
                    pass.windows_purged
                );
                Ok(ExitCode::SUCCESS)
            }
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
        password: &password,
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

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            anyhow::bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}
