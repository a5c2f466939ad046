//! The subject-rights room (empty for now): access and export, erasure with crypto-shredding
//! and a signed receipt, rectification, restriction, and requests with legal deadlines.
//!
//! What goes here: the use cases, each reading behavioural data only through the store's
//! permit-taking reads or, for export and erasure, through the dedicated store calls that the
//! rights room owns. The pure rules (what is erased, what is kept under a legal obligation,
//! deadline arithmetic) go in the domain crate.
