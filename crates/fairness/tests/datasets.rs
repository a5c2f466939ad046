//! Audits on the real shared data sets (UCI Adult, MovieLens 100K), read in place from
//! `$CANDOR_SHARED_DATA` or `../shared/data` beside the repository — never copied into it.
//!
//! Reference values were computed independently by `benches/fairness/crosscheck.py` (plain Python
//! arithmetic over the raw files, plus Fairlearn 0.15 `demographic_parity_difference` /
//! `equalized_odds_*`), run as `/tmp/fl/bin/python benches/fairness/crosscheck.py`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use candor_fairness::report::{DisparityMetric, Method, Slice};
use candor_fairness::{
    AuditOptions, Bootstrap, CatalogItem, Columns, CsvFormat, Decision, DecisionsBuilder,
    ProxyOptions, RecommendationList, associate, audit_csv, audit_decisions, audit_recommendations,
    reweighing,
};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CANDOR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    if dir.join("adult/adult.data").exists() {
        Some(dir)
    } else {
        eprintln!("shared data not found at {}; skipping", dir.display());
        None
    }
}

const ADULT_COLUMNS: [&str; 15] = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
];

fn close(v: Option<f64>, x: f64, tol: f64) {
    let got = v.unwrap_or_else(|| panic!("expected {x}, got null"));
    assert!((got - x).abs() < tol, "expected {x}, got {got}");
}

fn opts() -> AuditOptions {
    AuditOptions {
        bootstrap: Bootstrap {
            replicates: 200,
            ..Default::default()
        },
        threads: 2,
        ..Default::default()
    }
}

fn dp(s: &Slice, m: DisparityMetric, method: Method) -> &candor_fairness::report::Disparity {
    s.disparities
        .iter()
        .find(|d| d.metric == m && d.method == method)
        .unwrap()
}

