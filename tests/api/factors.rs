//! Second factors (issue 16): the authenticator app (enrolment, codes accepted once within one
//! step either side), recovery codes, the second step of sign-in with its throttle and expiry,
//! the tenant's policy, and master-key rotation. Codes are computed here from the secret the
//! enrolment page shows, with the injected clock.

use chrono::Duration;
use keyward::auth::totp::TotpSecret;
use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, PASSWORD, Page, TestApp, USER_EMAIL, UnixNow, spawn_app};

/// POSTs a form with the CSRF token of the page at `from` (a pending or enrolling session has
/// no other page to read it from).
pub(crate) async fn post_from(
    app: &TestApp,
    from: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Page {
    let page = app.get(from).await;
    let token = page
        .attr("input[name=csrf_token]", "value")
        .unwrap_or_else(|| panic!("a CSRF token on {from}: {}", page.body));
    let mut fields = form.to_vec();
    fields.push(("csrf_token", &token));
    app.post_raw(path, &fields).await
}

/// Sets up an authenticator app for the signed-in person: the secret read off the page, the
/// first code from it. Returns the secret and the recovery codes shown.
pub(crate) async fn enrol(app: &TestApp) -> (TotpSecret, Vec<String>) {
    let started = post_from(app, "/account/security", "/account/security/app", &[]).await;
    assert_eq!(started.location(), "/account/security/app");
    let page = app.get("/account/security/app").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"), "a QR code is drawn inline");
    let shown = page
        .attr("#totp-secret", "value")
        .expect("the secret as text");
    let secret = TotpSecret::from_base32(&shown).expect("base32");
    let code = secret.code_at(app.clock.unix_now());
    let done = post_from(
        app,
        "/account/security/app",
        "/account/security/app/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    (secret, done.texts("#codes li"))
}

/// Moves the clock to the next time step, so that a new code is due.
pub(crate) fn next_step(app: &TestApp) {
    app.clock.advance(Duration::seconds(30));
}

/// Signs in with the password and lands on the second step.
async fn password_step(app: &TestApp, email: &str) {
    let res = app.sign_in(email, PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/sign-in/verify");
}

async fn verify(app: &TestApp, method: &str, code: &str) -> Page {
    post_from(
        app,
        "/sign-in/verify",
        "/sign-in/verify",
        &[("method", method), ("code", code)],
    )
    .await
}

#[tokio::test]
async fn enrolment_needs_a_right_first_code_and_gives_ten_recovery_codes_once() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    post_from(&app, "/account/security", "/account/security/app", &[]).await;
    let page = app.get("/account/security/app").await;
    let shown = page.attr("#totp-secret", "value").unwrap();
    assert_eq!(shown.split(' ').count(), 8, "grouped for reading: {shown}");
    let wrong = post_from(
        &app,
        "/account/security/app",
        "/account/security/app/confirm",
        &[("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text("#code-error").contains("not right"));
    assert_eq!(
        wrong.attr("#totp-secret", "value").as_deref(),
        Some(shown.as_str()),
        "same secret"
    );
    let security = app.get("/account/security").await;
    assert!(
        !security.body.contains("of 10 recovery codes left"),
        "a waiting app does not count"
    );

    let secret = TotpSecret::from_base32(&shown).unwrap();
    let code = secret.code_at(app.clock.unix_now());
    let done = post_from(
        &app,
        "/account/security/app",
        "/account/security/app/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.headers["cache-control"], "no-store");
    let codes = done.texts("#codes li");
    assert_eq!(codes.len(), 10);
    assert!(done.text("[role=alert]").contains("shown only this once"));
    let security = app.get("/account/security").await;
    assert!(security.text("#recovery-left").contains("10 of 10"));
    assert!(security.text("#authenticator-app").contains("On"));

    // Neither the secret nor a recovery code is stored or audited in clear.
    let plain = secret.to_base32();
    for sql in [
        "SELECT sealed_secret FROM totp_factors",
        "SELECT code_hash FROM recovery_codes",
    ] {
        let values: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
        assert!(!values.is_empty());
        for v in values {
            assert!(!v.contains(plain.as_str()) && !codes.iter().any(|c| v.contains(c.as_str())));
        }
    }
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action || ' ' || details || ' ' || target_label FROM audit_log")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    let audit = audit.join("\n");
    assert!(audit.contains("user.second_factor_added"), "{audit}");
    assert!(!audit.contains(plain.as_str()) && !audit.contains(&codes[0]));
}

#[tokio::test]
async fn sign_in_asks_for_a_code_that_works_once_and_the_pending_state_opens_nothing() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    next_step(&app);

    let other = app.other_client();
    password_step(&other, USER_EMAIL).await;
    assert_eq!(
        other.get("/my/keys").await.location(),
        "/login?next=%2Fmy%2Fkeys",
        "not signed in yet"
    );
    assert_eq!(
        other.get("/account/security").await.status,
        StatusCode::SEE_OTHER
    );
    let code = secret.code_at(app.clock.unix_now());
    let res = verify(&other, "app", &code).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/");
    assert_eq!(other.get("/my/keys").await.status, StatusCode::OK);

    // The same code again, from a third client: refused (replay).
    let third = app.other_client();
    password_step(&third, USER_EMAIL).await;
    let replay = verify(&third, "app", &code).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(
        replay
            .text("#verify-error")
            .contains("not right, or was used already")
    );
    assert_eq!(third.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in.second_factor' AND details = 'authenticator code used before'").await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND details = 'second factor: authenticator app'").await,
        1
    );
}

#[tokio::test]
async fn a_code_from_one_step_either_side_is_accepted_and_two_steps_away_refused() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    for (offset, accepted) in [(-60, false), (60, false), (-30, true), (30, true)] {
        // Each try a few steps later than the last accepted one.
        app.clock.advance(Duration::seconds(120));
        let client = app.other_client();
        password_step(&client, USER_EMAIL).await;
        let code = secret.code_at(app.clock.unix_now() + offset);
        let res = verify(&client, "app", &code).await;
        let want = if accepted {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(res.status, want, "offset {offset}");
    }
}

#[tokio::test]
async fn a_recovery_code_works_once_and_new_codes_replace_the_old_ones() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (_, codes) = enrol(&app).await;

    let other = app.other_client();
    password_step(&other, USER_EMAIL).await;
    let switch = other.get("/sign-in/verify?method=recovery").await;
    assert_eq!(
        switch.attr("input[name=method]", "value").as_deref(),
        Some("recovery")
    );
    let typed = codes[3].to_uppercase().replace('-', " ");
    let res = verify(&other, "recovery", &typed).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(
        other
            .get("/account/security")
            .await
            .text("#recovery-left")
            .contains("9 of 10")
    );

    let again = app.other_client();
    password_step(&again, USER_EMAIL).await;
    let used = verify(&again, "recovery", &codes[3]).await;
    assert_eq!(used.status, StatusCode::UNAUTHORIZED);

    // New codes: the old unused ones stop working.
    let form = app.get("/account/security/recovery").await;
    let once = form
        .attr("input[name=once]", "value")
        .expect("a single-use token");
    let csrf = form.attr("input[name=csrf_token]", "value").unwrap();
    let sent = [("once", once.as_str()), ("csrf_token", csrf.as_str())];
    let page = app.post_raw("/account/security/recovery", &sent).await;
    assert_eq!(page.status, StatusCode::OK);
    let fresh = page.texts("#codes li");
    assert_eq!(fresh.len(), 10);
    assert!(page.body.contains("Your earlier codes no longer work"));
    // A reload of that page posts the form again: refused, and the codes just shown still work.
    let reload = app.post_raw("/account/security/recovery", &sent).await;
    assert_eq!(reload.status, StatusCode::CONFLICT);
    assert!(reload.body.contains("already sent"));
    assert!(reload.texts("#codes li").is_empty());
    let old = verify(&again, "recovery", &codes[4]).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = verify(&again, "recovery", &fresh[0]).await;
    assert_eq!(new.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.recovery_codes_generated'")
            .await,
        1
    );
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_person_and_audited() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    next_step(&app);
    let other = app.other_client();
    password_step(&other, USER_EMAIL).await;
    for _ in 0..5 {
        assert_eq!(
            verify(&other, "app", "000000").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let right = secret.code_at(app.clock.unix_now());
    let throttled = verify(&other, "app", &right).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key("retry-after"));
    assert!(
        throttled
            .text("#verify-error")
            .contains("Too many wrong codes")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in.second_factor' AND outcome = 'failure'").await,
        6,
        "five wrong codes and the throttle"
    );
    // The pending state ends after five minutes; signing in again and waiting out the window
    // lets the right code through.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        other.get("/sign-in/verify").await.location(),
        "/login?timed_out=1"
    );
    password_step(&other, USER_EMAIL).await;
    let code = secret.code_at(app.clock.unix_now());
    assert_eq!(
        verify(&other, "app", &code).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_pending_state_expires_after_five_minutes() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    let other = app.other_client();
    password_step(&other, USER_EMAIL).await;
    let page = other.get("/sign-in/verify").await;
    let token = page.attr("input[name=csrf_token]", "value").unwrap();
    app.clock.advance(Duration::seconds(301));
    let code = secret.code_at(app.clock.unix_now());
    let late = other
        .post_raw(
            "/sign-in/verify",
            &[("method", "app"), ("code", &code), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(late.location(), "/login?timed_out=1");
    assert!(
        other
            .get("/login?timed_out=1")
            .await
            .text("[role=status]")
            .contains("ended")
    );
    assert_eq!(other.get("/my/keys").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_policy_for_everyone_leads_a_person_without_a_factor_to_enrolment() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let saved = app
        .post("/account/security/policy", &[("policy", "everyone")])
        .await;
    assert_eq!(saved.location(), "/account/security?done=policy");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'settings.second_factor_policy'")
            .await,
        1
    );
    // The administrator has none either: only the security pages open now.
    assert_eq!(
        app.get("/user-access/keys").await.location(),
        "/account/security"
    );

    let user = app.other_client();
    user.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    let res = user.sign_in(USER_EMAIL, PASSWORD).await;
    assert_eq!(res.location(), "/account/security");
    let page = user.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text("#enrol-required")
            .contains("requires a second factor")
    );
    assert_eq!(user.get("/my/keys").await.location(), "/account/security");
    enrol(&user).await;
    assert_eq!(
        user.get("/my/keys").await.status,
        StatusCode::OK,
        "enrolled: the console opens"
    );
    // Signing out still works while enrolment is due.
    let out = post_from(&app, "/account/security", "/logout", &[]).await;
    assert_eq!(out.location(), "/login?signed_out=1");
}

#[tokio::test]
async fn the_policy_for_writers_covers_holders_of_write_permissions_only() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.post("/account/security/policy", &[("policy", "writers")])
        .await;
    let user = app.other_client();
    user.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    let res = user.sign_in(USER_EMAIL, PASSWORD).await;
    assert_eq!(
        res.location(),
        "/",
        "a person without write permissions is not asked"
    );
    assert_eq!(user.get("/my/keys").await.status, StatusCode::OK);
    let admin = app.other_client();
    let res = admin.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(
        res.location(),
        "/account/security",
        "an administrator holds write permissions"
    );
}

#[tokio::test]
async fn removing_the_app_asks_for_a_code_or_the_password() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    let wrong = post_from(
        &app,
        "/account/security/app/remove",
        "/account/security/app/remove",
        &[("code", "000000"), ("password", "")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text("#code-error").contains("not right"));
    let wrong = post_from(
        &app,
        "/account/security/app/remove",
        "/account/security/app/remove",
        &[("code", ""), ("password", "not it at all")],
    )
    .await;
    assert_eq!(
        wrong.text("#password-error"),
        "Your password is not correct."
    );
    next_step(&app);
    let code = secret.code_at(app.clock.unix_now());
    let done = post_from(
        &app,
        "/account/security/app/remove",
        "/account/security/app/remove",
        &[("code", &code), ("password", "")],
    )
    .await;
    assert_eq!(done.location(), "/account/security?done=app-removed");
    assert_eq!(app.count("SELECT COUNT(*) FROM totp_factors").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM recovery_codes").await,
        0,
        "no factor, no codes"
    );
    let other = app.other_client();
    assert_eq!(
        other.sign_in(USER_EMAIL, PASSWORD).await.location(),
        "/",
        "password alone again"
    );
}

#[tokio::test]
async fn master_key_rotation_keeps_the_authenticator_app_working() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let (secret, _) = enrol(&app).await;
    let before: String = sqlx::query_scalar("SELECT sealed_secret FROM totp_factors")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let new = keyward::auth::master_key::MasterKey::generate();
    let rotation = keyward::auth::vault::rotate(&app.state.pool, &app.state.master_key, &new)
        .await
        .unwrap();
    assert_eq!(rotation.totp_secrets, 1);
    let after: String = sqlx::query_scalar("SELECT sealed_secret FROM totp_factors")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert!(after.starts_with("v2.") && after != before, "{after}");

    let restarted =
        crate::common::spawn_app_on(&app.database_url, &new.to_base64(), app.clock.clone())
            .await
            .expect("starts with the new key");
    next_step(&app);
    password_step(&restarted, USER_EMAIL).await;
    let code = secret.code_at(app.clock.unix_now());
    assert_eq!(
        verify(&restarted, "app", &code).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_administrator_removes_a_users_second_factors_from_their_page() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let user = app.other_client();
    let user_id = user.signed_in_user().await;
    enrol(&user).await;
    let path = format!("/user-access/users/{user_id}");
    let page = app.get(&path).await;
    assert!(page.text("#second-factors").contains("Authenticator app"));
    let confirm = app.get(&format!("{path}/second-factors")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let done = app.post(&format!("{path}/second-factors"), &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = app.get(&done.location()).await;
    assert!(
        page.text("[role=status]")
            .contains("second factors and recovery codes were removed")
    );
    assert!(page.text("#second-factors").contains("password alone"));
    assert_eq!(app.count("SELECT COUNT(*) FROM recovery_codes").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.second_factors_removed'")
            .await,
        1
    );
    let again = app.other_client();
    assert_eq!(again.sign_in(USER_EMAIL, PASSWORD).await.location(), "/");
    // A user without users:write cannot.
    let refused = user.post(&format!("{path}/second-factors"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
