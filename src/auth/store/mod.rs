//! The tables authentication keeps itself: the console's sessions, and the settings rows the
//! vault lives in (its check value, sealed hash key and version; the tenant ID sits beside them).
//! The rest of the SQL is `service`'s private `repo`.

pub mod sessions;
pub mod settings;
