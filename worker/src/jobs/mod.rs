//! Job handlers, one module per queue.

pub mod count_usage;
pub mod deliver_webhook;
pub mod run_agent;
