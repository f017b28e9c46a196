//! Organisation analytics of merged pull requests (`GET /api/v1/analytics/merged-prs`,
//! `pr-cycle-time`, `ci-first-run-pass-rate`, `change-failure-rate`,
//! `cost-per-merged-pr`, `cost-per-merged-line`): pure functions over one [`Pull`] per
//! pull request merged in the range, each figure given for all of them and split into
//! agent-assisted and not. Definitions in `docs/metrics.md`.
//!
//! - A pull request counts in the bucket of its merge.
//! - Grouped by team, it counts for each team of its author, else its repository's
//!   team, else `unassigned`; by agent, for each agent of its sessions and trailers
//!   (`none` when not agent-assisted); by person, its author.
//! - Medians, shares and ratios of a group are computed over the group's pull requests,
//!   never averaged from other groups'.

use std::collections::{BTreeMap, BTreeSet};

use super::analytics::{
    Answer, Group, GroupBy, Metric, PullMetric, Quality, Query, Split, bucket_starts, dollars,
    points, sort_groups,
};
use crate::store::analytics::PullFact;

const HOUR_NS: f64 = 3_600.0 * 1e9;

/// A merged pull request as these metrics count it.
#[derive(Debug, Clone)]
pub struct Pull {
    pub fact: PullFact,
    /// The teams it counts for (never empty).
    pub teams: Vec<String>,
    /// The author time of the earliest commit reverting it (its merge commit or one of
    /// its commits), if any.
    pub reverted_ns: Option<i64>,
    /// Merged less than [`REVERT_WINDOW_NS`] ago: it may still be reverted in time.
    pub revert_window_open: bool,
}

/// How soon after its merge a revert counts against a pull request: 14 days.
pub const REVERT_WINDOW_NS: i64 = 14 * 86_400 * 1_000_000_000;

impl Pull {
    fn assisted(&self) -> bool {
        self.fact.assisted != 0
    }

    /// Reverted within [`REVERT_WINDOW_NS`] of its merge (a revert written before the
    /// merge, which a rebase can make look so, counts).
    fn reverted_in_time(&self) -> bool {
        match (self.reverted_ns, self.fact.merged_ns) {
            (Some(r), Some(m)) => r - m <= REVERT_WINDOW_NS,
            _ => false,
        }
    }

