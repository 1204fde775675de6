//! Pure types and rules, no I/O: each `parse` returns the value or a message for the person who typed it.

mod email;
mod password;
mod permission;
mod text;

pub use email::Email;
pub use password::{NewPassword, PASSWORD_MAX, PASSWORD_MIN};
pub use permission::Permission;
pub use text::{PersonName, TenantId};
