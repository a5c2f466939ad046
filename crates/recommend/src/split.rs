//! The EVAL-1 split.
//!
//! Rule (docs/RECOMMENDATIONS.md, "Protocol EVAL-1"): per user, sort by (timestamp, item id as a
//! string); `n_test = floor(0.2 * n)`; the last `n_test` go to test. Test items that occur in no
//! user's train part are dropped (`test_dropped`); users left with no test item are not evaluated.
//! Users and train items are indexed in ascending byte order of their ids, which is the order
//! `peer_eval1.py` uses, so "ties broken by item index" means "ties broken by item id string".

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::data::Interaction;
use crate::error::{RecError, Result};
use crate::matrix::Interactions;

/// Which side of the split a row fell on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
    TestDropped,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "test",
            Part::TestDropped => "test_dropped",
        }
    }
}

/// The split of one data set, with the training matrix built.
#[derive(Debug, Clone)]
pub struct Split {
    /// Every interaction, sorted by (user, timestamp, item), with its part.
    pub rows: Vec<(Interaction, Part)>,
    /// All user ids, ascending; row `u` of `train` is `users[u]`.
    pub users: Vec<String>,
    /// Items that occur in train, ascending; column `i` of `train` is `items[i]`.
    pub items: Vec<String>,
    /// users x train items, each row oldest first.
    pub train: Interactions,
    /// Train timestamps aligned with `train` rows (same order), for recency-aware models.
    pub train_ts: Vec<Vec<i64>>,
    /// Test item indices per user (sorted, distinct); empty for users not evaluated.
    pub test: Vec<Vec<u32>>,
    /// Users with at least one test item, ascending.
    pub eval_users: Vec<u32>,
}

/// Applies EVAL-1 to a set of interactions.
pub fn eval1_split(mut data: Vec<Interaction>) -> Result<Split> {
    if data.is_empty() {
        return Err(RecError::Invalid("no interactions to split".into()));
    }
    data.sort_by(|a, b| (&a.user, a.ts, &a.item).cmp(&(&b.user, b.ts, &b.item)));
    let mut parts = vec![Part::Train; data.len()];
    let mut start = 0;
    while start < data.len() {
        let mut end = start + 1;
        while end < data.len() && data[end].user == data[start].user {
            end += 1;
        }
        let n = end - start;
        // floor(0.2 * n) computed in integers: n / 5 (identical for every n >= 0).
        let n_test = n / 5;
        for p in &mut parts[end - n_test..end] {
            *p = Part::Test;
        }
        start = end;
    }
    let mut items: Vec<&str> = data
        .iter()
        .zip(&parts)
        .filter(|(_, p)| **p == Part::Train)
        .map(|(r, _)| r.item.as_str())
        .collect();
    items.sort_unstable();
    items.dedup();
    let item_idx: HashMap<&str, u32> = items
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let mut users: Vec<String> = Vec::new();
    let mut train_rows: Vec<Vec<u32>> = Vec::new();
    let mut train_ts: Vec<Vec<i64>> = Vec::new();
    let mut test: Vec<Vec<u32>> = Vec::new();
    for (r, p) in data.iter().zip(parts.iter_mut()) {
        if users.last() != Some(&r.user) {
            users.push(r.user.clone());
            train_rows.push(Vec::new());
            train_ts.push(Vec::new());
            test.push(Vec::new());
        }
        let u = users.len() - 1;
        match (*p, item_idx.get(r.item.as_str())) {
            (Part::Train, Some(&i)) => {
                if !train_rows[u].contains(&i) {
                    train_rows[u].push(i);
                    train_ts[u].push(r.ts);
                }
            }
            (Part::Test, Some(&i)) => test[u].push(i),
            (Part::Test, None) => *p = Part::TestDropped,
            (Part::Train, None) | (Part::TestDropped, _) => unreachable!("train items are indexed"),
        }
    }
    for t in &mut test {
        t.sort_unstable();
        t.dedup();
    }
    let eval_users = (0..users.len() as u32)
        .filter(|&u| !test[u as usize].is_empty())
        .collect();
    let items: Vec<String> = items.into_iter().map(str::to_owned).collect();
    let train = Interactions::from_rows(items.len(), &train_rows)?;
    Ok(Split {
        rows: data.into_iter().zip(parts).collect(),
        users,
        items,
        train,
        train_ts,
        test,
        eval_users,
    })
}

