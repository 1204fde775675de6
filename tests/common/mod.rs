//! The test harness shared by the API and browser suites: a real server on a random port over a
//! fresh database (SQLite file, or a new PostgreSQL database when `KEYWARD_TEST_DATABASE_URL`
//! names a server), an injected clock, and a cookie-keeping HTTP client.
#![allow(dead_code)]

pub mod faults;
pub mod process;
pub mod receiver;
pub mod rest;
pub mod smtp;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::web::Data;
use chrono::{TimeZone, Utc};
use keyward::clock::ManualClock;
use keyward::config::Settings;
use keyward::startup::Application;
use keyward::state::AppState;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use sqlx::{Connection, Executor};

/// Every log line the servers of this test process wrote.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let for_writer = buf.clone();
        keyward::telemetry::init(
            "debug,sqlx=warn,actix_server=warn,h2=warn,hyper=warn,html5ever=off,selectors=off,scraper=off,markup5ever=off",
            false,
            move || Capture(for_writer.clone()),
        );
        buf
    });
}

/// Everything logged so far by servers in this process.
pub fn captured_logs() -> String {
    let buf = LOGS
        .get()
        .expect("logs are captured once an app is spawned");
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// Which database the suite runs on.
pub fn database_kind() -> &'static str {
    if std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A running keyward on a fresh database.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: Data<AppState>,
    /// The background job, run by hand in tests (the server's loop runs it too).
    pub jobs: keyward::jobs::Jobs,
    pub setup_url: Option<String>,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
}

/// A fresh database URL: a SQLite file in `dir`, or a new database on the test PostgreSQL.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("KEYWARD_TEST_DATABASE_URL") {
        Ok(base) => {
            sqlx::any::install_default_drivers();
            let name = random_id("kw");
            let mut conn = sqlx::AnyConnection::connect(&base)
                .await
                .expect("test PostgreSQL reachable");
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create test database");
            let (prefix, _) = base
                .rsplit_once('/')
                .expect("URL ends with a database name");
            format!("{prefix}/{name}")
        }
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("keyward.db").display()),
    }
}

/// A fresh random ID: `prefix`, an underscore and 20 lowercase hex digits (a valid SQL name
/// when `prefix` is one).
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::fill(&mut bytes);
    let tail: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{tail}")
}

/// The moment every test starts at: 2026-11-23 10:00 UTC.
pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

/// Starts keyward on a random port over a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts keyward with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(dir.path()).await;
    let mut settings = Settings::for_data_dir(dir.path().to_path_buf(), Some(database_url.clone()))
        .expect("settings");
    adjust(&mut settings);
    let clock = Arc::new(ManualClock::new(start_time()));
    start(settings, clock, dir, database_url)
        .await
        .expect("app builds")
}

/// Builds and spawns the server on `settings`.
async fn start(
    settings: Settings,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    database_url: String,
) -> anyhow::Result<TestApp> {
    let app = Application::build(settings, clock.clone()).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let jobs = app.jobs();
    let setup_url = app.setup_url().map(str::to_string);
    tokio::spawn(app.into_server());
    Ok(TestApp {
        address,
        client: client(),
        clock,
        state,
        jobs,
        setup_url,
        database_url,
        data_dir: dir,
    })
}

/// Starts another keyward on an existing database (a restart, or a second instance) with its
/// own data directory, the master key given, and the same clock.
pub async fn spawn_app_on(
    database_url: &str,
    master_key: &str,
    clock: Arc<ManualClock>,
) -> anyhow::Result<TestApp> {
    spawn_app_on_with(database_url, master_key, clock, |_| {}).await
}

/// `spawn_app_on` with settings adjusted by `adjust`.
pub async fn spawn_app_on_with(
    database_url: &str,
    master_key: &str,
    clock: Arc<ManualClock>,
    adjust: impl FnOnce(&mut Settings),
) -> anyhow::Result<TestApp> {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings =
        Settings::for_data_dir(dir.path().to_path_buf(), Some(database_url.to_string()))
            .expect("settings");
    settings.master_key = Some(master_key.into());
    adjust(&mut settings);
    start(settings, clock, dir, database_url.to_string()).await
}

