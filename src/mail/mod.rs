//! Sending email. Messages have a plain-text and an HTML part rendered from askama templates.
//! Without `KEYWARD_SMTP_URL` each message is written as an `.eml` file in
//! `<data dir>/outbox/`, which is where this build sends everything (SMTP and the retrying
//! outbox table come with the expiry-email job).

use std::path::PathBuf;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

/// An email to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Delivers email through the configured transport.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    files: AsyncFileTransport<Tokio1Executor>,
    dir: PathBuf,
}

impl Mailer {
    /// A mailer writing `.eml` files into `<data_dir>/outbox/`.
    pub fn new(data_dir: &std::path::Path, from: &str) -> anyhow::Result<Self> {
        let dir = data_dir.join("outbox");
        std::fs::create_dir_all(&dir)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("KEYWARD_MAIL_FROM: {e}"))?;
        Ok(Self {
            from,
            files: AsyncFileTransport::<Tokio1Executor>::new(&dir),
            dir,
        })
    }

    /// Where `.eml` files are written.
    pub fn outbox_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Sends one email.
    pub async fn send(&self, email: &Email) -> anyhow::Result<()> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))?;
        self.files.send(message).await?;
        Ok(())
    }
}
