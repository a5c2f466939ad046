//! The private-analytics room (empty for now): differentially private aggregate reports with a
//! persistent, hash-chained privacy budget per analyst, small-cell suppression on noisy outputs,
//! and the transparency report.
//!
//! What goes here: the use cases and the budget ledger's bookkeeping. The mechanisms belong in
//! a pure engine crate that takes its randomness as an argument, as the domain crate does.
