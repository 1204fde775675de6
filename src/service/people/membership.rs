//! The one membership editor: a checkbox list of groups, members or roles, read for a page and
//! saved at once. Each list knows what it links, which entries exist, what the actor may give
//! or take (SPEC §11), the rule that Administrators keeps a member who can sign in, and whom a
//! change concerns. The user's page, the Add user form and the group's page all go through it.

use std::collections::{BTreeSet, HashMap};

use sqlx::AnyConnection;

use crate::domain::Actor;
use crate::error::AppError;
use crate::service::FieldErrors;
use crate::service::grants::refused_grants;
use crate::service::repo::{self, groups::ADMINISTRATORS};

/// What a list links: one side of the links between users, groups and roles. The ID may be
/// that of a user or group not stored yet (an Add form), which links nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Links<'a> {
    /// The groups a user belongs to (the user's page, the Add user form).
    GroupsOfUser(&'a str),
    /// The people in a group (the group's page).
    MembersOfGroup(&'a str),
    /// The roles a group gives its members (the group's page).
    RolesOfGroup(&'a str),
}

impl Links<'_> {
    /// The form field the list is posted as; its messages are shown under it.
    fn field(self) -> &'static str {
        match self {
            Links::GroupsOfUser(_) => "groups",
            Links::MembersOfGroup(_) => "members",
            Links::RolesOfGroup(_) => "roles",
        }
    }

    /// The message when a chosen entry was deleted while the form was open.
    fn gone(self) -> &'static str {
        match self {
            Links::GroupsOfUser(_) => "One of the chosen groups no longer exists. Choose again.",
            Links::MembersOfGroup(_) => "One of the chosen users no longer exists. Choose again.",
            Links::RolesOfGroup(_) => "One of the chosen roles no longer exists. Choose again.",
        }
    }

    /// What is linked now.
    async fn current(self, conn: &mut AnyConnection) -> sqlx::Result<Vec<String>> {
        match self {
            Links::GroupsOfUser(user) => repo::groups::groups_of(conn, user).await,
            Links::MembersOfGroup(group) => repo::groups::member_ids(conn, group).await,
            Links::RolesOfGroup(group) => repo::groups::role_ids(conn, group).await,
        }
    }

    /// The message when saving would leave Administrators without a member who can sign in.
    fn no_administrator_left(self) -> &'static str {
        match self {
            Links::GroupsOfUser(_) => {
                "Administrators must keep at least one active member; add another administrator \
                 first."
            }
            _ => "Administrators must keep at least one active member.",
        }
    }

    /// What the entries of the list are.
    fn entries(self) -> Entries {
        match self {
            Links::GroupsOfUser(_) => Entries::Groups,
            Links::MembersOfGroup(_) => Entries::Users,
            Links::RolesOfGroup(_) => Entries::Roles,
        }
    }
}

/// What the entries of a list are: the other side of its links.
#[derive(Debug, Clone, Copy)]
enum Entries {
    Users,
    Groups,
    Roles,
}

impl Entries {
    /// Every entry, as (ID, label), in the order a page shows them.
    async fn offered(self, conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
        Ok(match self {
            Entries::Users => repo::users::list(conn)
                .await?
                .into_iter()
                .map(|u| (u.id, format!("{} ({})", u.name, u.email)))
                .collect(),
            Entries::Groups => repo::groups::list(conn)
                .await?
                .into_iter()
                .map(|g| (g.id, g.name))
                .collect(),
            Entries::Roles => repo::roles::list(conn)
                .await?
                .into_iter()
                .map(|r| (r.id, r.name))
                .collect(),
        })
    }

    /// The ID of every entry.
    async fn known(self, conn: &mut AnyConnection) -> sqlx::Result<BTreeSet<String>> {
        let ids = match self {
            Entries::Users => repo::users::ids(conn).await?,
            Entries::Groups => repo::groups::ids(conn).await?,
            Entries::Roles => repo::roles::ids(conn).await?,
        };
        Ok(ids.into_iter().collect())
    }

    /// The entries among `ids`, as (ID, label).
    async fn named(
        self,
        conn: &mut AnyConnection,
        ids: &[&str],
    ) -> sqlx::Result<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .offered(conn)
            .await?
            .into_iter()
            .filter(|(id, _)| ids.contains(&id.as_str()))
            .collect())
    }
}

