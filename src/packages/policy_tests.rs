//! The retention policy by tables: each row a package, the rules and the decision expected for every version.

use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng as _, SeedableRng as _};

use super::Version;
use super::graph::{Graph, Relation};
use super::policy::{Policy, decide, deletion_order};
use super::rules::{TagPattern, parse_age};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
}

fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

/// Version `id` with digest `digest(id)`, `age` old, with `tags`.
fn v(id: u64, age: &str, tags: &[&str]) -> Version {
    let created = now() - chrono::Duration::from_std(parse_age(age).unwrap()).unwrap();
    Version {
        id,
        name: digest(id),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        created_at: created,
        updated_at: created,
    }
}

fn sig_tag(id: u64) -> String {
    format!("sha256-{}.sig", &digest(id)["sha256:".len()..])
}

fn policy(keep_last: Option<usize>, keep: &[&str], delete: &[&str], untagged: Option<&str>) -> Policy {
    Policy {
        keep_last,
        keep_tags: keep.iter().map(|p| TagPattern::parse(p).unwrap()).collect(),
        delete_tags: delete.iter().map(|p| TagPattern::parse(p).unwrap()).collect(),
        untagged_older_than: untagged.map(|u| parse_age(u).unwrap()),
    }
}

/// `(id, "keep"|"delete", reason text)` per version.
fn table(versions: &[Version], graph: &Graph, policy: &Policy) -> Vec<(u64, &'static str, String)> {
    decide(versions, graph, policy, now())
        .into_iter()
        .zip(versions)
        .map(|(d, v)| (v.id, if d.is_delete() { "delete" } else { "keep" }, d.reason().to_string()))
        .collect()
}

fn row(id: u64, what: &'static str, reason: &str) -> (u64, &'static str, String) {
    (id, what, reason.to_string())
}

/// The acceptance package: a tagged two-platform index with an attestation and a signature, an older index
/// tagged only `sha-...` with a young signature, and untagged images of various ages.
#[test]
fn keep_last_one_and_untagged_older_than_7d_never_break_the_kept_index() {
    let mut versions = vec![
        v(100, "10d", &["v1.2.0", "latest", "sha-bbbbbbb"]),
        v(101, "10d", &[]),
        v(102, "10d", &[]),
        v(103, "10d", &[]),
        v(104, "10d", &[&sig_tag(100)]),
        v(105, "10d", &[]),
        v(200, "20d", &["sha-aaaaaaa"]),
        v(201, "20d", &[]),
        v(202, "20d", &[]),
        v(203, "2d", &[&sig_tag(200)]),
    ];
    versions.extend((0..6).map(|i| v(300 + i, &format!("{}d1h", i * 3), &[])));
    let mut g = Graph::default();
    for (child, rel) in [(101, Relation::Child), (102, Relation::Child), (103, Relation::Attestation)] {
        g.add(&digest(100), &digest(child), rel);
    }
    g.add(&digest(101), &digest(103), Relation::Attestation);
    g.add(&digest(100), &digest(105), Relation::Referrer);
    g.add(&digest(200), &digest(201), Relation::Child);
    g.add(&digest(200), &digest(202), Relation::Child);
    g.add_tags(&versions);
    let got = table(&versions, &g, &policy(Some(1), &[], &[], Some("7d")));
    assert_eq!(
        got,
        vec![
            row(100, "keep", "among the newest 1 tagged"),
            row(101, "keep", "child of `v1.2.0`"),
            row(102, "keep", "child of `v1.2.0`"),
            row(103, "keep", "attestation of `v1.2.0`"),
            row(104, "keep", "signature of `v1.2.0`"),
            row(105, "keep", "referrer of `v1.2.0`"),
            row(200, "delete", "tagged, older than the newest 1"),
            row(201, "delete", "untagged, 20d old (older than 7d)"),
            row(202, "delete", "untagged, 20d old (older than 7d)"),
            row(203, "delete", "signature of deleted `sha-aaaaaaa`"),
            row(300, "keep", "untagged, 1h old (newer than 7d)"),
            row(301, "keep", "untagged, 3d 1h old (newer than 7d)"),
            row(302, "keep", "untagged, 6d 1h old (newer than 7d)"),
            row(303, "delete", "untagged, 9d 1h old (older than 7d)"),
            row(304, "delete", "untagged, 12d 1h old (older than 7d)"),
            row(305, "delete", "untagged, 15d 1h old (older than 7d)"),
        ]
    );
    // Deleting goes parent first: the old index before its children.
    let chosen: Vec<usize> = (0..versions.len()).filter(|i| got[*i].1 == "delete").collect();
    let order: Vec<u64> = deletion_order(&versions, &g, &chosen).into_iter().map(|i| versions[i].id).collect();
    let pos = |id: u64| order.iter().position(|x| *x == id).unwrap();
    assert!(pos(200) < pos(201) && pos(200) < pos(202) && pos(200) < pos(203), "{order:?}");
    assert_eq!(order.len(), chosen.len());
}

