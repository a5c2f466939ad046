//! The journeys room: journey definitions (API and file), entering subjects on their trigger
//! events, and the job that walks each subject through the steps, checking every boundary of a
//! message at the moment it would be sent.
//!
//! Invariants:
//! - A definition is validated by the domain (`JourneyDefinition::validate`) against the
//!   channels that have a declared consent purpose before it is stored (audited).
//! - Conditions read the person's behaviour only with a permit for the journey's purpose, and
//!   not at all at level `off`; a message goes out only with a permit for its channel's purpose,
//!   asked at send time (`domain::journey::decide_send`), so a revocation holds from the very
//!   next run.
//! - A subject's position is stored after every step that sends, defers, suppresses or waits,
//!   in the same transaction as the message and its outbox rows: a restart resumes where the
//!   store says and sends nothing twice.
//! - Runs are serialized on a node (one lock) and across nodes (the job's cluster lock).

mod define;
mod run;

use std::sync::{Arc, RwLock};

use candor_domain::journey::JourneyDefinition;

pub use define::JourneyInfo;
pub use run::JourneyRun;

/// What the room keeps: the active definitions, and the lock that serializes runs.
pub(crate) struct JourneysRoom {
    active: RwLock<Arc<Vec<Arc<JourneyDefinition>>>>,
    running: tokio::sync::Mutex<()>,
}

impl JourneysRoom {
    pub(crate) fn new() -> Self {
        JourneysRoom {
            active: RwLock::default(),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

impl crate::App {
    /// Advances due positions, on one node of the cluster at a time.
    pub(crate) fn journey_job(&self) -> Option<crate::scheduler::Job> {
        let j = &self.config.journeys;
        j.enabled.then(|| {
            crate::scheduler::Job::new(
                "journeys",
                std::time::Duration::from_millis(j.tick_ms),
                crate::scheduler::Reach::OncePerCluster,
                |app| async move {
                    let run = app.run_journeys().await?;
                    Ok(if run.steps == 0 {
                        String::new()
                    } else {
                        format!(
                            "{} steps: {} sent, {} deferred, {} suppressed",
                            run.steps, run.sent, run.deferred, run.suppressed
                        )
                    })
                },
            )
        })
    }

    pub(crate) fn active_journeys(&self) -> Arc<Vec<Arc<JourneyDefinition>>> {
        self.journeys.active.read().expect("journeys lock").clone()
    }
}