/// The IDs chosen in a checkbox list: blanks dropped, each once, sorted.
pub(super) fn chosen(ids: &[String]) -> BTreeSet<String> {
    ids.iter().filter(|i| !i.is_empty()).cloned().collect()
}

/// An entry of a checkbox list: what it is, how it is shown, and whether it is ticked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub label: String,
    pub chosen: bool,
}

/// Every entry a list offers, ticked as `form` says (the form's choice, when it comes back with
/// messages) or else as linked now.
pub(super) async fn choices(
    conn: &mut AnyConnection,
    links: Links<'_>,
    form: Option<&[String]>,
) -> sqlx::Result<Vec<Choice>> {
    let ticked = match form {
        Some(ids) => chosen(ids),
        None => links.current(conn).await?.into_iter().collect(),
    };
    Ok(links
        .entries()
        .offered(conn)
        .await?
        .into_iter()
        .map(|(id, label)| Choice {
            chosen: ticked.contains(&id),
            id,
            label,
        })
        .collect())
}

/// One list being saved: what it links now and what the form asks for.
pub(super) struct Edit<'a> {
    links: Links<'a>,
    current: BTreeSet<String>,
    wanted: BTreeSet<String>,
}

impl<'a> Edit<'a> {
    /// The list of something stored: what it links now is read in the caller's transaction.
    pub(super) async fn load(
        conn: &mut AnyConnection,
        links: Links<'a>,
        form: &[String],
    ) -> sqlx::Result<Self> {
        let current = links.current(conn).await?.into_iter().collect();
        Ok(Self {
            links,
            current,
            wanted: chosen(form),
        })
    }

    /// The list of something being created: it links nothing yet.
    pub(super) fn fresh(links: Links<'a>, form: &[String]) -> Self {
        Self {
            links,
            current: BTreeSet::new(),
            wanted: chosen(form),
        }
    }

    /// What the list links once saved.
    pub(super) fn wanted(&self) -> &BTreeSet<String> {
        &self.wanted
    }

    /// Whether saving changes anything.
    pub(super) fn changes(&self) -> bool {
        self.wanted != self.current
    }

    /// Keeps what is linked now whatever the form asked (the built-in group's role).
    pub(super) fn keep_current(&mut self) {
        self.wanted = self.current.clone();
    }

    fn added(&self) -> impl Iterator<Item = &str> {
        self.wanted.difference(&self.current).map(String::as_str)
    }

    fn removed(&self) -> impl Iterator<Item = &str> {
        self.current.difference(&self.wanted).map(String::as_str)
    }

    /// Adds the list's messages to `errors`: a chosen entry that no longer exists, what the
    /// actor may not give or take, and Administrators left without a member who can sign in.
    pub(super) async fn check(
        &self,
        conn: &mut AnyConnection,
        actor: &Actor,
        errors: &mut FieldErrors,
    ) -> Result<(), AppError> {
        let field = self.links.field();
        let known = self.links.entries().known(conn).await?;
        if !self.wanted.is_subset(&known) {
            errors.add(field, self.links.gone());
        }
        self.check_grants(conn, actor, errors).await?;
        if self.empties_administrators(conn).await? {
            errors.add(field, self.links.no_administrator_left());
        }
        Ok(())
    }

    /// The groups this list puts someone in and takes someone out of (member lists only).
    fn groups_changed(&self) -> (Vec<&str>, Vec<&str>) {
        match self.links {
            Links::GroupsOfUser(_) => (self.added().collect(), self.removed().collect()),
            Links::MembersOfGroup(group) => (
                self.added().take(1).map(|_| group).collect(),
                self.removed().take(1).map(|_| group).collect(),
            ),
            Links::RolesOfGroup(_) => (Vec::new(), Vec::new()),
        }
    }

    /// SPEC §11: only groups and roles whose permissions the actor holds are given, and only an
    /// administrator gives Administrators or Tenant Administrator, or takes anyone out of
    /// Administrators.
    async fn check_grants(
        &self,
        conn: &mut AnyConnection,
        actor: &Actor,
        errors: &mut FieldErrors,
    ) -> Result<(), AppError> {
        let field = self.links.field();
        let (given_roles, (given_groups, taken)) = match self.links {
            Links::RolesOfGroup(_) => (self.added().collect(), (Vec::new(), Vec::new())),
            _ => (Vec::new(), self.groups_changed()),
        };
        if taken.contains(&ADMINISTRATORS) && !actor.is_admin {
            errors.add(
                field,
                "Only an administrator can take someone out of the Administrators group.",
            );
        }
        if given_roles.is_empty() && given_groups.is_empty() {
            return Ok(());
        }
        let roles = Entries::Roles.named(conn, &given_roles).await?;
        let groups = Entries::Groups.named(conn, &given_groups).await?;
        let map = repo::keys::load_access_map(conn).await?;
        for (_, message) in refused_grants(&map, actor, &roles, &groups) {
            errors.add(field, message);
        }
        Ok(())
    }

