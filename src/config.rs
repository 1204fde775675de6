//! Settings from `KEYWARD_*` environment variables, each also a command-line flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

/// Every configuration variable of the specification, as flags with environment fallbacks.
/// Deliberately without `Debug`: it holds the secret settings as given.
#[derive(Clone, Args)]
pub struct SettingsArgs {
    /// Listen address.
    #[arg(
        long,
        env = "KEYWARD_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Base URL used in emails and links (default: http://<bind>).
    #[arg(long, env = "KEYWARD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Data directory: SQLite file, master key file, mail outbox.
    #[arg(
        long,
        env = "KEYWARD_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (default: SQLite file in the data directory).
    #[arg(
        long,
        env = "KEYWARD_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Base64 of 32 bytes (default: a file created on first start).
    #[arg(
        long,
        env = "KEYWARD_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    /// SMTP URL, e.g. smtp://user:pass@host:587?tls=required (default: .eml files).
    #[arg(long, env = "KEYWARD_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender address of emails.
    #[arg(
        long,
        env = "KEYWARD_MAIL_FROM",
        default_value = "keyward@localhost",
        global = true
    )]
    pub mail_from: String,
    /// Tenant ID shown in key details (default: generated once and stored).
    #[arg(long, env = "KEYWARD_TENANT_ID", global = true)]
    pub tenant_id: Option<String>,
    /// Notice stages in days before expiry, e.g. `14,7,2`.
    #[arg(
        long,
        env = "KEYWARD_EXPIRY_NOTICE_DAYS",
        default_value = "2",
        global = true
    )]
    pub expiry_notice_days: String,
    /// Consecutive wrong secrets before a key locks (0: never).
    #[arg(
        long,
        env = "KEYWARD_LOCKOUT_THRESHOLD",
        default_value_t = 5,
        global = true
    )]
    pub lockout_threshold: u32,
    /// Failed key authentications per client address per minute before 429.
    #[arg(
        long,
        env = "KEYWARD_CLIENT_FAILURE_LIMIT",
        default_value_t = 30,
        global = true
    )]
    pub client_failure_limit: u32,
    /// Refusals of one key from one address for one reason written to the audit log one by
    /// one per second; past it they are counted in one entry (0: every one written).
    #[arg(
        long,
        env = "KEYWARD_REFUSAL_AUDIT_PER_SECOND",
        default_value_t = 50,
        global = true
    )]
    pub refusal_audit_per_second: u32,
    /// Delivery attempts before an email is given up as failed.
    #[arg(
        long,
        env = "KEYWARD_MAIL_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true
    )]
    pub mail_max_attempts: u32,
    /// The longest one SMTP conversation may take, in seconds (1–240; the lease on an email
    /// is 300 s).
    #[arg(
        long,
        env = "KEYWARD_SMTP_TIMEOUT_SECS",
        default_value_t = 60,
        global = true
    )]
    pub smtp_timeout_secs: u64,
    /// Delivery attempts before a webhook delivery is given up as failed.
    #[arg(
        long,
        env = "KEYWARD_WEBHOOK_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true
    )]
    pub webhook_max_attempts: u32,
    /// How long a webhook receiver may take to answer, in seconds.
    #[arg(
        long,
        env = "KEYWARD_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout_secs: u64,
    /// Days that sent, failed and cancelled emails and webhook deliveries are kept (with their
    /// attempt logs) after they were queued; 0 keeps them for ever.
    #[arg(
        long,
        env = "KEYWARD_MESSAGE_RETENTION_DAYS",
        default_value_t = 90,
        global = true
    )]
    pub message_retention_days: u32,
    /// How often the background job wakes, in seconds.
    #[arg(
        long,
        env = "KEYWARD_JOB_INTERVAL_SECS",
        default_value_t = 60,
        global = true
    )]
    pub job_interval_secs: u64,
    /// Session idle timeout in minutes.
    #[arg(
        long,
        env = "KEYWARD_SESSION_IDLE_MINS",
        default_value_t = 30,
        global = true
    )]
    pub session_idle_mins: u32,
    /// Bearer token that `/metrics` requires on the main listener (unset: 404 there).
    #[arg(
        long,
        env = "KEYWARD_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// A separate listen address that serves only `/metrics`, without a token.
    #[arg(long, env = "KEYWARD_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,
    /// CIDR ranges of reverse proxies whose `Forwarded` / `X-Forwarded-For` give the client
    /// address, comma-separated (empty: the TCP peer).
    #[arg(
        long,
        env = "KEYWARD_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,
    /// Allow webhook endpoints on loopback, private and link-local addresses.
    #[arg(
        long,
        env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        global = true,
        action = clap::ArgAction::Set
    )]
    pub webhook_allow_private: bool,
    /// Days audit entries are kept; 0 keeps them for ever.
    #[arg(
        long,
        env = "KEYWARD_AUDIT_RETENTION_DAYS",
        default_value_t = 0,
        global = true
    )]
    pub audit_retention_days: u32,
    /// Days hourly usage counts of keys are kept; 0 keeps them for ever.
    #[arg(
        long,
        env = "KEYWARD_USAGE_RETENTION_DAYS",
        default_value_t = 90,
        global = true
    )]
    pub usage_retention_days: u32,
    /// JSON file of GitHub's secret scanning public keys (GitHub's format); unset: the
    /// secret scanning endpoint answers 404.
    #[arg(long, env = "KEYWARD_GITHUB_SCANNING_KEYS", global = true)]
    pub github_scanning_keys: Option<PathBuf>,
    /// Log filter in tracing `EnvFilter` syntax.
    #[arg(long, env = "KEYWARD_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// Settings after defaults that depend on each other are resolved and values are checked.
