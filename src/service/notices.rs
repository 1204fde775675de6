//! Telling people: about a key, an email through the outbox and a bell notification for each
//! person responsible for it (SPEC §4) and a webhook event; an invitation email; all written in
//! the caller's transaction so that the decision and its messages commit together, and the
//! sender woken only after the commit. Sealed emails and invitations are `mailing`'s; the bell
//! itself (a person's notices, marking them read) is `bell`'s.

use askama::Template;
use sqlx::AnyConnection;

use crate::clock::format_utc;
use crate::service::repo::groups::ADMINISTRATORS;
use crate::service::repo::outbox::{self, NewMail};
use crate::service::webhooks::{self, EventType, KeyPayload};

/// The kinds of the emails and bell notices about a key (about to expire, expired, locked).
pub use crate::domain::key_mail::{
    DEACTIVATED_INACTIVE, EXPIRED, EXPIRING, EXPOSED, INACTIVE_WARNING, LOCKED,
    REPLACED_SECRET_USED,
};

/// What happened to a key.
#[derive(Debug, Clone, Copy)]
pub enum KeyEvent {
    /// The key expires at its expiry time (a notice stage was reached).
    Expiring,
    /// The key's expiry has passed.
    Expired,
    /// The key locked after `count` wrong secrets in a row.
    Locked { count: i64 },
    /// A secret the key had before its current one was presented again (and refused); the
    /// key was locked too when the key policy says so.
    ReplacedSecretUsed { replaced_at: i64, locked: bool },
    /// The key has not been used since `unused_since` and the key policy will deactivate it
    /// at `deactivate_at` unless it is used or changed before then.
    InactiveWarning {
        unused_since: i64,
        deactivate_at: i64,
    },
    /// The key policy deactivated the key, unused since `unused_since`.
    DeactivatedInactive { unused_since: i64 },
}

/// The facts about a key a notice needs.
#[derive(Debug, Clone, Copy)]
pub struct KeyFacts<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub key_type: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub modified_by: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// What one notice email says.
struct Notice<'a> {
    name: &'a str,
    headline: &'a str,
    key_name: &'a str,
    key_id: &'a str,
    when_label: &'a str,
    when: &'a str,
    /// The plain-text line, label padded to line up with the others.
    when_row: &'a str,
    consequence: &'a str,
    action: &'a str,
    button: &'a str,
    link: &'a str,
    others: &'a str,
}

#[derive(Template)]
#[template(path = "emails/key_notice.txt")]
struct NoticeText<'a> {
    n: &'a Notice<'a>,
}

#[derive(Template)]
#[template(path = "emails/key_notice.html")]
struct NoticeHtml<'a> {
    n: &'a Notice<'a>,
}

/// A person to tell.
pub use crate::service::repo::users::Recipient;

mod bell;
mod mailing;

pub use bell::{Notification, bell, mark_all_read};
pub use mailing::{InvitationMail, Mailing, queue_invitation, queue_sealed};

/// The people responsible for a key: the Administrators group, its creator, its last modifier
/// and its owner; each once, and only those who are active.
pub async fn recipients(
    conn: &mut AnyConnection,
    key: &KeyFacts<'_>,
) -> sqlx::Result<Vec<Recipient>> {
    let people = [key.created_by, key.modified_by, key.owner_user_id];
    crate::service::repo::users::active_members_and(conn, ADMINISTRATORS, people).await
}

/// What a notice about a key says, whoever it goes to.
struct Wording {
    kind: &'static str,
    subject: String,
    headline: String,
    /// The bell's title and text: times as dates, since a notification is read days later
    /// (an email's "expires in 2 days" is read when it arrives).
    bell: Option<(String, String)>,
    when_label: &'static str,
    when: String,
    consequence: String,
    action: &'static str,
}

