use reqwest::StatusCode;

use crate::common::{PASSWORD, USER_EMAIL, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase 2026";

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_a_good_new_one() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let page = app
        .post(
            "/account/password",
            &[
                ("current", "wrong one"),
                ("password", "short"),
                ("confirm", "other"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#current-error"),
        "Your current password is not correct."
    );
    assert!(page.text("#password-error").contains("12"));
    assert_eq!(page.text("#confirm-error"), "The passwords do not match.");

    // Nothing changed: the old password still works elsewhere.
    let other = app.other_client();
    assert_eq!(
        other.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_changed_password_ends_other_sessions_and_keeps_this_one() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let other = app.other_client();
    other.sign_in(USER_EMAIL, PASSWORD).await;
    assert_eq!(other.get("/my/keys").await.status, StatusCode::OK);

    let res = app
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/account/password?saved=1");
    let saved = app.get("/account/password?saved=1").await;
    assert_eq!(saved.status, StatusCode::OK, "this session survives");
    assert!(
        saved
            .text("[role=status]")
            .contains("Your password was changed")
    );

    assert_eq!(
        other.get("/my/keys").await.status,
        StatusCode::SEE_OTHER,
        "the other session ended"
    );
    let third = app.other_client();
    assert_eq!(
        third.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        third.sign_in(USER_EMAIL, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_changed'")
            .await,
        1
    );
}