impl Split {
    /// Writes `user item timestamp split` as TSV with a header, in (user, timestamp, item)
    /// order: byte-identical to `peer_eval1.py --dump-split`.
    pub fn write_tsv(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "user\titem\ttimestamp\tsplit")?;
        for (r, p) in &self.rows {
            writeln!(w, "{}\t{}\t{}\t{}", r.user, r.item, r.ts, p.as_str())?;
        }
        Ok(())
    }

    /// Writes the split to a file (see [`Split::write_tsv`]).
    pub fn write_tsv_file(&self, path: &Path) -> Result<()> {
        let f = std::fs::File::create(path).map_err(|e| RecError::io(path, e))?;
        let mut w = std::io::BufWriter::new(f);
        self.write_tsv(&mut w)
            .and_then(|()| w.flush())
            .map_err(|e| RecError::io(path, e))
    }

    /// Counts for reports: (train rows, test rows kept, test rows dropped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for (_, p) in &self.rows {
            match p {
                Part::Train => c.0 += 1,
                Part::Test => c.1 += 1,
                Part::TestDropped => c.2 += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(u: &str, i: &str, ts: i64) -> Interaction {
        Interaction {
            user: u.into(),
            item: i.into(),
            ts,
        }
    }

    #[test]
    fn split_rules_hand_checked() {
        // user a: 5 interactions -> 1 test (the latest; tie at ts=5 broken by item string: "x" < "y")
        // user b: 4 interactions -> floor(0.8) = 0 test, not evaluated
        // user c: 5 interactions, its test item "z" occurs in no train row -> dropped, not evaluated
        let data = vec![
            ev("a", "p", 1),
            ev("a", "q", 2),
            ev("a", "r", 3),
            ev("a", "y", 5),
            ev("a", "x", 5),
            ev("b", "p", 1),
            ev("b", "q", 1),
            ev("b", "y", 1),
            ev("b", "r", 1),
            ev("c", "p", 1),
            ev("c", "q", 2),
            ev("c", "r", 3),
            ev("c", "s", 4),
            ev("c", "z", 9),
        ];
        let s = eval1_split(data).unwrap();
        assert_eq!(s.users, ["a", "b", "c"]);
        assert_eq!(s.items, ["p", "q", "r", "s", "x", "y"]);
        let part_of = |u: &str, i: &str| {
            s.rows
                .iter()
                .find(|(r, _)| r.user == u && r.item == i)
                .unwrap()
                .1
        };
        assert_eq!(part_of("a", "y"), Part::Test);
        assert_eq!(part_of("a", "x"), Part::Train);
        assert_eq!(part_of("c", "z"), Part::TestDropped);
        assert_eq!(s.test, vec![vec![5], vec![], vec![]]);
        assert_eq!(s.eval_users, vec![0]);
        // a's history is oldest first; b's equal timestamps are ordered by item string
        assert_eq!(s.train.row(0), &[0, 1, 2, 4]);
        assert_eq!(s.train.row(1), &[0, 1, 2, 5]);
        let mut tsv = Vec::new();
        s.write_tsv(&mut tsv).unwrap();
        let tsv = String::from_utf8(tsv).unwrap();
        assert!(tsv.starts_with("user\titem\ttimestamp\tsplit\na\tp\t1\ttrain\n"));
        assert!(tsv.contains("a\tx\t5\ttrain\na\ty\t5\ttest\n"));
        assert!(tsv.ends_with("c\tz\t9\ttest_dropped\n"));
        assert_eq!(s.counts(), (12, 1, 1));
    }
}
