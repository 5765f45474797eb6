//! Job handlers, one module per queue.

pub mod count_usage;