/// The words of the notice about `event` happening to `key` at `now`.
fn wording(key: &KeyFacts<'_>, event: KeyEvent, now: i64) -> Wording {
    let expiry = key.expires_at.map(format_utc).unwrap_or_default();
    match event {
        KeyEvent::Expiring => {
            let at = key.expires_at.unwrap_or(now);
            Wording {
                kind: EXPIRING,
                subject: format!("Access key “{}” expires {}", key.name, time_left(at - now)),
                headline: format!(
                    "The access key “{}” expires {}.",
                    key.name,
                    time_left(at - now)
                ),
                when_label: "Expires",
                when: expiry,
                consequence: format!(
                    "From {}, programs that present this key are refused (401), and the verify \
                     endpoint answers EXPIRED for it.",
                    format_utc(at)
                ),
                action: "To keep them working, open the key details and extend the expiry:",
                bell: Some((
                    format!("Access key “{}” expires {}", key.name, format_utc(at)),
                    format!(
                        "The access key “{}” expires at {}.",
                        key.name,
                        format_utc(at)
                    ),
                )),
            }
        }
        KeyEvent::Expired => Wording {
            kind: EXPIRED,
            subject: format!("Access key “{}” has expired", key.name),
            headline: format!("The access key “{}” has expired.", key.name),
            when_label: "Expired",
            when: expiry,
            consequence: "Programs that present this key are now refused (401), and the verify \
                 endpoint answers EXPIRED for it."
                .to_string(),
            action: "To restore access, open the key details and set a new expiry, or delete the \
                 key if nothing needs it any more:",
            bell: None,
        },
        KeyEvent::Locked { count } => Wording {
            kind: LOCKED,
            subject: format!("Access key “{}” was locked", key.name),
            headline: format!(
                "The access key “{}” was locked after {count} wrong secrets in a row.",
                key.name
            ),
            when_label: "Locked",
            when: format_utc(now),
            consequence: "Programs that present this key are refused until it is unlocked or \
                 given a new secret key. Find the program that presents a wrong secret before \
                 unlocking it."
                .to_string(),
            action: "Open the key details to unlock it or generate a new secret key:",
            bell: None,
        },
        KeyEvent::ReplacedSecretUsed {
            replaced_at,
            locked,
        } => Wording {
            kind: REPLACED_SECRET_USED,
            subject: format!("An old secret of access key “{}” was used", key.name),
            headline: format!(
                "A program presented a secret that the access key “{}” had before {}.",
                key.name,
                format_utc(replaced_at)
            ),
            when_label: "Presented",
            when: format_utc(now),
            consequence: if locked {
                "It was refused, and the key was locked, as the key policy asks: whoever \
                 presented it holds a copy of a secret that was replaced, perhaps a program \
                 not updated since, perhaps someone who obtained it. Programs that present the \
                 current secret are refused too until the key is unlocked."
                    .to_string()
            } else {
                "It was refused. Whoever presented it holds a copy of a secret that was \
                 replaced: a program not updated since, or someone who obtained it. The audit \
                 log has the address it came from."
                    .to_string()
            },
            action: "Open the key details to see its last uses, and generate a new secret if \
                 the old one may have leaked:",
            bell: None,
        },
        KeyEvent::InactiveWarning {
            unused_since,
            deactivate_at,
        } => Wording {
            kind: INACTIVE_WARNING,
            subject: format!(
                "Access key “{}” will be deactivated on {}: unused",
                key.name,
                day(deactivate_at)
            ),
            headline: format!(
                "The access key “{}” has not been used since {}, and the key policy deactivates \
                 keys that go unused.",
                key.name,
                day(unused_since)
            ),
            when_label: "Deactivated on",
            when: format_utc(deactivate_at),
            consequence: "From then, programs that present this key are refused until someone \
                 reactivates it. Using the key, or changing it in the console, before then \
                 keeps it active."
                .to_string(),
            action: "If nothing needs the key any more, delete it; if something does, open its \
                 details:",
            bell: Some((
                format!(
                    "Access key “{}” will be deactivated on {}",
                    key.name,
                    day(deactivate_at)
                ),
                format!(
                    "Unused since {}; the key policy deactivates it on {} unless it is used or \
                     changed before then.",
                    day(unused_since),
                    day(deactivate_at)
                ),
            )),
        },
        KeyEvent::DeactivatedInactive { unused_since } => Wording {
            kind: DEACTIVATED_INACTIVE,
            subject: format!("Access key “{}” was deactivated: unused", key.name),
            headline: format!(
                "The key policy deactivated the access key “{}”: it had not been used since {}.",
                key.name,
                day(unused_since)
            ),
            when_label: "Deactivated",
            when: format_utc(now),
            consequence: "Programs that present this key are refused until it is reactivated. \
                 It was not deleted: its owner or an administrator can reactivate it from its \
                 details."
                .to_string(),
            action: "Open the key details to reactivate it, or delete it if nothing needs it:",
            bell: None,
        },
    }
}

