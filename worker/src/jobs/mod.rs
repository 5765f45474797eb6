//! Job handlers, one module per queue.

pub mod count_usage;
pub mod run_agent;