#[test]
fn adult_csv_income_by_sex_with_proxies() {
    let Some(dir) = data_dir() else { return };
    let columns = Columns {
        group: vec!["sex".into()],
        prediction: "income".into(),
        positive: Some(">50K".into()),
        proxies: vec!["relationship".into(), "occupation".into()],
        ..Default::default()
    };
    let format = CsvFormat {
        has_header: false,
        column_names: ADULT_COLUMNS.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut o = opts();
    o.privileged = vec!["Male".into()];
    let r = audit_csv(&dir.join("adult/adult.data"), &columns, &format, &o).unwrap();
    assert_eq!(r.input.rows, 32561);
    let s = &r.slices[0];
    // crosscheck.py: base rate Female 0.10946058861758426, Male 0.3057365764111978.
    close(s.groups[0].selection_rate.value, 0.10946058861758426, 1e-12);
    close(s.groups[1].selection_rate.value, 0.3057365764111978, 1e-12);
    assert_eq!(s.groups[0].count, 10771);
    assert_eq!(s.four_fifths.failing_groups, vec!["Female"]);
    // crosscheck.py: Cramér's V relationship~sex 0.6490003367665136, NMI 0.25670840770105047;
    // occupation~sex V 0.42436448730827536.
    let rel = r
        .proxies
        .iter()
        .find(|p| p.feature == "relationship")
        .unwrap();
    close(rel.cramers_v.value, 0.6490003367665136, 1e-9);
    close(
        rel.normalized_mutual_information.value,
        0.25670840770105047,
        1e-9,
    );
    assert!(rel.strong);
    assert_eq!(r.proxies[0].feature, "relationship");
    let occ = r
        .proxies
        .iter()
        .find(|p| p.feature == "occupation")
        .unwrap();
    close(occ.cramers_v.value, 0.42436448730827536, 1e-9);
}

struct Adult {
    sex: Vec<String>,
    race: Vec<String>,
    pred: Vec<bool>,
    label: Vec<bool>,
    weight: Vec<f64>,
}

fn adult(dir: &std::path::Path) -> Adult {
    let text = std::fs::read_to_string(dir.join("adult/adult.data")).unwrap();
    let mut a = Adult {
        sex: vec![],
        race: vec![],
        pred: vec![],
        label: vec![],
        weight: vec![],
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 15 {
            continue;
        }
        a.sex.push(f[9].into());
        a.race.push(f[8].into());
        // A deliberately simple rule "model": degree-level education.
        a.pred.push(f[4].parse::<u32>().unwrap() >= 13);
        a.label.push(f[14] == ">50K");
        a.weight.push(f[2].parse().unwrap());
    }
    a
}

#[test]
fn adult_rule_model_matches_fairlearn_and_aif360_forms() {
    let Some(dir) = data_dir() else { return };
    let a = adult(&dir);
    let build = |weighted: bool| {
        let mut b = DecisionsBuilder::new(["sex", "race"]);
        for i in 0..a.sex.len() {
            b.push(&Decision {
                group: &[&a.sex[i], &a.race[i]],
                selected: a.pred[i],
                label: Some(a.label[i]),
                weight: weighted.then_some(a.weight[i]),
                ..Default::default()
            })
            .unwrap();
        }
        b.build()
    };
    let d = build(false);
    let mut o = opts();
    o.privileged = vec!["sex=Male".into()];
    let r = audit_decisions(&d, &o).unwrap();
    let sex = &r.slices[0];
    let (f, m) = (&sex.groups[0], &sex.groups[1]);
    // crosscheck.py (plain arithmetic).
    close(f.selection_rate.value, 0.21660012997864636, 1e-12);
    close(f.true_positive_rate.value, 0.5173876166242578, 1e-12);
    close(f.false_positive_rate.value, 0.17962885738115095, 1e-12);
    close(m.true_positive_rate.value, 0.49519663764635247, 1e-12);
    close(m.false_positive_rate.value, 0.1609598096245373, 1e-12);
    // Fairlearn: demographic_parity_difference(sex) 0.046548103155818976,
    // equalized_odds_difference(sex) 0.02219097897790534.
    close(
        dp(
            sex,
            DisparityMetric::DemographicParity,
            Method::BetweenGroups,
        )
        .difference
        .value,
        0.046548103155818976,
        1e-12,
    );
    close(
        dp(sex, DisparityMetric::EqualizedOdds, Method::BetweenGroups)
            .difference
            .value,
        0.02219097897790534,
        1e-12,
    );
    // AIF360 forms (privileged sex=Male), crosscheck.py.
    let p = sex.privileged.as_ref().unwrap();
    close(
        p.statistical_parity_difference.value,
        -0.046548103155818976,
        1e-12,
    );
    close(p.disparate_impact.value, 0.8231107136788811, 1e-12);
    close(
        p.equal_opportunity_difference.value,
        0.02219097897790534,
        1e-12,
    );
    close(p.average_odds_difference.value, 0.020430013367259497, 1e-12);
    // Intersection sex & race: Fairlearn dpd 0.3723394660894661 (between), 0.21833908987251946
    // (to_overall), equalized_odds_ratio 0.15824780689180665.
    let inter = &r.slices[2];
    assert_eq!(inter.attributes, vec!["sex", "race"]);
    assert_eq!(inter.groups.len(), 10);
    close(
        dp(
            inter,
            DisparityMetric::DemographicParity,
            Method::BetweenGroups,
        )
        .difference
        .value,
        0.3723394660894661,
        1e-12,
    );
    close(
        dp(inter, DisparityMetric::DemographicParity, Method::ToOverall)
            .difference
            .value,
        0.21833908987251946,
        1e-12,
    );
    close(
        dp(inter, DisparityMetric::EqualizedOdds, Method::BetweenGroups)
            .ratio
            .value,
        0.15824780689180665,
        1e-12,
    );
    // The privileged comparison also applies to the intersection slice (it covers `sex`).
    assert!(inter.privileged.is_some());
    assert!(r.slices[1].privileged.is_none());

    // Sample weights (fnlwgt): Fairlearn weighted dpd 0.047578423195193204; weighted selection
    // Female 0.21072654044096764.
    let rw = audit_decisions(&build(true), &opts()).unwrap();
    close(
        rw.slices[0].groups[0].selection_rate.value,
        0.21072654044096764,
        1e-12,
    );
    close(
        dp(
            &rw.slices[0],
            DisparityMetric::DemographicParity,
            Method::BetweenGroups,
        )
        .difference
        .value,
        0.047578423195193204,
        1e-12,
    );

    // Reweighing (AIF360 formula, crosscheck.py): unpriv/0 0.8525062819796572,
    // unpriv/1 2.1999658551748333, priv/0 1.093519284984871, priv/1 0.7876373846816078.
    let mut tl = DecisionsBuilder::new(["sex"]);
    for i in 0..a.sex.len() {
        tl.push(&Decision {
            group: &[&a.sex[i]],
            selected: a.label[i],
            label: Some(a.label[i]),
            ..Default::default()
        })
        .unwrap();
    }
    let rw = reweighing(&tl.build(), &["Male".into()]).unwrap();
    let cell = |g: &str, y: bool| {
        rw.cells
            .iter()
            .find(|c| c.group == g && c.label == y)
            .unwrap()
            .weight
    };
    close(Some(cell("unprivileged", false)), 0.8525062819796572, 1e-12);
    close(Some(cell("unprivileged", true)), 2.1999658551748333, 1e-12);
    close(Some(cell("privileged", false)), 1.093519284984871, 1e-12);
    close(Some(cell("privileged", true)), 0.7876373846816078, 1e-12);
}

#[test]
fn movielens_ratings_by_gender_age_and_popularity_recommender() {
    let Some(dir) = data_dir() else { return };
    let ml = dir.join("ml-100k");
    let users_text = std::fs::read(ml.join("u.user")).unwrap();
    let users_text = String::from_utf8_lossy(&users_text);
    let mut users: HashMap<u32, (String, String, String)> = HashMap::new();
    for l in users_text.lines() {
        let f: Vec<&str> = l.split('|').collect();
        let age: u32 = f[1].parse().unwrap();
        let band = match age {
            0..25 => "<25",
            25..35 => "25-34",
            35..45 => "35-44",
            _ => "45+",
        };
        users.insert(
            f[0].parse().unwrap(),
            (f[2].into(), band.into(), f[3].into()),
        );
    }
    let ratings: Vec<(u32, usize, u32)> = std::fs::read_to_string(ml.join("u.data"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    // Outcome audit: share of ratings that are "liked" (>= 4) by gender and age band.
    let mut b = DecisionsBuilder::new(["gender", "age_band"]);
    for &(u, _, r) in &ratings {
        let (g, band, _) = &users[&u];
        b.push(&Decision {
            group: &[g, band],
            selected: r >= 4,
            ..Default::default()
        })
        .unwrap();
    }
    let r = audit_decisions(&b.build(), &opts()).unwrap();
    // crosscheck.py: F 14278/25740, M 41097/74260.
    close(
        r.slices[0].groups[0].selection_rate.value,
        14278.0 / 25740.0,
        1e-12,
    );
    close(
        r.slices[0].groups[1].selection_rate.value,
        41097.0 / 74260.0,
        1e-12,
    );
    assert_eq!(r.slices[1].groups.len(), 4);
    assert_eq!(r.slices[2].groups.len(), 8);

    // Proxy: occupation vs gender over users, crosscheck.py V 0.37077488382189133,
    // NMI 0.04727393894006825.
    let (occ, gender): (Vec<&str>, Vec<&str>) =
        users.values().map(|u| (u.2.as_str(), u.0.as_str())).unzip();
    let a = associate(
        "occupation",
        &occ,
        "gender",
        &gender,
        &ProxyOptions {
            min_level_count: 1,
            ..Default::default()
        },
    );
    close(a.cramers_v.value, 0.37077488382189133, 1e-9);
    close(
        a.normalized_mutual_information.value,
        0.04727393894006825,
        1e-9,
    );

    // Popularity recommender: top 10 most-rated unseen items per user (ties by item id).
    let mut pop = vec![0usize; 1683];
    let mut seen: HashMap<u32, HashSet<usize>> = HashMap::new();
    for &(u, i, _) in &ratings {
        pop[i] += 1;
        seen.entry(u).or_default().insert(i);
    }
    let mut order: Vec<usize> = (1..=1682).collect();
    order.sort_by(|&a, &b| pop[b].cmp(&pop[a]).then(a.cmp(&b)));
    let catalog: Vec<CatalogItem> = (1..=1682)
        .map(|i| CatalogItem {
            id: i.to_string(),
            provider: if pop[i] >= 100 {
                "blockbuster".into()
            } else {
                "niche".into()
            },
            categories: vec![],
            premium: pop[i] >= 300,
            popularity: pop[i] as f64,
        })
        .collect();
    let mut uids: Vec<u32> = users.keys().copied().collect();
    uids.sort_unstable();
    let lists: Vec<RecommendationList> = uids
        .iter()
        .map(|u| RecommendationList {
            subject_group: users[u].0.clone(),
            items: order
                .iter()
                .filter(|i| !seen[u].contains(i))
                .take(10)
                .map(|i| i - 1)
                .collect(),
        })
        .collect();
    let rec = audit_recommendations(&catalog, &lists).unwrap();
    // crosscheck.py: coverage 0.054696789536266346, Gini 0.9878689619920149.
    close(rec.catalog_coverage.value, 0.054696789536266346, 1e-12);
    close(rec.gini_item_exposure.value, 0.9878689619920149, 1e-12);
    assert!(rec.popularity.popularity_lift.value.unwrap() > 5.0);
    assert_eq!(rec.popularity.long_tail_share.value, Some(0.0));
}