/// A date alone (UTC), for notices read days later.
fn day(t: i64) -> String {
    format_utc(t).chars().take(10).collect()
}

/// Queues one email and one bell notification per responsible person, and the key's webhook
/// event. Returns how many people were told.
pub async fn tell(
    conn: &mut AnyConnection,
    now: i64,
    public_url: &str,
    key: &KeyFacts<'_>,
    event: KeyEvent,
) -> Result<usize, sqlx::Error> {
    let hook = match event {
        KeyEvent::Expiring => EventType::KeyExpiring,
        KeyEvent::Expired => EventType::KeyExpired,
        KeyEvent::Locked { .. } => EventType::KeyLocked,
        KeyEvent::ReplacedSecretUsed { .. } => EventType::ReplacedSecretUsed,
        KeyEvent::InactiveWarning { .. } => EventType::InactiveWarning,
        KeyEvent::DeactivatedInactive { .. } => EventType::DeactivatedInactive,
    };
    tell_in_words(conn, now, public_url, key, hook, &wording(key, event, now)).await
}

/// Queues the notices and the webhook event about `key` with these words.
async fn tell_in_words(
    conn: &mut AnyConnection,
    now: i64,
    public_url: &str,
    key: &KeyFacts<'_>,
    hook: EventType,
    words: &Wording,
) -> Result<usize, sqlx::Error> {
    let payload = KeyPayload {
        id: key.id,
        name: key.name,
        key_type: key.key_type,
        owner_user_id: key.owner_user_id,
        expires_at: key.expires_at,
    };
    webhooks::emit(conn, now, hook, &payload).await?;
    let people = recipients(conn, key).await?;
    for person in &people {
        let others: Vec<&str> = people
            .iter()
            .filter(|p| p.id != person.id)
            .map(|p| p.name.as_str())
            .collect();
        let place = if key.owner_user_id == Some(person.id.as_str()) {
            "/my/keys"
        } else {
            "/user-access/keys"
        };
        let path = format!("{place}/{}", key.id);
        let to = Addressee {
            person,
            others: &others.join(", "),
            path: &path,
            link: &format!("{public_url}{path}"),
        };
        queue_notice(conn, now, key, words, &to).await?;
    }
    Ok(people.len())
}

/// A secret of a key reported exposed: who reported it, where it was found (public URLs, when
/// known), and what keyward did about it.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// "GitHub secret scanning", or the person or key that reported it.
    pub reported_by: &'a str,
    /// Where it was found; may be empty.
    pub places: &'a [String],
    /// What was done: `locked`, `deactivated`, `recorded`, `already locked` or
    /// `already inactive`.
    pub outcome: &'a str,
    /// Whether the exposed secret was the previous one, kept for a grace period that has now
    /// ended.
    pub previous: bool,
}

