//! Every rule and every write, once: the HTML console and (later) the REST API call these.

pub mod accounts;
pub mod audit;
pub mod bootstrap;
pub mod throttle;
