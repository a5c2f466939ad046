//! The access room: API keys and their scopes.
//!
//! Invariants: keys are stored only as SHA-256 digests and looked up in an in-memory map that is
//! reloaded on every key change (locally at once, on other nodes at the change notification).
//! A secret is shown once, when the key is created.

mod keys;
pub mod links;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use keys::{CreatedKey, KeyInfo};

pub(crate) struct AccessRoom {
    keys: RwLock<Arc<HashMap<String, KeyInfo>>>,
    links: links::LinkKeys,
}

impl AccessRoom {
    pub(crate) fn new(master: &candor_domain::envelope::SecretKey, link_key_id: u32) -> Self {
        AccessRoom {
            keys: RwLock::default(),
            links: links::LinkKeys::new(master, link_key_id),
        }
    }
}