#[test]
fn tag_rules_keep_delete_and_count_the_newest() {
    let versions = vec![
        v(1, "1d", &["pr-9"]),
        v(2, "2d", &["pr-8", "latest"]),
        v(3, "3d", &["pr-7"]),
        v(4, "4d", &["v1.0.0", "pr-6"]),
        v(5, "5d", &["pr-5"]),
        v(6, "6d", &["nightly"]),
    ];
    let g = Graph::default();
    type Expected = Vec<(u64, &'static str, &'static str)>;
    let rows: Vec<(Policy, Expected)> = vec![
        // No rule for tagged versions: all kept.
        (
            policy(None, &[], &[], Some("1d")),
            (1..=6).map(|i| (i, "keep", "tagged (no rule deletes tagged versions)")).collect(),
        ),
        // delete_tags: only versions whose every tag matches; keep_tags always wins.
        (
            policy(None, &["v*"], &["pr-*"], None),
            vec![
                (1, "delete", "every tag matches delete_tags (`pr-*`)"),
                (2, "keep", "tag `latest` matches no delete_tags pattern"),
                (3, "delete", "every tag matches delete_tags (`pr-*`)"),
                (4, "keep", "tag `v1.0.0` matches keep_tags `v*`"),
                (5, "delete", "every tag matches delete_tags (`pr-*`)"),
                (6, "keep", "tag `nightly` matches no delete_tags pattern"),
            ],
        ),
        // keep_last with delete_tags: the newest N of those delete_tags names.
        (
            policy(Some(2), &[], &["pr-*"], None),
            vec![
                (1, "keep", "among the newest 2 tagged"),
                (2, "keep", "tag `latest` matches no delete_tags pattern"),
                (3, "keep", "among the newest 2 tagged"),
                (4, "keep", "tag `v1.0.0` matches no delete_tags pattern"),
                (5, "delete", "every tag matches delete_tags (`pr-*`)"),
                (6, "keep", "tag `nightly` matches no delete_tags pattern"),
            ],
        ),
        // keep_last alone: the newest N tagged that keep_tags does not already keep.
        (
            policy(Some(2), &["latest", "v*"], &[], None),
            vec![
                (1, "keep", "among the newest 2 tagged"),
                (2, "keep", "tag `latest` matches keep_tags `latest`"),
                (3, "keep", "among the newest 2 tagged"),
                (4, "keep", "tag `v1.0.0` matches keep_tags `v*`"),
                (5, "delete", "tagged, older than the newest 2"),
                (6, "delete", "tagged, older than the newest 2"),
            ],
        ),
    ];
    for (p, want) in rows {
        let want: Vec<(u64, &'static str, String)> = want.into_iter().map(|(i, w, r)| row(i, w, r)).collect();
        assert_eq!(table(&versions, &g, &p), want, "{p:?}");
    }
}

#[test]
fn children_go_with_a_deleted_index_unless_something_kept_shares_them() {
    // 10 (deleted) and 20 (kept) share child 30; 10's own child 11 is young but goes with it; 40 is a young
    // untagged index whose old child 41 stays for it.
    let versions = vec![
        v(10, "30d", &["old"]),
        v(11, "1h", &[]),
        v(20, "1d", &["new"]),
        v(30, "30d", &[]),
        v(40, "1h", &[]),
        v(41, "30d", &[]),
    ];
    let mut g = Graph::default();
    g.add(&digest(10), &digest(11), Relation::Child);
    g.add(&digest(10), &digest(30), Relation::Child);
    g.add(&digest(20), &digest(30), Relation::Child);
    g.add(&digest(40), &digest(41), Relation::Child);
    let got = table(&versions, &g, &policy(Some(1), &[], &[], Some("7d")));
    let short40 = digest(40)[..19].to_string();
    assert_eq!(
        got,
        vec![
            row(10, "delete", "tagged, older than the newest 1"),
            row(11, "delete", "child of deleted `old`"),
            row(20, "keep", "among the newest 1 tagged"),
            row(30, "keep", "child of `new`"),
            row(40, "keep", "untagged, 1h old (newer than 7d)"),
            row(41, "keep", &format!("child of `{short40}`")),
        ]
    );
}

#[test]
fn a_tag_that_moved_keeps_its_new_target_and_the_last_version_stays() {
    let versions = vec![v(1, "1d", &["latest"]), v(2, "30d", &[]), v(3, "30d", &[])];
    let mut g = Graph::default();
    g.add(&digest(2), &digest(3), Relation::Child);
    // GitHub listed `latest` on 1, but the registry says it points at 2 now.
    g.tag_targets.insert("latest".into(), digest(2));
    let got = table(&versions, &g, &policy(None, &[], &[], Some("7d")));
    let short2 = digest(2)[..19].to_string();
    assert_eq!(
        got,
        vec![
            row(1, "keep", "tagged (no rule deletes tagged versions)"),
            row(2, "keep", "tag moved here from `latest`"),
            row(3, "keep", &format!("child of `{short2}` (kept for `latest`)")),
        ]
    );
    // Everything old and untagged: GitHub would refuse the last deletion, so the newest stays with its children.
    let versions = vec![v(1, "9d", &[]), v(2, "8d", &[]), v(3, "10d", &[])];
    let mut g = Graph::default();
    g.add(&digest(2), &digest(3), Relation::Child);
    let got = table(&versions, &g, &policy(None, &[], &[], Some("7d")));
    assert_eq!(got[0].1, "delete");
    assert_eq!(got[1], row(2, "keep", "the package's last version (GitHub refuses to delete it)"));
    assert_eq!(got[2].1, "keep", "{got:?}");
}

#[test]
fn no_kept_version_ever_needs_a_deleted_one() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let tags = ["latest", "v1", "v2", "pr-1", "pr-2", "sha-1", "nightly"];
    for round in 0..400 {
        let n = rng.random_range(1..30u64);
        let versions: Vec<Version> = (0..n)
            .map(|i| {
                let tagged: Vec<&str> = tags.iter().copied().filter(|_| rng.random_bool(0.08)).collect();
                v(i, &format!("{}h", rng.random_range(0..1000)), &tagged)
            })
            .collect();
        let mut g = Graph::default();
        for _ in 0..rng.random_range(0..n * 2) {
            let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
            let rel = if rng.random_bool(0.5) { Relation::Child } else { Relation::Referrer };
            g.add(&digest(a), &digest(b), rel);
        }
        if rng.random_bool(0.3) {
            g.tag_targets.insert("latest".into(), digest(rng.random_range(0..n)));
        }
        let p = policy(
            rng.random_bool(0.5).then(|| rng.random_range(0..3)),
            if rng.random_bool(0.3) { &["v*"] } else { &[] },
            if rng.random_bool(0.3) { &["pr-*", "sha-*"] } else { &[] },
            rng.random_bool(0.8).then_some("100h"),
        );
        let decisions = decide(&versions, &g, &p, now());
        assert!(decisions.iter().any(|d| !d.is_delete()), "round {round}: the last version stays");
        for (i, d) in decisions.iter().enumerate() {
            if d.is_delete() {
                continue;
            }
            for e in g.edges_from(&versions[i].name) {
                let j = versions.iter().position(|x| x.name == e.to).unwrap();
                assert!(!decisions[j].is_delete(), "round {round}: kept {i} needs deleted {j}: {decisions:?}");
            }
            for tag in &versions[i].tags {
                if let Some(j) = g.tag_targets.get(tag).and_then(|d| versions.iter().position(|x| &x.name == d)) {
                    assert!(!decisions[j].is_delete(), "round {round}: `{tag}` points at deleted {j}");
                }
            }
        }
    }
}
