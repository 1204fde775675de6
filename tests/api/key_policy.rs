//! The key policy (issue 17, SPEC §9): the page that sets it (audited, a webhook event, who may
//! open it), what the Add key form, key details, regenerate and the REST API refuse under it,
//! keys made before a stricter policy (out of policy: listed, explained, brought into policy
//! after a summary), and the inactivity rule (warned once, deactivated once, re-armed by use).

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::rest::{call, tenant_key};
use crate::common::{PASSWORD, TestApp, UnixNow, spawn_app};

const BASE: &str = "/user-access/keys";
const PAGE: &str = "/configuration/key-policy";
const DAY: i64 = 86_400;

/// The form as the page posts it, with `changes` over the defaults.
fn policy_form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("max_days_access", ""),
        ("max_days_api", ""),
        ("default_validity", "90"),
        ("inactive_days", ""),
        ("inactive_warn_days", "7"),
        ("replaced_secret", "record"),
        ("exposure", "lock"),
        ("second_factor", "none"),
    ];
    for (k, v) in changes {
        form.retain(|(name, _)| name != k);
        form.push((k, v));
    }
    form
}

async fn set_policy(app: &TestApp, changes: &[(&str, &str)]) {
    let page = app.post(PAGE, &policy_form(changes)).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "policy saved: {}",
        page.text(".field-error, [role=alert]")
    );
}

