//! The retention policy as a pure function: versions, the graph of what needs what, the rules and the clock in;
//! one decision with its reason per version out. Whatever the rules say, a version reachable from a kept one
//! (a child, an attestation, a referrer, a signature) is kept, so a kept tag never answers "manifest unknown".

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Version;
use super::graph::{Graph, Relation};
use super::rules::{TagPattern, attached_to, human_age};

/// The rules of one prune.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Of the tagged versions the other rules would delete, keep the N most recent. With neither this nor
    /// `delete_tags`, tagged versions are never deleted.
    pub keep_last: Option<usize>,
    /// A version with a tag matching one of these is always kept.
    pub keep_tags: Vec<TagPattern>,
    /// A tagged version is deleted only if every one of its tags matches one of these (when any are given).
    pub delete_tags: Vec<TagPattern>,
    /// Untagged versions older than this are deleted; unset, untagged versions are deleted only with a parent.
    pub untagged_older_than: Option<Duration>,
}

impl Policy {
    /// True when the policy can delete anything at all.
    pub fn has_rule(&self) -> bool {
        self.keep_last.is_some() || !self.delete_tags.is_empty() || self.untagged_older_than.is_some()
    }
}

/// Why a version is kept or deleted, as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Kept: a tag matches `keep_tags`.
    TagRule { tag: String, pattern: String },
    /// Kept: among the N most recent tagged versions.
    Newest { n: usize },
    /// Kept: a tag that no `delete_tags` pattern names.
    NotNamedForDeletion { tag: String },
    /// Kept: tagged, and no rule deletes tagged versions.
    Tagged,
    /// Kept: untagged and not old enough.
    UntaggedNewer { age: Duration, limit: Duration },
    /// Kept: untagged, and `untagged_older_than` is not set.
    UntaggedNoRule,
    /// Kept: a kept version needs it. `of` names that version, `root` the kept one it hangs from, if another.
    Needed { relation: Relation, of: String, root: Option<String> },
    /// Kept: GitHub refuses to delete a package's last version.
    LastVersion,
    /// Deleted: tagged, older than the N most recent.
    OlderThanNewest { n: usize },
    /// Deleted: every tag matches `delete_tags`.
    DeleteTags { pattern: String },
    /// Deleted: untagged and older than the limit.
    UntaggedOlder { age: Duration, limit: Duration },
    /// Deleted with the version it belongs to.
    WithParent { relation: Relation, of: String },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TagRule { tag, pattern } => write!(f, "tag `{tag}` matches keep_tags `{pattern}`"),
            Reason::Newest { n } => write!(f, "among the newest {n} tagged"),
            Reason::NotNamedForDeletion { tag } => write!(f, "tag `{tag}` matches no delete_tags pattern"),
            Reason::Tagged => write!(f, "tagged (no rule deletes tagged versions)"),
            Reason::UntaggedNewer { age, limit } => {
                write!(f, "untagged, {} old (newer than {})", human_age(*age), human_age(*limit))
            }
            Reason::UntaggedNoRule => write!(f, "untagged (untagged_older_than is not set)"),
            Reason::Needed { relation, of, root: None } => write!(f, "{} `{of}`", relation.describe()),
            Reason::Needed { relation, of, root: Some(root) } => {
                write!(f, "{} `{of}` (kept for `{root}`)", relation.describe())
            }
            Reason::LastVersion => write!(f, "the package's last version (GitHub refuses to delete it)"),
            Reason::OlderThanNewest { n } => write!(f, "tagged, older than the newest {n}"),
            Reason::DeleteTags { pattern } => write!(f, "every tag matches delete_tags (`{pattern}`)"),
            Reason::UntaggedOlder { age, limit } => {
                write!(f, "untagged, {} old (older than {})", human_age(*age), human_age(*limit))
            }
            Reason::WithParent { relation, of } => write!(f, "{} deleted `{of}`", relation.describe()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep(Reason),
    Delete(Reason),
}

impl Decision {
    pub fn is_delete(&self) -> bool {
        matches!(self, Decision::Delete(_))
    }

    pub fn reason(&self) -> &Reason {
        match self {
            Decision::Keep(r) | Decision::Delete(r) => r,
        }
    }

