//! Test helpers shared by every crate's tests (feature `testing`): a temporary directory, a
//! test configuration on a throwaway database, purpose fixtures, and the store itself for tests
//! that inspect or tamper with stored rows.
//!
//! Nothing here is reachable from the server binary: the feature is enabled only by
//! dev-dependencies and the benchmarks.

use std::path::Path;

use candor_domain::PurposeDraft;
use candor_store::Store;
pub use candor_store::testing::TempDir;
use candor_store::testing::TestDb;

use crate::App;
use crate::config::{Config, Secret};

/// A configuration for a test node on `db`, with its data directory in `dir` and fixed keys,
/// so that several nodes on one database agree on pseudonyms and data keys.
pub fn config(db: &TestDb, dir: &Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        database_url: db.url.clone(),
        ..Config::default()
    };
    c.privacy.pseudonymization_key =
        Some(Secret::new("test-pseudonymization-key-0123456789abcdef"));
    c.privacy.master_key = Some(Secret::new(
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ));
    c.server.max_body_bytes = 64 * 1024;
    c.webhooks.poll_interval_ms = 20;
    // Most tests train and serve at once; the review queue's own tests turn review back on.
    c.review.model_activation = candor_domain::review::RuleMode::Apply;
    c
}

/// A consent purpose named `id` that may use `categories`.
pub fn purpose(id: &str, categories: &[&str]) -> PurposeDraft {
    PurposeDraft {
        id: id.into(),
        title: format!("Purpose {id}"),
        description: format!("What {id} does with your data, in plain words."),
        legal_basis: "consent".into(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    }
}

/// The usual personalization purpose of tests: browsing, purchases and declared preferences.
pub fn personalization() -> PurposeDraft {
    PurposeDraft {
        person_level: true,
        ..purpose(
            "personalization",
            &["browsing", "purchase", "declared_preference"],
        )
    }
}

impl App {
    /// The store under this node, for tests that inspect or tamper with stored rows.
    pub fn raw_store(&self) -> &Store {
        &self.store
    }

    /// The subject's item events that the recommendation purpose may use now (none without
    /// its permit), read as serving reads them.
    pub async fn permitted_item_events(
        &self,
        subject: &candor_domain::SubjectKey,
        limit: i64,
    ) -> crate::Result<Vec<candor_store::ItemEvent>> {
        let purposes = self.purposes();
        let Some(purpose) = purposes.get(&candor_domain::PurposeId::parse(
            &self.config.recommend.purpose,
        )?) else {
            return Ok(Vec::new());
        };
        match self.permit_and_status(subject, purpose).await?.0 {
            Some(permit) => Ok(self.store.item_events(&permit, limit).await?),
            None => Ok(Vec::new()),
        }
    }
}
