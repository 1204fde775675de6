//! What the page frame (top bar, menus) needs: the signed-in user, what they may open, the
//! unread count, the CSRF token for the sign-out form, and which section is current.

use crate::web::asset_url;
use crate::web::current_user::CurrentUser;

/// The top bar and layout data of every signed-in page.
pub struct Frame {
    pub user_name: String,
    pub user_email: String,
    /// The person's permissions (the union of their roles), to show only what they may open.
    pub permissions: Vec<String>,
    pub unread: i64,
    pub csrf: String,
    /// The current section, for `aria-current`: "keys", "users", "api-access", "my-keys", …
    pub section: &'static str,
    pub css: String,
    pub js: String,
    pub icon: String,
}

impl Frame {
    /// The frame for `user` on a page of `section`.
    pub fn new(user: &CurrentUser, section: &'static str) -> Self {
        Self {
            user_name: user.name.clone(),
            user_email: user.email.clone(),
            permissions: user.permissions.clone(),
            unread: user.unread_notifications,
            csrf: user.csrf.clone(),
            section,
            css: asset_url("app.css"),
            js: asset_url("app.js"),
            icon: asset_url("favicon.svg"),
        }
    }

    /// Whether the person holds a permission (`"keys:write"`): the menu and the controls that
    /// change things show only when it is held. The handlers check the same permission.
    pub fn may(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Where "Users and keys" in the menu leads: the Access keys tab for those who may see
    /// keys, else the Users tab; `None` when they may see neither.
    pub fn users_and_keys(&self) -> Option<&'static str> {
        if self.may("keys:read") {
            Some("/user-access/keys")
        } else if self.may("users:read") {
            Some("/user-access/users")
        } else {
            None
        }
    }

    /// The bell's accessible label.
    pub fn bell_label(&self) -> String {
        match self.unread {
            0 => "Notifications, none unread".to_string(),
            1 => "Notifications, 1 unread".to_string(),
            n => format!("Notifications, {n} unread"),
        }
    }

    /// The badge text (capped so the bell stays small).
    pub fn badge(&self) -> String {
        if self.unread > 99 {
            "99+".into()
        } else {
            self.unread.to_string()
        }
    }

    /// The user's initials for the avatar.
    pub fn initials(&self) -> String {
        let mut parts = self.user_name.split_whitespace();
        let first = parts.next().and_then(|p| p.chars().next());
        let last = parts.last().and_then(|p| p.chars().next());
        [first, last]
            .into_iter()
            .flatten()
            .flat_map(char::to_uppercase)
            .collect()
    }

    /// `aria-current="page"` for the current section's link.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}