    /// Whether saving would leave Administrators without a member who can sign in: a user's
    /// list that takes out the last one, or Administrators' own list without one.
    async fn empties_administrators(&self, conn: &mut AnyConnection) -> sqlx::Result<bool> {
        match self.links {
            Links::GroupsOfUser(user) if self.removed().any(|g| g == ADMINISTRATORS) => {
                let able = repo::groups::members_who_can_sign_in(conn, ADMINISTRATORS).await?;
                Ok(able.len() <= 1 && able.iter().any(|u| u == user))
            }
            Links::MembersOfGroup(ADMINISTRATORS) => {
                let able: BTreeSet<String> = repo::users::ids_who_can_sign_in(conn)
                    .await?
                    .into_iter()
                    .collect();
                Ok(self.wanted.is_disjoint(&able))
            }
            _ => Ok(false),
        }
    }

    /// Writes the change in the caller's transaction and leaves a bell notice for each person
    /// it concerns: whoever joins or leaves a group; every member of a group whose roles
    /// change (its members as they are once a members list saved before this one).
    pub(super) async fn apply(&self, conn: &mut AnyConnection, now: i64) -> sqlx::Result<()> {
        match self.links {
            Links::GroupsOfUser(user) => self.apply_members(conn, now, |group| (group, user)).await,
            Links::MembersOfGroup(group) => {
                self.apply_members(conn, now, |user| (group, user)).await
            }
            Links::RolesOfGroup(group) => self.apply_roles(conn, group, now).await,
        }
    }

    /// Adds and removes members; `pair` turns an entry of the list into (group, user).
    async fn apply_members<'s>(
        &'s self,
        conn: &mut AnyConnection,
        now: i64,
        pair: impl Fn(&'s str) -> (&'s str, &'s str),
    ) -> sqlx::Result<()> {
        let names: HashMap<String, String> =
            Entries::Groups.offered(conn).await?.into_iter().collect();
        let joins = self.added().map(|other| (other, true));
        let leaves = self.removed().map(|other| (other, false));
        for (other, joined) in joins.chain(leaves) {
            let (group, user) = pair(other);
            if joined {
                repo::groups::add_member(conn, group, user, now).await?;
            } else {
                repo::groups::remove_member(conn, group, user).await?;
            }
            notify_membership(conn, user, &names[group], joined, now).await?;
        }
        Ok(())
    }

    /// Gives and takes roles; every member is told when they changed.
    async fn apply_roles(
        &self,
        conn: &mut AnyConnection,
        group: &str,
        now: i64,
    ) -> sqlx::Result<()> {
        if !self.changes() {
            return Ok(());
        }
        for role in self.added() {
            repo::groups::add_role(conn, group, role).await?;
        }
        for role in self.removed() {
            repo::groups::remove_role(conn, group, role).await?;
        }
        let members: BTreeSet<String> = repo::groups::member_ids(conn, group)
            .await?
            .into_iter()
            .collect();
        let Some(found) = repo::groups::find(conn, group).await? else {
            return Ok(());
        };
        let title = format!("The roles of the group “{}” changed", found.name);
        for member in &members {
            repo::notifications::insert(
                conn,
                member,
                now,
                "group.roles_changed",
                &title,
                "Your permissions follow your groups' roles.",
                "/my/keys",
            )
            .await?;
        }
        Ok(())
    }
}

/// A bell notice to a person who joined or left a group.
pub(super) async fn notify_membership(
    conn: &mut AnyConnection,
    user_id: &str,
    group_name: &str,
    joined: bool,
    now: i64,
) -> sqlx::Result<()> {
    let (kind, title) = if joined {
        (
            "group.member_added",
            format!("You were added to the group “{group_name}”"),
        )
    } else {
        (
            "group.member_removed",
            format!("You were removed from the group “{group_name}”"),
        )
    };
    let body = "Your permissions, and those of your personal keys, follow your groups' roles.";
    repo::notifications::insert(conn, user_id, now, kind, &title, body, "/my/keys").await
}
