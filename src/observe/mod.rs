//! What the server counts and logs: the event lines every layer writes
//! (`log`), the access log, the panic report, the events that are both
//! counted and logged, and the figures (`metrics`: per-worker slots, the
//! hooks a worker calls, the listen queue).

pub(crate) mod access_log;
pub(crate) mod events;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod panic_report;
