//! A tenant key's group and role assignments: what can be chosen, whether the actor may give
//! what it adds (`grants`), and the bell notices a change sends.

use std::collections::BTreeSet;

use sqlx::AnyConnection;

use crate::domain::Actor;
use crate::error::AppError;
use crate::service::FieldErrors;
use crate::service::grants;
use crate::service::repo;
use crate::service::repo::keys::KeyRow;

/// The groups and roles a key can be given, each as (ID, name), in the order they are listed.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub groups: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
}

/// Every group and role a key can be given.
pub async fn choices(conn: &mut AnyConnection) -> Result<Choices, AppError> {
    let groups = repo::groups::list(conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let roles = repo::roles::list(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    Ok(Choices { groups, roles })
}

/// Assignments as they were and as asked for: checked to exist and, where added, to be the
/// actor's to give (`grants`). A key never widens its own.
pub(super) struct AssignmentChange<'a> {
    pub old_groups: &'a [String],
    pub old_roles: &'a [String],
    pub group_ids: &'a [String],
    pub role_ids: &'a [String],
    /// The key being changed (`None` while it is created).
    pub key_id: Option<&'a str>,
}

/// The chosen IDs, without blanks and duplicates.
fn chosen(ids: &[String]) -> BTreeSet<String> {
    ids.iter().filter(|id| !id.is_empty()).cloned().collect()
}

/// The choices among `names` that are chosen now and were not before.
fn added(
    chosen: &BTreeSet<String>,
    old: &[String],
    names: &[(String, String)],
) -> Vec<(String, String)> {
    names
        .iter()
        .filter(|(id, _)| chosen.contains(id) && !old.contains(id))
        .cloned()
        .collect()
}

/// Whether every chosen ID is among `names`.
fn all_known(chosen: &BTreeSet<String>, names: &[(String, String)]) -> bool {
    chosen
        .iter()
        .all(|id| names.iter().any(|(known, _)| known == id))
}

/// Checks a change of assignments, adding a message per refusal; returns the chosen group and
/// role IDs, sorted.
pub(super) async fn check_assignments(
    conn: &mut AnyConnection,
    actor: &Actor,
    change: AssignmentChange<'_>,
    errors: &mut FieldErrors,
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let groups = chosen(change.group_ids);
    let roles = chosen(change.role_ids);
    let known = choices(conn).await?;
    let added_groups = added(&groups, change.old_groups, &known.groups);
    let added_roles = added(&roles, change.old_roles, &known.roles);
    let own_key = change.key_id.is_some() && change.key_id == actor.acting_key.as_deref();
    if own_key && !(added_groups.is_empty() && added_roles.is_empty()) {
        errors.add(
            "roles",
            "A key cannot widen its own roles or groups; ask someone who manages keys.",
        );
    } else if !(added_groups.is_empty() && added_roles.is_empty()) {
        let map = repo::keys::load_access_map(conn).await?;
        for (field, message) in grants::refused_grants(&map, actor, &added_roles, &added_groups) {
            errors.add(field, message);
        }
    }
    if !all_known(&groups, &known.groups) {
        errors.add(
            "groups",
            "One of the chosen groups no longer exists. Choose again.",
        );
    }
    if !all_known(&roles, &known.roles) {
        errors.add(
            "roles",
            "One of the chosen roles no longer exists. Choose again.",
        );
    }
    Ok((groups.into_iter().collect(), roles.into_iter().collect()))
}

/// A list of IDs for the audit log ("none" when empty).
pub(super) fn describe(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// Bell notices to the people a change of assignments affects: the key's owner and the members
/// of every group added or removed.
pub(super) async fn notify_assignment_change(
    conn: &mut AnyConnection,
    key: &KeyRow,
    name: &str,
    old_groups: &[String],
    new_groups: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    // Everyone in a group the key had or has now: a role change reaches them all.
    let groups: Vec<String> = old_groups
        .iter()
        .chain(new_groups)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut people: BTreeSet<String> = key.owner_user_id.iter().cloned().collect();
    people.extend(repo::keys::members_of_groups(conn, &groups).await?);
    let title = format!("Assignments of access key “{name}” changed");
    let body = format!(
        "The groups or roles of key {} changed, and with them what it may do.",
        key.id
    );
    for user in people {
        repo::notifications::insert(
            conn,
            &user,
            now,
            "key.assignments_changed",
            &title,
            &body,
            "",
        )
        .await?;
    }
    Ok(())
}