async fn audit_details(app: &TestApp, action: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT details FROM audit_log WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

async fn expiry_of(app: &TestApp, id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT expires_at FROM access_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

async fn add_form(app: &TestApp, fields: &[(&str, &str)]) -> crate::common::Page {
    app.post(BASE, fields).await
}

/// A key of `key_type` made through the Add key form with `validity`.
async fn key_with(app: &TestApp, name: &str, key_type: &str, validity: &str) -> String {
    app.add_key(
        BASE,
        &[
            ("name", name),
            ("key_type", key_type),
            ("validity", validity),
            ("custom_date", ""),
        ],
    )
    .await
    .id
}

/// The last second (UTC) of the day `days` from now.
fn end_of_day_in(app: &TestApp, days: i64) -> i64 {
    let t = app.clock.unix_now() + days * DAY;
    t - t.rem_euclid(DAY) + DAY - 1
}

#[tokio::test]
async fn the_policy_page_saves_each_rule_audits_it_and_refuses_bad_values() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("h1"), "Key policy");
    assert_eq!(page.attr("#max_days_api", "value").as_deref(), Some(""));

    // Bad values: the form again with a message next to each field, nothing written.
    let page = app
        .post(
            PAGE,
            &policy_form(&[
                ("max_days_api", "ninety"),
                ("inactive_days", "5"),
                ("inactive_warn_days", "7"),
                ("exposure", "explode"),
            ]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#max_days_api-error")
            .contains("whole number of days")
    );
    assert!(
        page.text("#inactive_warn_days-error")
            .contains("before the key is deactivated")
    );
    assert_eq!(
        page.attr("#max_days_api", "value").as_deref(),
        Some("ninety"),
        "what was typed is kept"
    );
    assert!(audit_details(&app, "key_policy.changed").await.is_empty());

    set_policy(
        &app,
        &[
            ("max_days_api", "60"),
            ("expiry_required", "1"),
            ("inactive_days", "45"),
            ("exposure", "deactivate"),
        ],
    )
    .await;
    let page = app.get(&format!("{PAGE}?done=saved")).await;
    assert_eq!(page.attr("#max_days_api", "value").as_deref(), Some("60"));
    assert_eq!(page.attr("#inactive_days", "value").as_deref(), Some("45"));
    assert!(
        page.attr("input[name=expiry_required]", "checked")
            .is_some(),
        "the box stays ticked"
    );
    assert!(
        page.attr("input[name=exposure][value=deactivate]", "checked")
            .is_some()
    );
    assert_eq!(page.text("[role=status]"), "The key policy was saved.");
    let changed = audit_details(&app, "key_policy.changed").await;
    assert_eq!(changed.len(), 4, "{changed:?}");
    assert!(changed.contains(&"maximum lifetime of API keys (days): none → 60".to_string()));
    assert!(changed.contains(&"exposed secret reported: lock → deactivate".to_string()));

    // Saving the same policy again changes and records nothing.
    let same = [
        ("max_days_api", "60"),
        ("expiry_required", "1"),
        ("inactive_days", "45"),
        ("exposure", "deactivate"),
    ];
    let again = app.post(PAGE, &policy_form(&same)).await;
    assert_eq!(again.location(), format!("{PAGE}?done=unchanged"));
    assert_eq!(audit_details(&app, "key_policy.changed").await.len(), 4);

    // The second-factor rule is saved from the same form (and then covers the administrator,
    // who has none yet).
    let mut with_factor = same.to_vec();
    with_factor.push(("second_factor", "writers"));
    set_policy(&app, &with_factor).await;
    assert_eq!(
        audit_details(&app, "settings.second_factor_policy").await,
        vec!["writers".to_string()]
    );
    assert_eq!(audit_details(&app, "key_policy.changed").await.len(), 4);
}

#[tokio::test]
async fn only_holders_of_config_write_open_or_change_the_policy() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let user = app.other_client();
    user.create_user("grace@example.com", "Grace Hopper", PASSWORD)
        .await;
    assert_eq!(
        user.sign_in("grace@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(user.get(PAGE).await.status, StatusCode::FORBIDDEN);
    let posted = user
        .post(PAGE, &policy_form(&[("max_days_api", "1")]))
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(audit_details(&app, "key_policy.changed").await.is_empty());
    // Nor may they bring keys into policy.
    assert_eq!(
        user.get("/user-access/keys/conform?all=1").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_add_key_form_offers_only_what_the_policy_allows_and_refuses_the_rest() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    set_policy(
        &app,
        &[
            ("max_days_api", "60"),
            ("max_days_access", "45"),
            ("expiry_required", "1"),
        ],
    )
    .await;
    let form = app.get(&format!("{BASE}/new")).await;
    let offered: Vec<String> = form
        .html
        .select(&scraper::Selector::parse("input[name=validity]").unwrap())
        .filter_map(|e| e.value().attr("value").map(str::to_string))
        .collect();
    assert_eq!(
        offered,
        vec!["30", "60", "custom"],
        "nothing beyond 60 days, no Never"
    );
    assert!(
        form.text("#validity-hint")
            .contains("API keys at most 60 days")
    );

    for (key_type, validity, date) in [
        ("api", "90", ""),
        ("api", "never", ""),
        ("access", "60", ""),
        ("api", "custom", "2099-01-01"),
    ] {
        let page = add_form(
            &app,
            &[
                ("name", "too long"),
                ("key_type", key_type),
                ("validity", validity),
                ("custom_date", date),
            ],
        )
        .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key_type} {validity} {date}"
        );
        assert!(
            page.text("#validity-error")
                .contains("The key policy allows"),
            "{}",
            page.text("#validity-error")
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 0);

    // The last day the limit allows is accepted, to its end.
    let last_day = chrono::DateTime::from_timestamp(end_of_day_in(&app, 60), 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let id = app
        .add_key(
            BASE,
            &[
                ("name", "at the limit"),
                ("key_type", "api"),
                ("validity", "custom"),
                ("custom_date", &last_day),
            ],
        )
        .await
        .id;
    assert_eq!(expiry_of(&app, &id).await, Some(end_of_day_in(&app, 60)));
}

#[tokio::test]
async fn the_rest_api_refuses_beyond_the_limit_and_gives_keys_without_an_expiry_the_limit() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let writer = tenant_key(&app, "provisioner", "access", &["role_key_admin"]).await;
    set_policy(&app, &[("max_days_api", "30"), ("default_validity", "90")]).await;

    let far = (chrono::Utc::now() + Duration::days(400)).to_rfc3339();
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&writer.bearer()),
        Some(json!({"name": "ci", "type": "api", "expires_at": far})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "expires_at", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 30 days"),
        "{body}"
    );
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&writer.bearer()),
        Some(json!({"name": "ci", "type": "api", "expires_at": null})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "never: {body}");

    // No expiry named: the policy's first choice, shortened to the limit.
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&writer.bearer()),
        Some(json!({"name": "ci", "type": "api"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        expiry_of(&app, &id).await,
        Some(app.clock.unix_now() + 30 * DAY)
    );
    // An access key is not limited: it gets the default validity.
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&writer.bearer()),
        Some(json!({"name": "ops", "type": "access"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ops = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        expiry_of(&app, &ops).await,
        Some(app.clock.unix_now() + 90 * DAY)
    );

    // Extending an API key past the limit is refused; shortening is fine.
    let (status, body, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{id}"),
        Some(&writer.bearer()),
        Some(json!({"expires_at": far})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "expires_at");
    let soon =
        (chrono::DateTime::from_timestamp(app.clock.unix_now() + 5 * DAY, 0).unwrap()).to_rfc3339();
    let (status, body, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{id}"),
        Some(&writer.bearer()),
        Some(json!({"expires_at": soon})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn keys_made_before_a_stricter_policy_are_marked_explained_and_brought_into_policy() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let forever = key_with(&app, "legacy sync", "access", "never").await;
    let year = key_with(&app, "yearly report", "access", "365").await;
    let month = key_with(&app, "monthly job", "access", "30").await;
    let month_expiry = expiry_of(&app, &month).await;
    let api = key_with(&app, "partner feed", "api", "never").await;
    set_policy(&app, &[("max_days_access", "90")]).await;

    // The policy page counts them; the list filters them and marks them.
    let page = app.get(PAGE).await;
    assert!(
        page.text("#out-of-policy-summary")
            .starts_with("2 keys are out of this policy"),
        "{}",
        page.text("#out-of-policy-summary")
    );
    let list = app.get(&format!("{BASE}?status=out_of_policy")).await;
    let mut names = list.texts(".keys-table tbody td.strong a");
    names.sort();
    assert_eq!(names, vec!["legacy sync", "yearly report"]);
    assert_eq!(
        list.texts("input[name=ids][form=conform-form]").len(),
        2,
        "a checkbox per key"
    );
    assert!(list.attr("#conform-form", "action").is_some());
    let all = app.get(BASE).await;
    assert_eq!(
        all.texts(".badge-warning").len(),
        2,
        "marked in the full list"
    );
    // The same filter in the REST API.
    let reader = tenant_key(&app, "auditor", "access", &["role_key_admin"]).await;
    let (status, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys?status=out_of_policy",
        Some(&reader.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2, "{body}");
    // And the inventory export: the same keys, each saying why.
    let (status, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/export?format=json&status=out_of_policy",
        Some(&reader.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2, "{body}");
    for row in rows {
        assert_eq!(row["policy_compliance"], "out_of_policy", "{row}");
        assert!(
            row["policy_findings"][0]
                .as_str()
                .unwrap()
                .contains("90 days"),
            "{row}"
        );
    }

    // Key details says why; a new secret is refused until it is in policy.
    let details = app.get(&format!("{BASE}/{forever}")).await;
    assert!(details.text("#out-of-policy").contains("never expires"));
    assert!(
        app.get(&format!("{BASE}/{month}"))
            .await
            .text("#out-of-policy")
            .is_empty()
    );
    let refused = app
        .post(&format!("{BASE}/{forever}/regenerate"), &[("grace", "")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("out of policy"), "{}", refused.body);

    // The summary first: what will change, nothing changed yet.
    let summary = app
        .get(&format!(
            "/user-access/keys/conform?ids={forever}&ids={year}&ids={month}"
        ))
        .await;
    assert_eq!(summary.status, StatusCode::OK);
    assert_eq!(summary.texts("#conform-table tbody tr").len(), 2);
    assert!(
        summary.body.contains("monthly job"),
        "named as already in policy"
    );
    assert_eq!(expiry_of(&app, &forever).await, None);
    let done = app
        .post(
            "/user-access/keys/conform",
            &[("ids", forever.as_str()), ("ids", year.as_str())],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = app.get(&done.location()).await;
    assert_eq!(back.text("[role=status]"), "Brought 2 keys into policy.");
    let latest = end_of_day_in(&app, 90);
    assert_eq!(expiry_of(&app, &forever).await, Some(latest));
    assert_eq!(expiry_of(&app, &year).await, Some(latest));
    assert_eq!(
        expiry_of(&app, &month).await,
        month_expiry,
        "the key in policy is left alone"
    );
    assert_eq!(expiry_of(&app, &api).await, None, "API keys have no limit");
    assert_eq!(audit_details(&app, "key.expiry_changed").await.len(), 2);
    let list = app.get(&format!("{BASE}?status=out_of_policy")).await;
    assert_eq!(list.text(".empty-state h3"), "No keys are out of policy");
    // In policy now: a new secret is given.
    let page = app
        .post(&format!("{BASE}/{forever}/regenerate"), &[("grace", "")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
}

/// The bell notices of `kind`, as (key ID in the link, title).
async fn bell(app: &TestApp, kind: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT title FROM notifications WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

async fn is_active(app: &TestApp, id: &str) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT active FROM access_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn unused_keys_are_warned_once_then_deactivated_and_a_use_rearms_the_rule() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let idle = key_with(&app, "forgotten export", "access", "365").await;
    let busy_key = app
        .add_key(
            BASE,
            &[
                ("name", "nightly backup"),
                ("key_type", "access"),
                ("validity", "365"),
                ("custom_date", ""),
            ],
        )
        .await;
    let busy = busy_key.id.clone();
    set_policy(
        &app,
        &[("inactive_days", "30"), ("inactive_warn_days", "7")],
    )
    .await;

    // 22 days unused: nothing yet.
    app.clock.advance(Duration::days(22));
    let swept = app.jobs.sweep_inactive().await.unwrap();
    assert_eq!((swept.warned, swept.deactivated), (0, 0));

    // 24 days: both warned, once, even when two runners scan at once.
    app.clock.advance(Duration::days(2));
    let (a, b) = tokio::join!(app.jobs.sweep_inactive(), app.jobs.sweep_inactive());
    assert_eq!(a.unwrap().warned + b.unwrap().warned, 2);
    app.signed_in_again().await;
    assert_eq!(app.jobs.sweep_inactive().await.unwrap().warned, 0);
    let warned = bell(&app, "key.inactive_warning").await;
    assert_eq!(
        warned.len(),
        2,
        "one notice per key for the one administrator"
    );
    assert!(
        warned
            .iter()
            .any(|t| t.starts_with("Access key “forgotten export” will be deactivated on"))
    );
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.emails_sent, 2, "and an email each");

    // The busy key is used on day 25: the rule starts again for it.
    app.clock.advance(Duration::days(1));
    app.authenticate(&busy, &busy_key.secret).await.unwrap();
    app.state.key_checker.flush_addresses().await;

    // Day 30: the idle key is deactivated, not deleted; the busy one stays.
    app.clock.advance(Duration::days(6));
    app.signed_in_again().await;
    let swept = app.jobs.sweep_inactive().await.unwrap();
    assert_eq!((swept.warned, swept.deactivated), (0, 1));
    assert!(!is_active(&app, &idle).await);
    assert!(is_active(&app, &busy).await);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys").await,
        2,
        "nothing deleted"
    );
    let audit = audit_details(&app, "key.deactivated_inactive").await;
    assert_eq!(audit.len(), 1);
    assert!(audit[0].starts_with("deactivated by the key policy: unused since"));
    assert_eq!(bell(&app, "key.deactivated_inactive").await.len(), 1);
    assert_eq!(
        app.jobs.sweep_inactive().await.unwrap().deactivated,
        0,
        "once"
    );
    let details = app.get(&format!("{BASE}/{idle}")).await;
    assert!(
        details
            .body
            .contains("deactivated by the key policy, after going unused")
    );

    // Reactivated by an administrator: a change counts as wanted, so nothing happens at once.
    let page = app.post(&format!("{BASE}/{idle}/activate"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(is_active(&app, &idle).await);
    let swept = app.jobs.sweep_inactive().await.unwrap();
    assert_eq!((swept.warned, swept.deactivated), (0, 0));

    // The busy key, unused again since day 25, is warned again at day 48.
    app.clock.advance(Duration::days(18));
    let swept = app.jobs.sweep_inactive().await.unwrap();
    assert_eq!(swept.warned, 1, "re-armed by the use");
    assert_eq!(bell(&app, "key.inactive_warning").await.len(), 3);
}

#[tokio::test]
async fn a_changed_policy_is_sent_to_subscribed_endpoints_with_the_whole_policy() {
    use crate::common::receiver::Receiver;
    let receiver = Receiver::start(vec![]).await;
    let app = crate::webhooks::spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (signing, _) = crate::secret_keys::create_signing_key(&app, "Receiver").await;
    crate::webhooks::add_endpoint(&app, &receiver.url(), &["key_policy.changed"], &signing).await;
    set_policy(&app, &[("max_days_api", "30"), ("replaced_secret", "lock")]).await;
    app.jobs.run_once().await.unwrap();
    let got = receiver.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "key_policy.changed");
    assert_eq!(body["data"]["policy"]["max_days_api"], 30);
    assert_eq!(body["data"]["policy"]["replaced_secret"], "lock");
    assert_eq!(
        body["data"]["policy"]["max_days_access"],
        serde_json::Value::Null
    );
    let mut changed: Vec<String> = body["data"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        vec!["key_policy.max_days.api", "key_policy.replaced_secret"]
    );
}