/// Secret settings are `SecretString`s (wiped when dropped, never shown); `Debug` redacts them
/// and the password in the database URL.
#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    /// May carry a password: `Debug` redacts it.
    pub database_url: String,
    /// Base64 master key from the environment, if given.
    pub master_key: Option<SecretString>,
    /// May carry SMTP credentials.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub tenant_id: Option<String>,
    pub expiry_notice_days: Vec<u32>,
    pub lockout_threshold: u32,
    pub client_failure_limit: u32,
    pub refusal_audit_per_second: u32,
    pub job_interval_secs: u64,
    pub mail_max_attempts: u32,
    /// The longest one SMTP conversation may take, in seconds.
    pub smtp_timeout_secs: u64,
    pub webhook_max_attempts: u32,
    pub webhook_timeout_secs: u64,
    pub message_retention_days: u32,
    pub session_idle_mins: u32,
    /// Bearer token `/metrics` requires on the main listener; `None`: 404 there.
    pub metrics_token: Option<SecretString>,
    /// A listener of its own for `/metrics`, without a token.
    pub metrics_bind: Option<SocketAddr>,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub webhook_allow_private: bool,
    /// Days audit entries are kept; 0 keeps them for ever.
    pub audit_retention_days: u32,
    /// Days hourly usage counts are kept; 0 keeps them for ever.
    pub usage_retention_days: u32,
    /// GitHub's secret scanning public keys file; `None`: that endpoint answers 404.
    pub github_scanning_keys: Option<PathBuf>,
    pub log: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field by name, so that a new setting cannot be added without deciding here
        // whether it is secret.
        let Settings {
            bind,
            public_url,
            data_dir,
            database_url,
            master_key,
            smtp_url,
            mail_from,
            tenant_id,
            expiry_notice_days,
            lockout_threshold,
            client_failure_limit,
            refusal_audit_per_second,
            job_interval_secs,
            mail_max_attempts,
            smtp_timeout_secs,
            webhook_max_attempts,
            webhook_timeout_secs,
            message_retention_days,
            session_idle_mins,
            metrics_token,
            metrics_bind,
            trusted_proxies,
            webhook_allow_private,
            audit_retention_days,
            usage_retention_days,
            github_scanning_keys,
            log,
        } = self;
        let redacted = |set: bool| if set { Some("[redacted]") } else { None };
        f.debug_struct("Settings")
            .field("bind", bind)
            .field("public_url", public_url)
            .field("data_dir", data_dir)
            .field("database_url", &redact_url(database_url))
            .field("master_key", &redacted(master_key.is_some()))
            .field("smtp_url", &redacted(smtp_url.is_some()))
            .field("mail_from", mail_from)
            .field("tenant_id", tenant_id)
            .field("expiry_notice_days", expiry_notice_days)
            .field("lockout_threshold", lockout_threshold)
            .field("client_failure_limit", client_failure_limit)
            .field("refusal_audit_per_second", refusal_audit_per_second)
            .field("job_interval_secs", job_interval_secs)
            .field("mail_max_attempts", mail_max_attempts)
            .field("smtp_timeout_secs", smtp_timeout_secs)
            .field("webhook_max_attempts", webhook_max_attempts)
            .field("webhook_timeout_secs", webhook_timeout_secs)
            .field("message_retention_days", message_retention_days)
            .field("session_idle_mins", session_idle_mins)
            .field("metrics_token", &redacted(metrics_token.is_some()))
            .field("metrics_bind", metrics_bind)
            .field("trusted_proxies", trusted_proxies)
            .field("webhook_allow_private", webhook_allow_private)
            .field("audit_retention_days", audit_retention_days)
            .field("usage_retention_days", usage_retention_days)
            .field("github_scanning_keys", github_scanning_keys)
            .field("log", log)
            .finish()
    }
}

