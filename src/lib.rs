//! keyward: a self-hosted service and web console for the credentials programs use to reach an API.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod files;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
