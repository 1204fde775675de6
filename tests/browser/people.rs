use crate::common::{ADMIN_EMAIL, PASSWORD};
use crate::driver::Browser;
use crate::flows::{admin_in_browser, sign_in};

#[tokio::test]
async fn an_administrator_invites_a_user_who_joins_through_the_link() {
    let (app, b) = admin_in_browser().await;

    // A group with a role first.
    b.goto(&format!("{}/user-access/groups/new", app.address))
        .await;
    b.fill("#name", "Data team").await;
    b.fill("#description", "Exports and reports").await;
    b.click("input[name=roles][value=role_read_only]").await;
    b.screenshot("group-new").await;
    b.click("main form button.button-primary").await;
    b.wait_for_text("[role=status]", "The group was created.")
        .await;

    // Invite Grace into it.
    b.goto(&format!("{}/user-access/users", app.address)).await;
    b.click(".toolbar a.button-primary").await;
    b.wait_for_text("h1", "Add user").await;
    b.fill("#name", "Grace Hopper").await;
    b.fill("#email", "grace@example.com").await;
    let data_team = b.find_all("input[name=groups]").await;
    data_team.last().unwrap().click().await.unwrap();
    b.screenshot("user-new").await;
    b.click("main form button.button-primary").await;
    b.wait_for_text_containing("[role=status]", "Invitation sent.")
        .await;
    assert!(b.text("tbody").await.contains("Invited"));
    b.screenshot("users-invited").await;

    // Grace follows the link from her email.
    b.click(".user-menu summary").await;
    b.click(".user-menu button[type=submit]").await;
    b.wait_for_path("/login?signed_out=1").await;
    b.goto(&format!(
        "{}{}",
        app.address,
        crate::common::last_invitation(&app).await.1
    ))
    .await;
    assert_eq!(b.text("h1").await, "Welcome, Grace Hopper");
    b.fill("#password", PASSWORD).await;
    b.fill("#confirm", PASSWORD).await;
    b.screenshot("invite-accept").await;
    b.click("form button[type=submit]").await;
    // The Data team's Read Only role holds keys:read: she starts on the overview.
    b.wait_for_path("/").await;
    assert_eq!(b.text("h1").await, "Overview");
    assert_eq!(b.text(".bell-count").await, "1", "told about the group");
    b.click("a.bell").await;
    b.wait_for_text("h1", "Notifications").await;
    assert!(
        b.text(".notification")
            .await
            .contains("You were added to the group “Data team”")
    );
    b.screenshot("notifications-unread").await;
    b.quit().await;
}

#[tokio::test]
async fn the_role_and_group_pages_explain_what_is_built_in() {
    let (app, b) = admin_in_browser().await;
    b.goto(&format!(
        "{}/user-access/groups/grp_administrators",
        app.address
    ))
    .await;
    assert!(b.text(".alert-info").await.contains("built in"));
    b.screenshot("group-administrators").await;
    b.goto(&format!("{}/user-access/roles/new", app.address))
        .await;
    b.fill("#name", "Auditor").await;
    b.click("input[name=permissions][value='audit:read']").await;
    b.screenshot("role-new").await;
    b.click("main form button.button-primary").await;
    b.wait_for_text("[role=status]", "The role was created.")
        .await;
    b.goto(&format!("{}/user-access/roles", app.address)).await;
    assert!(b.text("tbody").await.contains("Auditor"));
    b.screenshot("roles-custom").await;
    b.quit().await;
}

#[tokio::test]
async fn the_mail_log_shows_each_email_and_retries_a_failed_one() {
    use crate::common::smtp::{Mode, SmtpServer};
    let server = SmtpServer::start(Mode::TempFail).await;
    let url = server.url();
    let app = crate::common::spawn_app_with(move |s| {
        s.smtp_url = Some(url.into());
        s.mail_max_attempts = 1;
    })
    .await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    for (name, email) in [
        ("Grace Hopper", "grace@example.com"),
        ("Linus Pauling", "linus@example.com"),
    ] {
        b.goto(&format!("{}/user-access/users/new", app.address))
            .await;
        b.fill("#name", name).await;
        b.fill("#email", email).await;
        b.click("main form button.button-primary").await;
        b.wait_for_text_containing("[role=status]", "Invitation sent.")
            .await;
        // The first meets a mail server that refuses; the second one that accepts.
        app.jobs.send_due().await.unwrap();
        server.set_mode(Mode::Accept);
    }

    b.goto(&format!("{}/mail", app.address)).await;
    assert_eq!(b.text("h1").await, "Mail log");
    let rows = b.text("tbody").await;
    assert!(rows.contains("linus@example.com") && rows.contains("Sent"));
    assert!(rows.contains("grace@example.com") && rows.contains("Failed"));
    assert!(rows.contains("451"), "the server's refusal is shown");
    b.screenshot("mail-log").await;

    b.click("nav.tabs a[href='/mail?state=failed']").await;
    b.wait_for_path("/mail?state=failed").await;
    assert!(!b.text("tbody").await.contains("linus@example.com"));
    b.screenshot("mail-log-failed").await;
    b.click("tbody form button[type=submit]").await;
    b.wait_for_text_containing("[role=status]", "queued again")
        .await;
    assert!(b.text("tbody").await.contains("grace@example.com"));
    assert!(b.text("tbody").await.contains("Retrying"));
    b.screenshot("mail-log-retried").await;
    assert_eq!(app.jobs.send_due().await.unwrap().sent, 1);
    assert_eq!(server.accepted().len(), 2);
    b.quit().await;
}