    fn keys(&self, by: GroupBy) -> Vec<String> {
        let f = &self.fact;
        match by {
            GroupBy::Org => vec![
                f.repo
                    .split_once('/')
                    .map_or("unknown", |(o, _)| o)
                    .to_string(),
            ],
            GroupBy::Team => self.teams.clone(),
            GroupBy::Repo => vec![f.repo.clone()],
            GroupBy::Person => vec![f.author.clone().unwrap_or_else(|| "unknown".into())],
            // Refused by the API: pull requests are not told apart by model or workflow.
            GroupBy::Agent | GroupBy::Model | GroupBy::Workflow => {
                let agents: BTreeSet<&str> = f.agents.lines().filter(|a| !a.is_empty()).collect();
                if agents.is_empty() {
                    vec![if self.assisted() { "unknown" } else { "none" }.to_string()]
                } else {
                    agents.into_iter().map(str::to_string).collect()
                }
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { f64::NAN }
}

/// `m` over these pull requests (NaN: nothing to measure).
pub fn figure(m: PullMetric, prs: &[&Pull]) -> f64 {
    let merged_cost = || prs.iter().filter(|p| p.assisted() && p.fact.cost.is_some());
    let v = match m {
        PullMetric::MergedPrs => prs.len() as f64,
        PullMetric::CycleTime => median(
            prs.iter()
                .filter_map(|p| {
                    Some((p.fact.merged_ns? - p.fact.first_commit_ns?) as f64 / HOUR_NS)
                })
                .collect(),
        ),
        PullMetric::CiFirstRunPass => {
            let rates: Vec<f64> = prs
                .iter()
                .filter_map(|p| p.fact.ci_first_run_pass)
                .collect();
            ratio(rates.iter().sum(), rates.len() as f64)
        }
        PullMetric::ChangeFailureRate => {
            let deployed: Vec<_> = prs.iter().filter(|p| p.fact.deployments > 0).collect();
            let failed = deployed.iter().filter(|p| p.fact.incidents > 0).count();
            ratio(failed as f64, deployed.len() as f64)
        }
        PullMetric::RevertRate => ratio(
            prs.iter().filter(|p| p.reverted_in_time()).count() as f64,
            prs.len() as f64,
        ),
        PullMetric::Incidents => prs.iter().map(|p| p.fact.incidents as f64).sum(),
        PullMetric::PatchCoverage
        | PullMetric::AgentPatchCoverage
        | PullMetric::OtherPatchCoverage => {
            let (mut covered, mut coverable) = (0i64, 0i64);
            for p in prs {
                let f = &p.fact;
                let (c, t) = match m {
                    PullMetric::PatchCoverage => (f.patch_covered, f.patch_coverable),
                    PullMetric::AgentPatchCoverage => (
                        f.agent_patch_covered.or(f.patch_covered.map(|_| 0)),
                        f.agent_patch_coverable.or(f.patch_coverable.map(|_| 0)),
                    ),
                    _ => (
                        f.patch_covered
                            .map(|c| c - f.agent_patch_covered.unwrap_or(0)),
                        f.patch_coverable
                            .map(|t| t - f.agent_patch_coverable.unwrap_or(0)),
                    ),
                };
                if let (Some(c), Some(t)) = (c, t) {
                    covered += c;
                    coverable += t;
                }
            }
            ratio(covered as f64, coverable as f64)
        }
        PullMetric::CostPerMergedPr => ratio(
            merged_cost().filter_map(|p| p.fact.cost).sum(),
            merged_cost().count() as f64,
        ),
        PullMetric::TokensPerMergedLine => {
            let with = || {
                prs.iter().filter(|p| {
                    p.assisted()
                        && p.fact.tokens.is_some()
                        && p.fact.agent_lines_added.is_some_and(|l| l > 0)
                })
            };
            ratio(
                with().filter_map(|p| p.fact.tokens).sum::<i64>() as f64,
                with().filter_map(|p| p.fact.agent_lines_added).sum::<i64>() as f64,
            )
        }
        PullMetric::CostPerMergedLine => {
            let with_lines =
                || merged_cost().filter(|p| p.fact.agent_lines_added.is_some_and(|l| l > 0));
            ratio(
                with_lines().filter_map(|p| p.fact.cost).sum(),
                with_lines()
                    .filter_map(|p| p.fact.agent_lines_added)
                    .sum::<i64>() as f64,
            )
        }
    };
    round(m, v)
}

fn round(m: PullMetric, v: f64) -> f64 {
    match m {
        PullMetric::MergedPrs | PullMetric::Incidents => v,
        PullMetric::RevertRate
        | PullMetric::PatchCoverage
        | PullMetric::AgentPatchCoverage
        | PullMetric::OtherPatchCoverage
        | PullMetric::CycleTime
        | PullMetric::CiFirstRunPass
        | PullMetric::ChangeFailureRate
        | PullMetric::TokensPerMergedLine => (v * 1e4).round() / 1e4,
        PullMetric::CostPerMergedPr | PullMetric::CostPerMergedLine => dollars(v),
    }
}

fn split(m: PullMetric, prs: &[&Pull]) -> Split {
    let (yes, no): (Vec<&Pull>, Vec<&Pull>) = prs.iter().partition(|p| p.assisted());
    Split {
        agent_assisted: figure(m, &yes),
        not_agent_assisted: figure(m, &no),
        agent_assisted_prs: yes.len(),
        not_agent_assisted_prs: no.len(),
    }
}

/// The answer to `q` (a [`Metric::Pulls`] metric) over the pull requests merged in its
/// range; `uncounted` merged pull requests have no facts yet (their report was not
/// built since): the answer is then partial.
pub fn answer(q: &Query, m: PullMetric, pulls: &[Pull], uncounted: i64) -> Answer {
    let starts = bucket_starts(q);
    let slot = |ns: i64| starts.partition_point(|b| *b <= ns).checked_sub(1);
    let in_range: Vec<(&Pull, usize)> = pulls
        .iter()
        .filter_map(|p| {
            let at = p
                .fact
                .merged_ns
                .filter(|t| *t >= q.from_ns && *t < q.to_ns)?;
            Some((p, slot(at)?))
        })
        .collect();
    let series_of = |prs: &[(&Pull, usize)]| -> Vec<f64> {
        (0..starts.len())
            .map(|i| {
                let here: Vec<&Pull> = prs
                    .iter()
                    .filter(|(_, s)| *s == i)
                    .map(|(p, _)| *p)
                    .collect();
                figure(m, &here)
            })
            .collect()
    };
    let mut by_key: BTreeMap<String, Vec<(&Pull, usize)>> = BTreeMap::new();
    for (p, s) in &in_range {
        for k in p.keys(q.group_by) {
            by_key.entry(k).or_default().push((p, *s));
        }
    }
    let mut reasons = BTreeSet::new();
    let mut quality = Quality::Exact;
    if uncounted > 0 {
        reasons.insert(format!(
            "{uncounted} merged pull requests are not counted yet, or not as they are now: their report is still to be built"
        ));
        quality = Quality::Partial;
    }
    if m == PullMetric::RevertRate {
        let open = in_range
            .iter()
            .filter(|(p, _)| p.revert_window_open && !p.reverted_in_time())
            .count();
        if open > 0 {
            reasons.insert(format!(
                "{open} pull requests were merged less than 14 days ago and may still be reverted"
            ));
            quality = Quality::Partial;
        }
    }
    let costly = matches!(
        m,
        PullMetric::CostPerMergedPr | PullMetric::CostPerMergedLine
    );
    let quality_of = |prs: &[&Pull], reasons: &mut BTreeSet<String>| {
        let mut q = Quality::Exact;
        if costly {
            let assisted = prs.iter().filter(|p| p.assisted());
            if assisted.clone().any(|p| p.fact.cost.is_none()) {
                reasons.insert(
                    "agent-assisted pull requests whose sessions have no cost are left out".into(),
                );
                q = Quality::Partial;
            } else if assisted.clone().any(|p| p.fact.cost_estimated != 0) {
                reasons.insert(
                    "costs not reported by the agent are estimated from the price table".into(),
                );
                q = Quality::Estimated;
            }
        }
        q
    };
    let mut groups: Vec<Group> = by_key
        .iter()
        .map(|(key, prs)| {
            let only: Vec<&Pull> = prs.iter().map(|(p, _)| *p).collect();
            let gq = quality_of(&only, &mut reasons);
            quality = quality.max(gq);
            Group {
                key: key.clone(),
                total: figure(m, &only),
                quality: gq,
                kinds: None,
                split: Some(split(m, &only)),
                series: points(q.zone, &starts, series_of(prs), |v| v),
            }
        })
        .collect();
    sort_groups(&mut groups);
    let all: Vec<&Pull> = in_range.iter().map(|(p, _)| *p).collect();
    Answer {
        metric: Metric::Pulls(m).name(),
        unit: m.unit(),
        split: Some(split(m, &all)),
        ..Answer::new(
            q,
            figure(m, &all),
            quality,
            reasons,
            points(q.zone, &starts, series_of(&in_range), |v| v),
            groups,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::analytics::Bucket;

    const H: i64 = 3_600 * 1_000_000_000;
    const DAY: i64 = 24 * H;

    fn pr(number: i64, team: &str, assisted: bool, merged_day: i64, hours: i64) -> Pull {
        Pull {
            fact: PullFact {
                repo: "acme/shop".into(),
                number,
                author: Some("dev".into()),
                state: "closed".into(),
                merged_ns: Some(merged_day * DAY + 12 * H),
                first_commit_ns: Some(merged_day * DAY + 12 * H - hours * H),
                assisted: i64::from(assisted),
                agents: if assisted {
                    "claude-code".into()
                } else {
                    String::new()
                },
                cost: assisted.then_some(2.0),
                cost_estimated: 0,
                tokens: assisted.then_some(30_000),
                lines_added: Some(100),
                agent_lines_added: assisted.then_some(40),
                ci_first_run_pass: Some(if assisted { 0.5 } else { 1.0 }),
                incidents: i64::from(number == 3),
                deployments: 1,
                // 10 coverable added lines, 8 covered; the agent's 4, 2 covered.
                patch_covered: Some(8),
                patch_coverable: Some(10),
                agent_patch_covered: assisted.then_some(2),
                agent_patch_coverable: assisted.then_some(4),
            },
            teams: vec![team.into()],
            reverted_ns: None,
            revert_window_open: false,
        }
    }

    fn q(group_by: GroupBy) -> Query {
        Query {
            metric: Metric::Pulls(PullMetric::MergedPrs),
            group_by,
            bucket: Bucket::Week,
            from_ns: 20_400 * DAY,
            to_ns: 20_414 * DAY,
            zone: crate::time::Zone::UTC,
        }
    }

    #[test]
    fn merged_pull_requests_split_by_agent_involvement() {
        let prs = [
            pr(1, "payments", true, 20_401, 10),
            pr(2, "payments", false, 20_402, 30),
            pr(3, "search", true, 20_409, 4),
            // Merged after the range: not counted.
            pr(4, "search", true, 20_420, 4),
        ];
        let a = answer(&q(GroupBy::Team), PullMetric::MergedPrs, &prs, 0);
        assert_eq!(a.total, 3.0);
        let s = a.split.unwrap();
        assert_eq!((s.agent_assisted, s.not_agent_assisted), (2.0, 1.0));
        assert_eq!(a.groups[0].key, "payments");
        assert_eq!(a.groups[0].total, 2.0);

        let a = answer(&q(GroupBy::Org), PullMetric::CycleTime, &prs, 0);
        // Hours 10, 30, 4: median 10; agent-assisted 10 and 4: 7; the other 30.
        assert_eq!(a.total, 10.0);
        let s = a.split.unwrap();
        assert_eq!((s.agent_assisted, s.not_agent_assisted), (7.0, 30.0));

        let a = answer(&q(GroupBy::Org), PullMetric::CostPerMergedLine, &prs, 0);
        // $2 + $2 over 40 + 40 agent lines.
        assert_eq!(a.total, 0.05);
        let a = answer(&q(GroupBy::Org), PullMetric::TokensPerMergedLine, &prs, 0);
        assert_eq!(a.total, 750.0, "60,000 tokens over 80 lines");
        let a = answer(&q(GroupBy::Org), PullMetric::ChangeFailureRate, &prs, 0);
        assert_eq!(a.total, 0.3333, "#3 caused an incident; 3 deployed");
        assert!(a.split.unwrap().not_agent_assisted == 0.0);
        let a = answer(&q(GroupBy::Agent), PullMetric::CiFirstRunPass, &prs, 2);
        assert_eq!(a.total, 0.6667);
        assert_eq!(
            a.groups
                .iter()
                .map(|g| (g.key.as_str(), g.total))
                .collect::<Vec<_>>(),
            [("none", 1.0), ("claude-code", 0.5)]
        );
        assert_eq!(a.quality, Quality::Partial, "two merged PRs have no facts");
        let a = answer(&q(GroupBy::Org), PullMetric::Incidents, &prs, 0);
        assert_eq!(a.total, 1.0);
        assert_eq!(a.split.unwrap().agent_assisted, 1.0);
        // A week with no merged pull request has no median: null, not 0.
        let a = answer(&q(GroupBy::Org), PullMetric::CycleTime, &prs[..2], 0);
        assert!(a.series[2].value.is_nan());
        assert_eq!(
            serde_json::to_value(&a.series[2]).unwrap()["value"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn patch_coverage_pools_the_lines_of_agents_and_the_others() {
        let prs = [
            pr(1, "payments", true, 20_401, 10),
            pr(2, "payments", false, 20_402, 10),
        ];
        let a = answer(&q(GroupBy::Org), PullMetric::PatchCoverage, &prs, 0);
        assert_eq!(a.total, 0.8, "16 of 20");
        let a = answer(&q(GroupBy::Org), PullMetric::AgentPatchCoverage, &prs, 0);
        assert_eq!(a.total, 0.5, "the agent's 2 of 4 (#2 has none)");
        let a = answer(&q(GroupBy::Org), PullMetric::OtherPatchCoverage, &prs, 0);
        assert_eq!(a.total, 0.875, "6 of 6 and 8 of 10 others");
        assert_eq!(a.split.unwrap().not_agent_assisted, 0.8);
    }

    #[test]
    fn a_revert_counts_within_14_days_of_the_merge() {
        let mut prs = [
            pr(1, "payments", true, 20_401, 10),
            pr(2, "payments", true, 20_402, 10),
            pr(3, "payments", false, 20_403, 10),
            pr(4, "payments", false, 20_410, 10),
        ];
        // #1 reverted 13 days after its merge, #2 after 15 days, #3 never; #4 was merged
        // less than 14 days ago and nothing reverted it yet.
        prs[0].reverted_ns = prs[0].fact.merged_ns.map(|m| m + 13 * DAY);
        prs[1].reverted_ns = prs[1].fact.merged_ns.map(|m| m + 15 * DAY);
        prs[3].revert_window_open = true;
        let a = answer(&q(GroupBy::Org), PullMetric::RevertRate, &prs, 0);
        assert_eq!(a.total, 0.25);
        let s = a.split.unwrap();
        assert_eq!((s.agent_assisted, s.not_agent_assisted), (0.5, 0.0));
        assert_eq!(a.quality, Quality::Partial);
        assert_eq!(
            a.reasons,
            ["1 pull requests were merged less than 14 days ago and may still be reverted"]
        );
        // Weeks from Monday 2026-11-09 (day 20,401 is its Sunday): #1; #2 and #3; #4.
        assert_eq!(
            a.series.iter().map(|p| p.value).collect::<Vec<_>>(),
            [1.0, 0.0, 0.0]
        );
    }
}
