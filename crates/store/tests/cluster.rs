//! The cluster lock that once-per-cluster jobs take: one holder at a time on PostgreSQL, freed
//! by release or by dropping it; always granted on the embedded store (one node).

use candor_store::testing::TestDb;
use candor_store::{Backend, both_stores};

both_stores!(
    one_node_at_a_time_holds_a_cluster_lock,
    |db: TestDb| async move {
        let (a, b) = (db.store().await.unwrap(), db.store().await.unwrap());
        let held = a
            .try_cluster_lock("retention")
            .await
            .unwrap()
            .expect("free");
        let other = b.try_cluster_lock("retention").await.unwrap();
        match db.backend() {
            // Two stores on one PostgreSQL database are two nodes: the second must wait.
            Backend::Postgres => assert!(other.is_none(), "two nodes held one job's lock"),
            // One SQLite file has one node.
            Backend::Sqlite => assert!(other.is_some()),
        }
        drop(other);
        // Another job's lock is independent.
        let training = b.try_cluster_lock("training").await.unwrap();
        assert!(training.is_some());
        training.unwrap().release().await.unwrap();
        held.release().await.unwrap();
        let again = b.try_cluster_lock("retention").await.unwrap();
        assert!(again.is_some(), "a released lock is free again");
        // A lock dropped without release (a cancelled job) is freed too: its session closes.
        drop(again);
        let mut freed = None;
        for _ in 0..50 {
            freed = a.try_cluster_lock("retention").await.unwrap();
            if freed.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(freed.is_some(), "a dropped lock stayed held");
        freed.unwrap().release().await.unwrap();
        a.close().await;
        b.close().await;
    }
);
