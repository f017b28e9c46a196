//! Adoption analytics that are not sums of sessions: percentiles of a session's
//! duration and active time (`session-duration-p50`, `…-p90`, `active-time-p50`,
//! `…-p90`), first-time users (`new-people`) and the share of a team active in a bucket
//! (`team-active-share`). Pure functions over rows the store reads; definitions in
//! `docs/metrics.md`.
//!
//! - A percentile of a group is taken over the group's sessions of the bucket (or of
//!   the range, for its total), never averaged from other buckets' or groups'.
//! - A person is new in the bucket of their first session of the group: by team, their
//!   first session counted for that team; overall, their first session of all. Sessions
//!   before the range count: nobody is new twice.
//! - A team's active share is its members (the identities file's `teams`) with a
//!   session in the bucket over its members; the total, those active at some time in
//!   the range over its members. People counted for a team only through a repository it
//!   owns are not its members.

use std::collections::{BTreeMap, BTreeSet};

use super::analytics::{
    Answer, Group, Metric, Quality, Query, Spread, bucket_starts, missing_reason, points,
    sort_groups,
};
use crate::store::analytics::{FirstSeen, ValueGroup};

/// The `p`-th percentile (0–100) of `v`, interpolating linearly between the closest
/// ranks (the median of an even count is the mean of the middle two); NaN for none.
pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (v[lo], v[hi.min(v.len() - 1)]);
    a + (b - a) * (rank - lo as f64)
}

/// What every answer here shares besides its figures.
struct Shape {
    zone: crate::time::Zone,
    starts: Vec<i64>,
    reasons: BTreeSet<String>,
    quality: Quality,
}

impl Shape {
    fn new(q: &Query, queued: i64) -> Self {
        let mut s = Shape {
            zone: q.zone,
            starts: bucket_starts(q),
            reasons: BTreeSet::new(),
            quality: Quality::Exact,
        };
        if queued > 0 {
            s.partial(format!(
                "{queued} sessions changed moments ago and are being counted again"
            ));
        }
        s
    }

    fn partial(&mut self, why: String) {
        self.reasons.insert(why);
        self.quality = Quality::Partial;
    }

    /// The bucket holding the UTC day number `day`.
    fn slot(&self, day: i64) -> Option<usize> {
        self.starts
            .partition_point(|b| *b <= self.zone.day_start(day))
            .checked_sub(1)
    }

    fn answer(
        self,
        q: &Query,
        total: f64,
        series: Vec<f64>,
        groups: BTreeMap<String, (f64, Vec<f64>)>,
        round: impl Fn(f64) -> f64 + Copy,
    ) -> Answer {
        let mut out: Vec<Group> = groups
            .into_iter()
            .map(|(key, (total, series))| Group {
                key,
                total: round(total),
                quality: self.quality,
                kinds: None,
                split: None,
                series: points(self.zone, &self.starts, series, round),
            })
            .collect();
        sort_groups(&mut out);
        let series = points(self.zone, &self.starts, series, round);
        Answer::new(q, round(total), self.quality, self.reasons, series, out)
    }
}

fn key_of(k: &Option<String>) -> String {
    k.clone().unwrap_or_else(|| "unknown".to_string())
}