/// A client that keeps cookies and does not follow redirects, so tests see each 303.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A parsed page.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub html: Html,
    pub body: String,
}

impl Page {
    /// Texts of every element matching a CSS selector, whitespace-collapsed.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let sel = Selector::parse(selector).expect("valid selector");
        self.html
            .select(&sel)
            .map(|e| {
                e.text()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Text of the first match, or an empty string.
    pub fn text(&self, selector: &str) -> String {
        self.texts(selector).into_iter().next().unwrap_or_default()
    }

    /// An attribute of the first match.
    pub fn attr(&self, selector: &str, name: &str) -> Option<String> {
        let sel = Selector::parse(selector).expect("valid selector");
        self.html
            .select(&sel)
            .next()
            .and_then(|e| e.value().attr(name))
            .map(str::to_string)
    }

    /// The Location header of a redirect.
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl TestApp {
    /// An absolute URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET a path and parse the page.
    pub async fn get(&self, path: &str) -> Page {
        into_page(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// POST a form as is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Page {
        into_page(
            self.client
                .post(self.url(path))
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POST a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let token = self.csrf_token().await;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &token));
        self.post_raw(path, &fields).await
    }

    /// The session's CSRF token, read from a form on a page as a browser would.
    pub async fn csrf_token(&self) -> String {
        let mut page = self.get("/login").await;
        if page.status == StatusCode::SEE_OTHER {
            page = self.get("/notifications").await;
        }
        page.attr("input[name=csrf_token]", "value")
            .expect("a CSRF token on the page")
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.post(
            "/login",
            &[("email", email), ("password", password), ("next", "")],
        )
        .await
    }

    /// Creates an administrator directly through the service, as `keyward admin create` does.
    pub async fn create_admin(&self, email: &str, name: &str, password: &str) -> String {
        keyward::service::accounts::create_admin(
            &self.state.pool,
            &self.state.hasher,
            self.clock.as_ref(),
            keyward::service::accounts::NewAdmin {
                name,
                email,
                password,
                confirm: None,
            },
            None,
            "",
        )
        .await
        .unwrap_or_else(|_| panic!("admin {email} created"))
    }

    /// Creates a user who is in no group.
    pub async fn create_user(&self, email: &str, name: &str, password: &str) -> String {
        let hash = self.state.hasher.hash(password).await.expect("hash");
        let id = random_id("usr");
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(email)
        .bind(name)
        .bind(&hash)
        .bind(self.clock.unix_now())
        .execute(&self.state.pool)
        .await
        .expect("user inserted");
        id
    }

    /// Puts user `user_id` into group `group_id`.
    pub async fn add_to_group(&self, group_id: &str, user_id: &str) {
        sqlx::query("INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3)")
            .bind(group_id)
            .bind(user_id)
            .bind(self.clock.unix_now())
            .execute(&self.state.pool)
            .await
            .expect("member added");
    }

    /// Writes a system key (named `{tenant}@{suffix}`, as keyward's own integrations are) with
    /// ID `id` and a secret nothing matches.
    pub async fn insert_system_key(&self, id: &str, suffix: &str) {
        let name = format!("{}@{suffix}", self.state.tenant_id);
        sqlx::query(
            "INSERT INTO access_keys (id, name, key_type, owner_user_id, secret_hash, expires_at, \
             created_at, created_by, created_by_label, modified_at, modified_by, modified_by_label, \
             search_name, expiry_set_at) \
             VALUES ($1, $2, 'access', NULL, '00', NULL, 0, NULL, 'keyward', 0, NULL, 'keyward', $3, 0)",
        )
        .bind(id)
        .bind(&name)
        .bind(name.to_lowercase())
        .execute(&self.state.pool)
        .await
        .expect("system key inserted");
    }

    /// A signed-in administrator (ada@example.com) on this client.
    pub async fn signed_in_admin(&self) -> String {
        let id = self
            .create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
            .await;
        let page = self.sign_in(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "admin signs in");
        id
    }

    /// A signed-in user without groups (grace@example.com) on this client.
    pub async fn signed_in_user(&self) -> String {
        let id = self.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
        let page = self.sign_in(USER_EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "user signs in");
        id
    }

    /// Signs the test administrator in again (after the clock moved past the session timeouts).
    pub async fn signed_in_again(&self) {
        let page = self.sign_in(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "signs in again");
    }

    /// A second client with its own cookies against the same server.
    pub fn other_client(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            client: client(),
            clock: self.clock.clone(),
            state: self.state.clone(),
            jobs: self.jobs.clone(),
            setup_url: self.setup_url.clone(),
            database_url: self.database_url.clone(),
            data_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A scalar from the database, for checking what was (not) written.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.state.pool)
            .await
            .expect("count query")
    }
}

/// Unix seconds of the manual clock.
pub trait UnixNow {
    fn unix_now(&self) -> i64;
}

impl UnixNow for ManualClock {
    fn unix_now(&self) -> i64 {
        use keyward::clock::Clock;
        self.unix()
    }
}

/// Password used by test accounts.
pub const PASSWORD: &str = "correct horse battery staple";
/// Email of the test administrator.
pub const ADMIN_EMAIL: &str = "ada@example.com";
/// Email of the test user.
pub const USER_EMAIL: &str = "grace@example.com";

async fn into_page(res: reqwest::Response) -> Page {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.expect("body");
    Page {
        status,
        headers,
        html: Html::parse_document(&body),
        body,
    }
}

/// A key's ID and secret as read off the one-time page.
pub struct ShownKey {
    pub id: String,
    pub secret: String,
    pub tenant_id: String,
    pub copy_all: String,
}

impl TestApp {
    /// Submits an Add key form under `base` and reads the one-time page.
    pub async fn add_key(&self, base: &str, fields: &[(&str, &str)]) -> ShownKey {
        let page = self.post(base, fields).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "key created: {}",
            page.text(".field-error, [role=alert]")
        );
        ShownKey {
            id: page.attr("#access-key", "value").expect("access key shown"),
            secret: page.attr("#secret-key", "value").expect("secret shown"),
            tenant_id: page.attr("#tenant-id", "value").expect("tenant ID shown"),
            copy_all: page
                .attr("#key-details", "value")
                .expect("key details in one line"),
        }
    }

    /// What keyward's key check says of an ID and secret presented from 127.0.0.1: the ID of
    /// the key accepted, or why it was refused.
    pub async fn authenticate(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<String, keyward::service::key_auth::Refusal> {
        self.check_key(id, secret)
            .await
            .map(|key| key.id().to_string())
    }

    /// The key check's whole answer for an ID and secret presented from 127.0.0.1: the key
    /// with its permissions, or why it was refused.
    pub async fn check_key(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<keyward::service::key_auth::AuthenticatedKey, keyward::service::key_auth::Refusal>
    {
        use keyward::service::key_auth::{Attempt, AuthError};
        let ring = self.state.keyring();
        let attempt = Attempt {
            presented: keyward::auth::key_auth::from_pair(&format!("{id}::{secret}")),
            client_ip: "127.0.0.1",
            user_agent: "keyward-tests",
            limit_client: true,
            needs_caller: None,
        };
        match self.state.key_checker.check(&ring, attempt).await {
            Ok(key) => Ok(key),
            Err(AuthError::Refused(r)) => Err(r),
            Err(other) => panic!("authentication failed unexpectedly: {other:?}"),
        }
    }
}

/// Sends what the outbox holds, then returns the newest `.eml` file and the invitation link in it.
pub async fn last_invitation(app: &TestApp) -> (String, String) {
    let eml = last_email(app).await;
    let link = link_in(&eml, "/invite?token=").expect("an invitation link");
    (eml, link)
}

/// Sends what the outbox holds (to files, without SMTP), then returns the newest `.eml` file.
pub async fn last_email(app: &TestApp) -> String {
    app.jobs.send_due().await.expect("the outbox is sent");
    let dir = app.data_dir.path().join("outbox");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    std::fs::read_to_string(files.last().expect("an email was written")).unwrap()
}

/// The link starting with `path` (say `/invite?token=`) in an email, quoted-printable undone:
/// the path and its token.
pub fn link_in(email: &str, path: &str) -> Option<String> {
    let unfolded = email
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = unfolded.find(path)?;
    let token: String = unfolded[start + path.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Some(format!("{path}{token}"))
}
