//! Sending email. Every message goes through the outbox table (`repo::outbox`, sent by
//! `jobs::sender`); this module holds the transport the sender uses: lettre's async SMTP
//! transport when `KEYWARD_SMTP_URL` is set, else `.eml` files in `<data dir>/outbox/`. Bodies that
//! carry a credential are sealed by `auth::vault` so that the outbox never holds one in plain text.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// An email to one recipient, as the outbox holds it. The bodies may carry a credential (an
/// invitation link): `Debug` leaves them out, and they are wiped from memory when dropped.
#[derive(Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Drop for Email {
    fn drop(&mut self) {
        use secrecy::zeroize::Zeroize;
        self.text.zeroize();
        self.html.zeroize();
    }
}

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    /// The server refused for good (a 5xx answer, a bad address): no retry.
    pub permanent: bool,
    pub message: String,
}

/// Delivers email through the configured transport.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    dir: PathBuf,
}

#[derive(Clone)]
enum Transport {
    Files(AsyncFileTransport<Tokio1Executor>),
    Smtp {
        /// The pool of connections in use, replaced by a fresh one when a conversation was cut
        /// off (see [`Mailer::deliver`]).
        inner: std::sync::Arc<std::sync::RwLock<AsyncSmtpTransport<Tokio1Executor>>>,
        url: secrecy::SecretString,
        label: String,
    },
}

fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("KEYWARD_SMTP_URL: {e}"))?
        .timeout(Some(SMTP_TIMEOUT))
        .build())
}

/// lettre's own limit on connecting and on each read and write. It does not bound a server
/// that sits on an answer, so [`Mailer::deliver`] puts a deadline on the whole conversation.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl Mailer {
    /// A mailer on `smtp_url` (`smtp://` plain or `?tls=required` STARTTLS, `smtps://` TLS,
    /// credentials in the URL), or writing `.eml` files into `<data_dir>/outbox/` without one.
    pub fn new(
        data_dir: &std::path::Path,
        from: &str,
        smtp_url: Option<&secrecy::SecretString>,
    ) -> anyhow::Result<Self> {
        let dir = data_dir.join("outbox");
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("KEYWARD_MAIL_FROM: {e}"))?;
        let transport = match smtp_url.map(secrecy::ExposeSecret::expose_secret) {
            Some(url) => {
                let parsed =
                    url::Url::parse(url).map_err(|e| anyhow::anyhow!("KEYWARD_SMTP_URL: {e}"))?;
                let label = format!(
                    "SMTP {}:{}",
                    parsed.host_str().unwrap_or_default(),
                    parsed
                        .port()
                        .map_or_else(|| "default".into(), |p| p.to_string())
                );
                let inner = std::sync::Arc::new(std::sync::RwLock::new(smtp_transport(url)?));
                Transport::Smtp {
                    inner,
                    url: url.to_string().into(),
                    label,
                }
            }
            None => {
                crate::files::private_dir(&dir)?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(&dir))
            }
        };
        Ok(Self {
            from,
            transport,
            dir,
        })
    }

    /// Where `.eml` files are written (without SMTP).
    pub fn outbox_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// What the mail log shows as the transport.
    pub fn transport_label(&self) -> String {
        match &self.transport {
            Transport::Files(_) => format!(".eml files in {}", self.dir.display()),
            Transport::Smtp { label, .. } => label.clone(),
        }
    }

    /// Delivers one email, with `message_id` as its Message-ID so that a receiver can tell a
    /// retried message from a new one, within `deadline` for the whole conversation (connect,
    /// greeting, every command and the answer to the data). Returns the server's answer.
    ///
    /// A conversation cut off at its deadline leaves its connection mid-command; lettre would
    /// hand it to the next email, so the connection pool is replaced by a fresh one.
    pub async fn deliver(
        &self,
        message_id: &str,
        email: &Email,
        deadline: Duration,
    ) -> Result<String, DeliveryError> {
        match tokio::time::timeout(deadline, self.converse(message_id, email)).await {
            Ok(result) => result,
            Err(_) => {
                if let Transport::Smtp { inner, url, .. } = &self.transport
                    && let Ok(fresh) = smtp_transport(secrecy::ExposeSecret::expose_secret(url))
                    && let Ok(mut current) = inner.write()
                {
                    *current = fresh;
                }
                Err(DeliveryError {
                    permanent: false,
                    message: format!(
                        "the mail server did not finish the conversation within {} seconds",
                        deadline.as_secs()
                    ),
                })
            }
        }
    }

    async fn converse(&self, message_id: &str, email: &Email) -> Result<String, DeliveryError> {
        let permanent = |message: String| DeliveryError {
            permanent: true,
            message,
        };
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| permanent(format!("recipient address: {e}")))?;
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{message_id}@keyward>")))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| permanent(format!("building the message: {e}")))?;
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
        match &self.transport {
            Transport::Files(files) => files
                .send(message)
                .await
                .map(|id| {
                    crate::files::made_private(&self.dir.join(format!("{id}.eml")));
                    format!("written as {id}.eml")
                })
                .map_err(|e| DeliveryError {
                    permanent: false,
                    message: e.to_string(),
                }),
            Transport::Smtp { inner, .. } => {
                let transport = inner
                    .read()
                    .map(|t| t.clone())
                    .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
                match transport.send(message).await {
                    Ok(response) => Ok(format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    )),
                    Err(e) => Err(DeliveryError {
                        permanent: e.is_permanent(),
                        message: e.to_string(),
                    }),
                }
            }
        }
    }
}