/// A database URL without its secrets: the password, and query values whose name mentions a
/// password (`password=`, `sslpassword=`). One that does not parse is not shown at all.
fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "[unparsable, redacted]".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = k.to_ascii_lowercase().contains("pass");
                let v = if secret {
                    "redacted".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A configuration value that cannot be used, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn config_error(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

impl SettingsArgs {
    /// Resolves defaults and checks every value.
    pub fn resolve(self) -> Result<Settings, ConfigError> {
        let public_url = match self.public_url {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(config_error(
                        "KEYWARD_PUBLIC_URL",
                        "must start with http:// or https://",
                    ));
                }
                url
            }
            None => format!("http://{}", self.bind),
        };
        let database_url = match self.database_url {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    return Err(config_error(
                        "KEYWARD_DATABASE_URL",
                        "must start with sqlite:, postgres:// or postgresql://",
                    ));
                }
                url
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("keyward.db").display()
            ),
        };
        let expiry_notice_days = parse_notice_days(&self.expiry_notice_days)?;
        if self.job_interval_secs == 0 {
            return Err(config_error(
                "KEYWARD_JOB_INTERVAL_SECS",
                "must be at least 1",
            ));
        }
        if self.webhook_max_attempts == 0 {
            return Err(config_error(
                "KEYWARD_WEBHOOK_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if !(1..=120).contains(&self.webhook_timeout_secs) {
            return Err(config_error(
                "KEYWARD_WEBHOOK_TIMEOUT_SECS",
                "must be between 1 and 120",
            ));
        }
        if !(1..=240).contains(&self.smtp_timeout_secs) {
            return Err(config_error(
                "KEYWARD_SMTP_TIMEOUT_SECS",
                "must be between 1 and 240 (an email is leased to its sender for 300 seconds)",
            ));
        }
        if self.mail_max_attempts == 0 {
            return Err(config_error(
                "KEYWARD_MAIL_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if self.message_retention_days > 3650 {
            return Err(config_error(
                "KEYWARD_MESSAGE_RETENTION_DAYS",
                "must be at most 3650 (0 keeps messages for ever)",
            ));
        }
        if self.session_idle_mins == 0 {
            return Err(config_error(
                "KEYWARD_SESSION_IDLE_MINS",
                "must be at least 1",
            ));
        }
        let trusted_proxies = parse_proxies(&self.trusted_proxies)?;
        if self.audit_retention_days > 36_500 {
            return Err(config_error(
                "KEYWARD_AUDIT_RETENTION_DAYS",
                "must be at most 36500 (0 keeps audit entries for ever)",
            ));
        }
        if self.usage_retention_days > 36_500 {
            return Err(config_error(
                "KEYWARD_USAGE_RETENTION_DAYS",
                "must be at most 36500 (0 keeps usage counts for ever)",
            ));
        }
        let metrics_token = match self.metrics_token {
            Some(t) if t.trim().is_empty() => None,
            Some(t) if t.trim().len() < 16 || t.trim().len() > 256 => {
                return Err(config_error(
                    "KEYWARD_METRICS_TOKEN",
                    "must be 16 to 256 characters",
                ));
            }
            other => other.map(|t| SecretString::from(t.trim())),
        };
        if let Some(tenant) = &self.tenant_id {
            crate::domain::TenantId::parse(tenant)
                .map_err(|m| config_error("KEYWARD_TENANT_ID", m))?;
        }
        Ok(Settings {
            bind: self.bind,
            public_url,
            data_dir: self.data_dir,
            database_url,
            master_key: self.master_key.map(SecretString::from),
            smtp_url: self.smtp_url.map(SecretString::from),
            mail_from: self.mail_from,
            tenant_id: self.tenant_id,
            expiry_notice_days,
            lockout_threshold: self.lockout_threshold,
            client_failure_limit: self.client_failure_limit,
            refusal_audit_per_second: self.refusal_audit_per_second,
            job_interval_secs: self.job_interval_secs,
            mail_max_attempts: self.mail_max_attempts,
            smtp_timeout_secs: self.smtp_timeout_secs,
            webhook_max_attempts: self.webhook_max_attempts,
            webhook_timeout_secs: self.webhook_timeout_secs,
            message_retention_days: self.message_retention_days,
            session_idle_mins: self.session_idle_mins,
            metrics_token,
            metrics_bind: self.metrics_bind,
            trusted_proxies,
            webhook_allow_private: self.webhook_allow_private,
            audit_retention_days: self.audit_retention_days,
            usage_retention_days: self.usage_retention_days,
            github_scanning_keys: self
                .github_scanning_keys
                .filter(|p| !p.as_os_str().is_empty()),
            log: self.log,
        })
    }
}

/// Parses a comma-separated list of CIDR ranges (a bare address is its own /32 or /128).
fn parse_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    config_error(
                        "KEYWARD_TRUSTED_PROXIES",
                        format!("`{part}` is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

/// Parses `14,7,2` into distinct stages, largest first.
fn parse_notice_days(raw: &str) -> Result<Vec<u32>, ConfigError> {
    let mut days = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        let n: u32 = part.parse().map_err(|_| {
            config_error(
                "KEYWARD_EXPIRY_NOTICE_DAYS",
                format!("`{part}` is not a whole number of days"),
            )
        })?;
        if n == 0 || n > 365 {
            return Err(config_error(
                "KEYWARD_EXPIRY_NOTICE_DAYS",
                "each stage must be between 1 and 365 days",
            ));
        }
        if !days.contains(&n) {
            days.push(n);
        }
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    Ok(days)
}

impl Settings {
    /// Whether cookies must carry the `Secure` flag.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Whether the database is the embedded SQLite default or another SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Settings for tests and tools: every default, with the given data directory and database.
    pub fn for_data_dir(
        data_dir: PathBuf,
        database_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        SettingsArgs {
            bind: "127.0.0.1:0".parse().expect("a valid literal address"),
            public_url: None,
            data_dir,
            database_url,
            master_key: None,
            smtp_url: None,
            mail_from: "keyward@localhost".into(),
            tenant_id: None,
            expiry_notice_days: "2".into(),
            lockout_threshold: 5,
            client_failure_limit: 30,
            refusal_audit_per_second: 50,
            job_interval_secs: 60,
            mail_max_attempts: 8,
            smtp_timeout_secs: 60,
            webhook_max_attempts: 8,
            webhook_timeout_secs: 10,
            message_retention_days: 90,
            session_idle_mins: 30,
            metrics_token: None,
            metrics_bind: None,
            trusted_proxies: String::new(),
            webhook_allow_private: false,
            audit_retention_days: 0,
            usage_retention_days: 90,
            github_scanning_keys: None,
            log: "info".into(),
        }
        .resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_days_are_distinct_and_largest_first() {
        assert_eq!(parse_notice_days("2,14, 7,2").unwrap(), vec![14, 7, 2]);
        assert!(parse_notice_days("2,x").is_err());
        assert!(parse_notice_days("0").is_err());
    }

    #[test]
    fn trusted_proxies_are_ranges() {
        assert_eq!(
            parse_proxies("10.0.0.1/8, 192.0.2.7 ,::1").unwrap(),
            vec![
                "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "192.0.2.7/32".parse().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert!(parse_proxies("").unwrap().is_empty());
        assert!(parse_proxies("proxy.internal").is_err());
    }

    #[test]
    fn debug_shows_no_secret_setting() {
        let mut args = Settings::for_data_dir("/tmp/x".into(), None).unwrap();
        let secrets = [
            "bWFzdGVyLWtleS1ieXRlcy10aGF0LWFyZS1zZWNyZXQ=",
            "smtp-pass-9f8e",
            "metrics-token-abcdef0123456789",
            "db-pass-1a2b",
            "ssl-pass-3c4d",
        ];
        args.master_key = Some(secrets[0].into());
        args.smtp_url = Some(format!("smtps://mailer:{}@mail.example.com:465", secrets[1]).into());
        args.metrics_token = Some(secrets[2].into());
        args.database_url = format!(
            "postgres://keyward:{}@db.internal:5432/keyward?sslmode=require&sslpassword={}",
            secrets[3], secrets[4]
        );
        let shown = format!("{args:?} {args:#?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("db.internal") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert!(
            shown.contains("master_key: Some(\"[redacted]\")"),
            "{shown}"
        );
        assert_eq!(redact_url("not a url"), "[unparsable, redacted]");
        let sqlite = "sqlite:///tmp/x/keyward.db?mode=rwc";
        assert_eq!(redact_url(sqlite), sqlite);
    }

    #[test]
    fn public_url_defaults_to_bind_and_sets_secure_cookies() {
        let s = Settings::for_data_dir("/tmp/x".into(), None).unwrap();
        assert_eq!(s.public_url, "http://127.0.0.1:0");
        assert!(!s.secure_cookies());
        assert!(s.database_url.starts_with("sqlite:///tmp/x/keyward.db"));
    }
}