    /// Kept only for lack of age or of a rule: a deleted parent takes it along.
    fn is_weak_keep(&self) -> bool {
        matches!(self, Decision::Keep(Reason::UntaggedNewer { .. } | Reason::UntaggedNoRule))
    }
}

/// The tags that are names (not `sha256-<digest>.sig` and the like, which follow their subject).
fn name_tags(v: &Version) -> impl Iterator<Item = &String> {
    v.tags.iter().filter(|t| attached_to(t).is_none())
}

/// What the version's own tags and age say, before the graph is looked at.
fn own_decisions(versions: &[Version], policy: &Policy, now: DateTime<Utc>) -> Vec<Option<Decision>> {
    let mut out: Vec<Option<Decision>> = Vec::with_capacity(versions.len());
    let mut candidates: Vec<(usize, Reason)> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let kept_by_tag = v.tags.iter().find_map(|tag| {
            policy.keep_tags.iter().find(|p| p.matches(tag)).map(|p| (tag.clone(), p.as_str().to_string()))
        });
        let decision = if let Some((tag, pattern)) = kept_by_tag {
            Some(Decision::Keep(Reason::TagRule { tag, pattern }))
        } else if name_tags(v).next().is_some() {
            if !policy.delete_tags.is_empty() {
                match name_tags(v).find(|t| !policy.delete_tags.iter().any(|p| p.matches(t))) {
                    Some(tag) => Some(Decision::Keep(Reason::NotNamedForDeletion { tag: tag.clone() })),
                    None => {
                        let first = name_tags(v).next().map(String::as_str).unwrap_or_default();
                        let pattern = policy.delete_tags.iter().find(|p| p.matches(first));
                        let pattern = pattern.map(|p| p.as_str().to_string()).unwrap_or_default();
                        candidates.push((i, Reason::DeleteTags { pattern }));
                        None
                    }
                }
            } else if let Some(n) = policy.keep_last {
                candidates.push((i, Reason::OlderThanNewest { n }));
                None
            } else {
                Some(Decision::Keep(Reason::Tagged))
            }
        } else {
            let age = (now - v.created_at).to_std().unwrap_or(Duration::ZERO);
            Some(match policy.untagged_older_than {
                Some(limit) if age >= limit => Decision::Delete(Reason::UntaggedOlder { age, limit }),
                Some(limit) => Decision::Keep(Reason::UntaggedNewer { age, limit }),
                None => Decision::Keep(Reason::UntaggedNoRule),
            })
        };
        out.push(decision);
    }
    // Newest first; the id breaks ties (GitHub's ids grow with time).
    candidates.sort_by(|(a, _), (b, _)| {
        (versions[*b].created_at, versions[*b].id).cmp(&(versions[*a].created_at, versions[*a].id))
    });
    let keep = policy.keep_last.unwrap_or(0);
    for (rank, (i, reason)) in candidates.into_iter().enumerate() {
        out[i] = Some(if rank < keep { Decision::Keep(Reason::Newest { n: keep }) } else { Decision::Delete(reason) });
    }
    out
}