/// Tells the key's people (email, bell) and subscribed endpoints (`key.exposed`) that a secret
/// of `key` was exposed. Returns how many people were told.
pub async fn tell_exposed(
    conn: &mut AnyConnection,
    now: i64,
    public_url: &str,
    key: &KeyFacts<'_>,
    exposure: &Exposure<'_>,
) -> Result<usize, sqlx::Error> {
    let which = if exposure.previous {
        "the previous secret (still inside its grace period)"
    } else {
        "the secret"
    };
    let found = match exposure.places {
        [] => String::new(),
        [one] => format!(" It was found at {one}."),
        many => format!(" It was found at {}.", many.join(", ")),
    };
    let headline = format!(
        "{} reported that {which} of the access key “{}” is exposed.{found}",
        exposure.reported_by, key.name
    );
    let consequence = match exposure.outcome {
        "locked" => "keyward locked the key, as the key policy asks: programs that present it \
             are refused, and so is anyone who copied the secret, until the key is given a new \
             secret."
            .to_string(),
        "deactivated" => "keyward deactivated the key, as the key policy asks: programs that \
             present it are refused, and so is anyone who copied the secret. Generate a new \
             secret before you activate it again."
            .to_string(),
        "already locked" => "The key was already locked: programs that present it are \
             refused, and so is anyone who copied the secret. Give it a new secret before you \
             unlock it."
            .to_string(),
        "already inactive" => "The key was already inactive: programs that present it are \
             refused, and so is anyone who copied the secret. Give it a new secret before you \
             activate it again."
            .to_string(),
        _ => "Nothing was changed, as the key policy asks: the secret still works, for the \
             programs that use it and for anyone who copied it."
            .to_string(),
    };
    let words = Wording {
        kind: EXPOSED,
        subject: format!("A secret of access key “{}” was exposed", key.name),
        headline: headline.clone(),
        bell: Some((
            format!("A secret of access key “{}” was exposed", key.name),
            headline,
        )),
        when_label: "Reported",
        when: format_utc(now),
        consequence,
        action: "Open the key details, generate a new secret and update the programs that use \
             it; remove the secret from where it was found:",
    };
    tell_in_words(conn, now, public_url, key, EventType::KeyExposed, &words).await
}

/// One person told about a key: who else was, and where the key's page is for them.
struct Addressee<'a> {
    person: &'a Recipient,
    others: &'a str,
    /// The key's page, as the bell links it.
    path: &'a str,
    /// The same page as the email links it (with the public URL).
    link: &'a str,
}

/// Queues the email and the bell notice for one person.
async fn queue_notice(
    conn: &mut AnyConnection,
    now: i64,
    key: &KeyFacts<'_>,
    words: &Wording,
    to: &Addressee<'_>,
) -> sqlx::Result<()> {
    let render = |e: askama::Error| sqlx::Error::Protocol(format!("email template: {e}"));
    let when_row = format!("{:<12}{}", format!("{}:", words.when_label), words.when);
    let notice = Notice {
        name: &to.person.name,
        headline: &words.headline,
        key_name: key.name,
        key_id: key.id,
        when_label: words.when_label,
        when: &words.when,
        when_row: &when_row,
        consequence: &words.consequence,
        action: words.action,
        button: "Open key details",
        link: to.link,
        others: to.others,
    };
    let text = NoticeText { n: &notice }.render().map_err(render)?;
    let html = NoticeHtml { n: &notice }.render().map_err(render)?;
    let mail = NewMail {
        kind: words.kind,
        key_id: Some(key.id),
        recipient: &to.person.email,
        recipient_name: &to.person.name,
        subject: &words.subject,
        body_text: &text,
        body_html: &html,
        sealed: false,
    };
    outbox::insert(conn, now, &mail).await?;
    let person = &to.person.id;
    let (title, text) = match &words.bell {
        Some((title, text)) => (title, text),
        None => (&words.subject, &words.headline),
    };
    crate::service::repo::notifications::insert(conn, person, now, words.kind, title, text, to.path)
        .await
}

/// "in 47 hours", "in 6 days": hours below two days, so that a notice never says less time is
/// left than there is.
fn time_left(secs: i64) -> String {
    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;
    match secs {
        s if s < HOUR => "in less than an hour".to_string(),
        s if s < 2 * HOUR => "in 1 hour".to_string(),
        s if s < 2 * DAY => format!("in {} hours", s / HOUR),
        s => format!("in {} days", s / DAY),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(super::time_left(47 * 3_600 + 59), "in 47 hours");
        assert_eq!(super::time_left(6 * 86_400 + 5), "in 6 days");
        assert_eq!(super::time_left(90 * 60), "in 1 hour");
        assert_eq!(super::time_left(59), "in less than an hour");
    }
}