fn seconds(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// A percentile metric's answer from the values of its sessions per (bucket, key);
/// `missing_agents` name the agents of sessions without the value.
pub fn answer_spread(
    q: &Query,
    sp: Spread,
    rows: &[ValueGroup],
    missing_agents: &[Option<String>],
    queued: i64,
) -> Answer {
    let mut shape = Shape::new(q, queued);
    for a in missing_agents {
        shape.partial(missing_reason(Metric::Spread(sp), a.as_deref()));
    }
    let n = shape.starts.len();
    let mut overall: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut all = Vec::new();
    let mut by_key: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for r in rows {
        let Some(i) = shape.slot(r.bucket) else {
            continue;
        };
        by_key
            .entry(key_of(&r.key))
            .or_insert_with(|| vec![Vec::new(); n])[i]
            .extend_from_slice(&r.values);
        overall[i].extend_from_slice(&r.once);
        all.extend_from_slice(&r.once);
    }
    let p = f64::from(sp.percentile);
    let groups = by_key
        .into_iter()
        .map(|(k, buckets)| {
            let every: Vec<f64> = buckets.iter().flatten().copied().collect();
            let series = buckets.into_iter().map(|b| percentile(b, p)).collect();
            (k, (percentile(every, p), series))
        })
        .collect();
    let series = overall.into_iter().map(|b| percentile(b, p)).collect();
    shape.answer(q, percentile(all, p), series, groups, seconds)
}

/// `new-people`'s answer from when each person was first seen, of those first seen in
/// the range; `nameless` sessions of the range name no person.
pub fn answer_new_people(q: &Query, firsts: &FirstSeen, nameless: i64, queued: i64) -> Answer {
    let mut shape = Shape::new(q, queued);
    if nameless > 0 {
        shape.partial(format!(
            "{nameless} sessions name no user and are not counted as people"
        ));
    }
    let n = shape.starts.len();
    let in_range = |at: i64| (at >= q.from_ns && at < q.to_ns).then_some(q.zone.day_of(at));
    let mut series = vec![0.0; n];
    let mut total = 0.0;
    for (_, at) in &firsts.overall {
        if let Some(i) = in_range(*at).and_then(|d| shape.slot(d)) {
            series[i] += 1.0;
            total += 1.0;
        }
    }
    let mut groups: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
    for (key, _, at) in &firsts.by_key {
        if let Some(i) = in_range(*at).and_then(|d| shape.slot(d)) {
            let g = groups
                .entry(key_of(key))
                .or_insert_with(|| (0.0, vec![0.0; n]));
            g.0 += 1.0;
            g.1[i] += 1.0;
        }
    }
    shape.answer(q, total, series, groups, |v| v)
}

/// `team-active-share`'s answer from the distinct (bucket, team, person) of the range's
/// sessions and each team's members.
pub fn answer_team_share(
    q: &Query,
    triples: &[(i64, Option<String>, String)],
    members: &BTreeMap<String, BTreeSet<String>>,
    queued: i64,
) -> Answer {
    let mut shape = Shape::new(q, queued);
    let n = shape.starts.len();
    let everyone: BTreeSet<&str> = members.values().flatten().map(String::as_str).collect();
    if members.is_empty() {
        shape.partial(
            "the identities file lists no team members (`teams = [...]` per person)".into(),
        );
    }
    // Active members per team and bucket, and over the range.
    let mut active: BTreeMap<&str, (BTreeSet<&str>, Vec<BTreeSet<&str>>)> = BTreeMap::new();
    let mut active_all: (BTreeSet<&str>, Vec<BTreeSet<&str>>) =
        (BTreeSet::new(), vec![BTreeSet::new(); n]);
    for (bucket, team, person) in triples {
        let (Some(i), Some(team)) = (shape.slot(*bucket), team.as_deref()) else {
            continue;
        };
        if !members.get(team).is_some_and(|m| m.contains(person)) {
            continue;
        }
        let a = active
            .entry(team)
            .or_insert_with(|| (BTreeSet::new(), vec![BTreeSet::new(); n]));
        a.0.insert(person);
        a.1[i].insert(person);
        active_all.0.insert(person);
        active_all.1[i].insert(person);
    }
    let share = |k: usize, of: usize| {
        if of == 0 {
            f64::NAN
        } else {
            k as f64 / of as f64
        }
    };
    let groups = members
        .iter()
        .map(|(team, m)| {
            let (range, buckets) = active
                .remove(team.as_str())
                .unwrap_or_else(|| (BTreeSet::new(), vec![BTreeSet::new(); n]));
            let series = buckets.iter().map(|b| share(b.len(), m.len())).collect();
            (team.clone(), (share(range.len(), m.len()), series))
        })
        .collect();
    let series = active_all
        .1
        .iter()
        .map(|b| share(b.len(), everyone.len()))
        .collect();
    shape.answer(
        q,
        share(active_all.0.len(), everyone.len()),
        series,
        groups,
        |v| (v * 1e4).round() / 1e4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_the_closest_ranks() {
        assert!(percentile(vec![], 50.0).is_nan());
        assert_eq!(percentile(vec![7.0], 90.0), 7.0);
        assert_eq!(percentile(vec![4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
        // Ranks 0..=9 of 1..=10: p90 sits at rank 8.1, between 9 and 10.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((percentile(ten, 90.0) - 9.1).abs() < 1e-12);
    }

    const DAY: i64 = 86_400 * 1_000_000_000;

    fn week_query(metric: Metric, group_by: super::super::analytics::GroupBy) -> Query {
        // Monday 2026-11-16 and the week after.
        let from_ns = 20_773 * DAY;
        Query {
            metric,
            group_by,
            bucket: super::super::analytics::Bucket::Week,
            from_ns,
            to_ns: from_ns + 14 * DAY,
            zone: crate::time::Zone::UTC,
        }
    }

    fn values(a: &Answer) -> Vec<f64> {
        a.series.iter().map(|p| p.value).collect()
    }

    #[test]
    fn spreads_count_a_session_once_overall_and_in_each_of_its_teams() {
        use super::super::analytics::{GroupBy, SpreadOf};
        let sp = Spread {
            of: SpreadOf::Duration,
            percentile: 50,
        };
        let q = week_query(Metric::Spread(sp), GroupBy::Team);
        let row = |day: i64, team: &str, values: &[f64], once: &[f64]| ValueGroup {
            bucket: day,
            key: Some(team.into()),
            values: values.to_vec(),
            once: once.to_vec(),
        };
        // One session of 60 s in teams a and b; one of 120 s in a; one of 30 s in b the
        // week after.
        let rows = [
            row(20_773, "a", &[60.0], &[60.0]),
            row(20_773, "b", &[60.0], &[]),
            row(20_774, "a", &[120.0], &[120.0]),
            row(20_781, "b", &[30.0], &[30.0]),
        ];
        let a = answer_spread(&q, sp, &rows, &[], 0);
        assert_eq!(a.quality, Quality::Exact);
        assert_eq!(values(&a), [90.0, 30.0]);
        assert_eq!(a.total, 60.0, "the median of 60, 120 and 30");
        let b = a.groups.iter().find(|g| g.key == "b").unwrap();
        assert_eq!(b.total, 45.0);
        assert_eq!(
            b.series.iter().map(|p| p.value).collect::<Vec<_>>(),
            [60.0, 30.0]
        );
        let a_team = a.groups.iter().find(|g| g.key == "a").unwrap();
        assert!(a_team.series[1].value.is_nan(), "no session: no figure");
        let p90 = Spread {
            of: SpreadOf::Duration,
            percentile: 90,
        };
        let a = answer_spread(&q, p90, &rows, &[Some("droid".into())], 0);
        assert!((a.total - 108.0).abs() < 1e-9, "rank 1.8 of 30, 60, 120");
        assert_eq!(a.quality, Quality::Partial);
    }

    #[test]
    fn people_are_new_once_in_the_bucket_of_their_first_session() {
        use super::super::analytics::GroupBy;
        let q = week_query(Metric::NewPeople, GroupBy::Agent);
        let firsts = FirstSeen {
            by_key: vec![
                (Some("codex".into()), "ann".into(), 20_773 * DAY + 5),
                (Some("claude-code".into()), "ann".into(), 20_782 * DAY),
                (Some("codex".into()), "bob".into(), 20_784 * DAY),
            ],
            overall: vec![
                ("ann".into(), 20_773 * DAY + 5),
                ("bob".into(), 20_784 * DAY),
            ],
        };
        let a = answer_new_people(&q, &firsts, 2, 0);
        assert_eq!(a.total, 2.0);
        assert_eq!(values(&a), [1.0, 1.0]);
        let codex = a.groups.iter().find(|g| g.key == "codex").unwrap();
        assert_eq!(codex.total, 2.0);
        let claude = a.groups.iter().find(|g| g.key == "claude-code").unwrap();
        assert_eq!(
            claude.series.iter().map(|p| p.value).collect::<Vec<_>>(),
            [0.0, 1.0]
        );
        assert_eq!(a.quality, Quality::Partial, "two sessions name nobody");
    }

    #[test]
    fn a_teams_active_share_is_over_its_members_only() {
        use super::super::analytics::GroupBy;
        let q = week_query(Metric::TeamActiveShare, GroupBy::Team);
        let members: BTreeMap<String, BTreeSet<String>> = [
            ("pay", vec!["ann", "bob", "cy", "dee"]),
            ("web", vec!["eve"]),
        ]
        .into_iter()
        .map(|(t, m)| (t.to_string(), m.into_iter().map(String::from).collect()))
        .collect();
        let t = |day: i64, team: &str, p: &str| (day, Some(team.to_string()), p.to_string());
        let triples = [
            t(20_773, "pay", "ann"),
            t(20_773, "pay", "bob"),
            t(20_780, "pay", "ann"),
            // Counted for pay through a repository it owns: not a member.
            t(20_780, "pay", "zed"),
            t(20_780, "web", "eve"),
        ];
        let a = answer_team_share(&q, &triples, &members, 0);
        let pay = a.groups.iter().find(|g| g.key == "pay").unwrap();
        assert_eq!(
            pay.series.iter().map(|p| p.value).collect::<Vec<_>>(),
            [0.5, 0.25]
        );
        assert_eq!(pay.total, 0.5);
        let web = a.groups.iter().find(|g| g.key == "web").unwrap();
        assert_eq!(web.total, 1.0);
        assert_eq!(values(&a), [0.4, 0.4], "of five members");
        assert_eq!(a.total, 0.6);
    }
}