/// One decision per version, in the order given.
pub fn decide(versions: &[Version], graph: &Graph, policy: &Policy, now: DateTime<Utc>) -> Vec<Decision> {
    let index: BTreeMap<&str, usize> = versions.iter().enumerate().map(|(i, v)| (v.name.as_str(), i)).collect();
    let mut decisions: Vec<Decision> =
        own_decisions(versions, policy, now).into_iter().map(|d| d.unwrap_or(Decision::Keep(Reason::Tagged))).collect();

    // A kept version keeps where the registry says its tags point now.
    let graph = &graph.with_moved_tags(versions);
    let strong: Vec<usize> =
        (0..versions.len()).filter(|i| !decisions[*i].is_delete() && !decisions[*i].is_weak_keep()).collect();
    let protected = reach(versions, graph, &index, &strong, &BTreeSet::new());
    for (&j, (relation, parent, root)) in &protected {
        if decisions[j].is_delete() || decisions[j].is_weak_keep() {
            decisions[j] = needed(versions, *relation, *parent, *root);
        }
    }
    let protected: BTreeSet<usize> = protected.keys().copied().chain(strong.iter().copied()).collect();

    // What a deleted version takes along: its children and attachments, unless something kept needs them.
    let doomed: Vec<usize> = (0..versions.len()).filter(|i| decisions[*i].is_delete()).collect();
    for (&j, (relation, parent, _)) in &reach(versions, graph, &index, &doomed, &protected) {
        if decisions[j].is_weak_keep() {
            decisions[j] = Decision::Delete(Reason::WithParent { relation: *relation, of: versions[*parent].label() });
        }
    }
    // What the remaining weakly kept versions need is kept after all.
    let weak: Vec<usize> = (0..versions.len()).filter(|i| decisions[*i].is_weak_keep()).collect();
    for (&j, (relation, parent, root)) in &reach(versions, graph, &index, &weak, &BTreeSet::new()) {
        if decisions[j].is_delete() {
            decisions[j] = needed(versions, *relation, *parent, *root);
        }
    }

    // GitHub refuses to delete the last version: keep the newest, with what it needs.
    if !versions.is_empty() && decisions.iter().all(Decision::is_delete) {
        let newest = (0..versions.len()).max_by_key(|i| (versions[*i].created_at, versions[*i].id)).unwrap_or(0);
        decisions[newest] = Decision::Keep(Reason::LastVersion);
        for (&j, (relation, parent, root)) in &reach(versions, graph, &index, &[newest], &BTreeSet::new()) {
            decisions[j] = needed(versions, *relation, *parent, *root);
        }
    }
    decisions
}

fn needed(versions: &[Version], relation: Relation, parent: usize, root: usize) -> Decision {
    let root = (root != parent).then(|| versions[root].label());
    Decision::Keep(Reason::Needed { relation, of: versions[parent].label(), root })
}

/// The versions reachable from `roots` (not the roots themselves), breadth first so each gets the nearest
/// parent, never entering `stop`: version -> (relation, parent, root).
fn reach(
    versions: &[Version],
    graph: &Graph,
    index: &BTreeMap<&str, usize>,
    roots: &[usize],
    stop: &BTreeSet<usize>,
) -> BTreeMap<usize, (Relation, usize, usize)> {
    let mut found: BTreeMap<usize, (Relation, usize, usize)> = BTreeMap::new();
    let mut seen: BTreeSet<usize> = roots.iter().copied().collect();
    let mut queue: VecDeque<(usize, usize)> = roots.iter().map(|r| (*r, *r)).collect();
    while let Some((at, root)) = queue.pop_front() {
        for edge in graph.edges_from(&versions[at].name) {
            let Some(&to) = index.get(edge.to.as_str()) else { continue };
            if stop.contains(&to) || !seen.insert(to) {
                continue;
            }
            found.insert(to, (edge.relation, at, root));
            queue.push_back((to, root));
        }
    }
    found
}

/// The order to delete in: a version before everything it keeps (an index before its children, an image before
/// its signature), so a failure part way leaves at worst an orphan, never an index without a child.
pub fn deletion_order(versions: &[Version], graph: &Graph, chosen: &[usize]) -> Vec<usize> {
    let set: BTreeSet<usize> = chosen.iter().copied().collect();
    let index: BTreeMap<&str, usize> = versions.iter().enumerate().map(|(i, v)| (v.name.as_str(), i)).collect();
    // needed_by[x] = the chosen versions that keep x.
    let mut blockers: BTreeMap<usize, usize> = set.iter().map(|i| (*i, 0)).collect();
    let mut needs: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &set {
        for edge in graph.edges_from(&versions[i].name) {
            if let Some(&j) = index.get(edge.to.as_str()).filter(|j| set.contains(j) && **j != i) {
                needs.entry(i).or_default().push(j);
                *blockers.entry(j).or_default() += 1;
            }
        }
    }
    let mut ready: VecDeque<usize> = chosen.iter().copied().filter(|i| blockers.get(i) == Some(&0)).collect();
    let mut order = Vec::with_capacity(set.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &j in needs.get(&i).into_iter().flatten() {
            if let Some(b) = blockers.get_mut(&j) {
                *b -= 1;
                if *b == 0 {
                    ready.push_back(j);
                }
            }
        }
    }
    // A cycle (which no registry should hold) leaves the rest in the given order.
    for &i in chosen {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    order
}
