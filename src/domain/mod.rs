//! Pure types and rules, no I/O: each `parse` returns the value or a message for the person who typed it.

mod actor;
mod device;
mod email;
mod key;
mod key_details;
pub mod networks;
mod password;
mod permission;
pub mod rate_limit;
mod text;

pub use actor::{Actor, Missing};
pub use device::device_label;
pub use email::Email;
pub use key::{
    BridgeClientId, KeyId, KeyName, KeyStatus, KeyType, SECRET_LEN, Secret, is_system_key_name,
    mail as key_mail,
};
pub use key_details::{DecidedBy, KeyDetails, KeyOwner, LastUse};
pub use password::{NewPassword, PASSWORD_MAX, PASSWORD_MIN};
pub use permission::Permission;
pub use rate_limit::RateLimit;
pub use text::{PersonName, TenantId};
