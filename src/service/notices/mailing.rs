//! Emails that carry a credential: sealed under the master key until sent (invitations).

use askama::Template;
use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::auth::vault::{Binding, Vault};
use crate::clock::format_utc;
use crate::error::AppError;
use crate::service::repo::outbox::{self, NewMail};

/// Queues an email whose bodies carry a credential (an invitation link): sealed under the
/// master key and bound to the new row, so that they open for that email only; the sender
/// empties them once sent. Returns the email's ID.
pub async fn queue_sealed(
    conn: &mut AnyConnection,
    vault: &Vault,
    now: i64,
    mail: NewMail<'_>,
) -> Result<String, AppError> {
    let id = crate::service::repo::new_id("mail");
    let [body_text, body_html] = vault
        .seal_to_store(
            conn,
            [
                (Binding::email_text(&id), mail.body_text),
                (Binding::email_html(&id), mail.body_html),
            ],
        )
        .await?;
    let sealed = NewMail {
        body_text: &body_text,
        body_html: &body_html,
        sealed: true,
        ..mail
    };
    outbox::insert_as(conn, &id, now, &sealed).await?;
    Ok(id)
}

/// What queuing an email needs beyond the transaction: the vault that seals a credential in
/// it, the public URL its links point at, and the sender to wake once the transaction commits.
#[derive(Clone, Copy)]
pub struct Mailing<'a> {
    pub vault: &'a Vault,
    pub public_url: &'a str,
    pub sender: &'a Notify,
}

impl Mailing<'_> {
    /// Tells the outbox sender there is something to send (call after the commit: a sender
    /// woken earlier would find nothing yet).
    pub fn wake_sender(&self) {
        self.sender.notify_one();
    }
}

#[derive(Template)]
#[template(path = "emails/invitation.txt")]
struct InvitationText<'a> {
    name: &'a str,
    inviter: &'a str,
    link: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "emails/invitation.html")]
struct InvitationHtml<'a> {
    name: &'a str,
    inviter: &'a str,
    link: &'a str,
    expires: &'a str,
}

/// Who is invited, by whom, with which one-time link token (valid until `expires_at`).
pub struct InvitationMail<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub inviter: &'a str,
    pub token: &'a str,
    pub expires_at: i64,
}

/// Queues an invitation email in the caller's transaction, its link sealed to the row (the
/// sender empties it once sent). Returns the email's ID.
pub async fn queue_invitation(
    conn: &mut AnyConnection,
    mailing: &Mailing<'_>,
    now: i64,
    inv: &InvitationMail<'_>,
) -> Result<String, AppError> {
    use secrecy::zeroize::Zeroizing;
    let link = Zeroizing::new(format!("{}/invite?token={}", mailing.public_url, inv.token));
    let expires = format_utc(inv.expires_at);
    let text = InvitationText {
        name: inv.name,
        inviter: inv.inviter,
        link: &link,
        expires: &expires,
    };
    let html = InvitationHtml {
        name: inv.name,
        inviter: inv.inviter,
        link: &link,
        expires: &expires,
    };
    let text = Zeroizing::new(text.render().map_err(anyhow::Error::from)?);
    let html = Zeroizing::new(html.render().map_err(anyhow::Error::from)?);
    let mail = NewMail {
        kind: "invitation",
        key_id: None,
        recipient: inv.email,
        recipient_name: inv.name,
        subject: "You are invited to keyward",
        body_text: &text,
        body_html: &html,
        sealed: true,
    };
    queue_sealed(conn, mailing.vault, now, mail).await
}
