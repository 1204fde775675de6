//! Calling the REST API as a program would: a key, its authorization headers, and one request.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::TestApp;

/// A key's ID and the secret shown once when it was made.
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Key {
    /// `Authorization: Bearer <id>::<secret>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}::{}", self.id, self.secret)
    }

    /// `Authorization: Basic` with the key's secret.
    pub fn basic(&self) -> String {
        self.with_secret(&self.secret)
    }

    /// `Authorization: Basic` with the key's ID and another secret (an old or a wrong one).
    pub fn with_secret(&self, secret: &str) -> String {
        let raw = format!("{}:{}", self.id, secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A tenant key made by the signed-in administrator in the console, with these roles.
pub async fn tenant_key(app: &TestApp, name: &str, key_type: &str, roles: &[&str]) -> Key {
    let mut fields = vec![("name", name), ("key_type", key_type), ("validity", "90")];
    for r in roles {
        fields.push(("roles", r));
    }
    let shown = app.add_key("/user-access/keys", &fields).await;
    Key {
        id: shown.id,
        secret: shown.secret,
    }
}

/// One request from a program (no cookies): its status, its JSON body (`Null` when empty, a
/// string when not JSON) and its headers.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .header("user-agent", "deploy-bot/1.0");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value, headers)
}

/// The status `GET /api/v1/apikeys/current` answers to these credentials.
pub async fn current_status(app: &TestApp, auth: String) -> StatusCode {
    call(
        app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&auth),
        None,
    )
    .await
    .0
}

/// The number in a row that each `key.auth_refused` entry names ("wrong secret (n in a
/// row)"), smallest first.
pub async fn refusal_counts(app: &TestApp) -> Vec<i64> {
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'key.auth_refused' ORDER BY details",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    let mut counts: Vec<i64> = details
        .iter()
        .map(|d| {
            d.trim_start_matches("wrong secret (")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    counts.sort();
    counts
}
