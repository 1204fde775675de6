//! Browser tests: Debian's Chromium, headless, driven through chromedriver over WebDriver, against
//! the real server. Each flow saves screenshots under `target/screens/` to be looked at.

#[path = "../common/mod.rs"]
mod common;

mod account;
mod addresses;
mod api_access;
mod driver;
mod export;
mod exposed;
mod factors;
mod flows;
mod key_policy;
mod keys;
mod layout;
mod passkeys;
mod people;
mod permissions;
mod rate_limits;
mod step_up;
mod usage;
