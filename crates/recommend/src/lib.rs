//! # candor-recommend: the recommendation engine core
//!
//! A pure library: it fits models on an interaction matrix the caller has already restricted
//! to consented data, scores items for a subject, reads and writes model files, and evaluates
//! models offline under protocol EVAL-1. The server and the CLI are thin shells over it.
//!
//! ## Architecture invariants
//! - No HTTP, no SQL, no global state. The only file I/O is [`data`] (reading the EVAL-1 data
//!   sets), [`split::Split::write_tsv_file`] and [`codec::ModelFile::save`]/`load`.
//! - This crate never decides consent: callers pass only consented data to `fit`, and the
//!   caller's consent decision and personalization level to [`serve`]. Within [`serve`] the
//!   serving order is enforced (level, sensitive categories, owned items, then re-ranking).
//! - Fitting is deterministic for a given seed whatever the thread count; parallel work runs
//!   on the caller's rayon pool.
//! - Item indices are dense `u32` columns of the training matrix; external ids live in
//!   [`codec::ModelMeta::item_ids`].
//!
//! ## Entry points
//! - Train: [`matrix::Interactions::from_rows`] then [`models::ItemKnn::fit`],
//!   [`models::Als::fit`], [`models::Popularity::fit`], [`models::ContentModel::fit`]; wrap in
//!   [`codec::ModelFile::new`] and `save`.
//! - Load: [`codec::ModelFile::load`] (refuses corrupt files).
//! - Serve: [`serve::Engine`] (filters, diversity, explanations) or the bare
//!   [`models::recommend`].
//! - Evaluate: [`data::Dataset::load`], [`split::eval1_split`], [`eval::run_model`].

pub mod codec;
pub mod constraints;
pub mod data;
pub mod error;
pub mod eval;
mod kernels;
pub mod matrix;
pub mod metrics;
pub mod models;
mod rng;
pub mod select;
pub mod serve;
pub mod split;

pub use error::{RecError, Result};
