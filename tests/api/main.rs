//! Integration tests: the real server on a random port, a real database (SQLite, or PostgreSQL
//! when `KEYWARD_TEST_DATABASE_URL` is set), a real HTTP client. One binary, one module per
//! capability.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod account;
mod addresses;
mod anonymous;
mod api_list;
mod audit;
mod authz;
mod cli;
mod console_permissions;
mod csrf;
mod delivery;
mod edge;
mod expiry;
mod export;
mod exposed;
mod exposure;
mod factors;
mod files;
mod frame;
mod health;
mod key_cache;
mod key_lookup;
mod key_policy;
mod key_transactions;
mod keys;
mod logging;
mod mail;
mod memberships;
mod passkeys;
mod password_reset;
mod people;
mod rate_limit_leases;
mod rate_limits;
mod rest;
mod retention;
mod schema;
mod sealing;
mod secret_keys;
mod session_list;
mod sessions;
mod setup;
mod sign_in;
mod step_up;
mod transactions;
mod tripwire;
mod usage;
mod usage_pictures;
mod webhooks;
mod wrong_secrets;
