use crate::common::{PASSWORD, USER_EMAIL, spawn_app};
use crate::driver::Browser;
use crate::flows::{admin_in_browser, sign_in};

#[tokio::test]
async fn an_administrator_manages_an_access_key_from_start_to_end() {
    let (app, b) = admin_in_browser().await;

    // Add key opens as a dialog.
    b.click(".toolbar a[data-dialog]").await;
    assert!(
        b.find("dialog#add-key-dialog[open]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    b.fill("dialog #key-name", "billing export").await;
    b.click("dialog input[name=roles][value=role_read_only]")
        .await;
    b.screenshot("add-key-dialog").await;
    b.click("dialog button[type=submit]").await;

    // The one-time Key details pane.
    b.wait_for_text("h1", "Key details").await;
    let id = b
        .find("#access-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let secret = b
        .find("#secret-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let tenant = b
        .find("#tenant-id")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("kws_") && secret.len() == 50);
    b.click("#copy-all").await;
    // The clipboard write is asynchronous; the status follows it.
    b.wait_for_text(".copy-status", "Copied to the clipboard.")
        .await;
    b.screenshot("key-secret-once").await;
    assert_eq!(
        b.clipboard().await,
        format!("key:{id}::{secret},tenant id: {tenant}")
    );
    b.click("button[data-copy-from=secret-key]").await;
    assert_eq!(b.clipboard().await, secret);

    // Back in the list, then Actions > Key details.
    b.click("a.button-primary[href='/user-access/keys']").await;
    b.wait_for_path("/user-access/keys").await;
    assert!(b.text("tbody tr").await.contains("billing export"));
    b.click(".row-menu summary").await;
    b.screenshot("key-actions-menu").await;
    b.click(".row-menu a[href$='#permissions']").await;
    assert!(b.text("#permissions").await.contains("keys:read"));

    // Change the expiry and assign a role.
    b.find("#validity")
        .await
        .select_by_value("custom")
        .await
        .unwrap();
    b.fill("#custom-date", "12/31/2027").await;
    b.click("input[name=roles][value=role_integration]").await;
    b.click("main form button.button-primary[type=submit]")
        .await;
    assert_eq!(b.text("[role=status]").await, "Your changes were saved.");
    assert!(b.text(".facts").await.contains("2027-12-31 23:59 UTC"));
    assert!(b.text("#permissions").await.contains("keys:verify"));
    b.screenshot("key-details").await;

    // Generate a new secret key, with the warning first.
    b.click(".header-actions a[href$='/regenerate']").await;
    assert!(
        b.text("[role=alert]")
            .await
            .contains("The current secret stops working")
    );
    b.screenshot("regenerate-warning").await;
    b.click("main form button.button-primary").await;
    let fresh = b
        .find("#secret-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(fresh, secret);
    assert_eq!(
        b.find("#access-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap(),
        id
    );
    assert!(app.authenticate(&id, &secret).await.is_err());
    assert!(app.authenticate(&id, &fresh).await.is_ok());

    // Deactivate, then delete.
    b.goto(&format!("{}/user-access/keys/{id}", app.address))
        .await;
    b.click(".header-actions a[href$='/deactivate']").await;
    b.wait_for_text("h1", "Deactivate access key?").await;
    b.screenshot("deactivate-confirm").await;
    b.click("button.button-danger").await;
    b.wait_for_text_containing("h1", "Inactive").await;
    assert!(
        b.text("[role=status]")
            .await
            .contains("no longer authenticates")
    );
    b.click(".header-actions a[href$='/delete']").await;
    b.screenshot("delete-confirm").await;
    b.click("button.button-danger").await;
    b.wait_for_path("/user-access/keys?done=deleted&name=billing+export")
        .await;
    assert!(
        b.text("[role=status]")
            .await
            .contains("Deleted the key “billing export”")
    );
    b.screenshot("access-keys-after-delete").await;
    b.quit().await;
}

#[tokio::test]
async fn a_user_creates_two_personal_keys_and_is_refused_a_third() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app.address, USER_EMAIL, PASSWORD).await;
    b.wait_for_path("/my/keys").await;
    b.screenshot("my-keys-empty").await;
    for name in ["laptop", "ci runner"] {
        b.click(".toolbar a[data-dialog]").await;
        b.fill("dialog #key-name", name).await;
        b.click("dialog input[name=validity][value='30']").await;
        b.click("dialog button[type=submit]").await;
        b.wait_for_text("h1", "Key details").await;
        b.click("a.button-primary[href='/my/keys']").await;
        b.wait_for_path("/my/keys").await;
    }
    assert_eq!(b.text(".count").await, "2 of 2");
    assert!(b.text("#limit-note").await.contains("the most allowed"));
    b.screenshot("my-keys-full").await;

    // The form page itself still refuses a third, with the reason.
    b.goto(&format!("{}/my/keys/new", app.address)).await;
    b.fill("#key-name", "one too many").await;
    b.click("main form button[type=submit]").await;
    assert!(
        b.text("#add-conflict")
            .await
            .contains("You already have 2 personal access keys")
    );
    b.screenshot("my-keys-refused").await;
    b.quit().await;
}
